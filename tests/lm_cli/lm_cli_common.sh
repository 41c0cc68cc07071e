# Shared by the tests/lm_cli scripts (sourced): a scratch directory, a small ASCII corpus made
# from the repository's docs (no fetched data needed), a tiny GPT config and the h5 comparator.
# Expects $kwm and $src to be set by the caller.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
python=/usr/bin/python3
$python -c "import h5py, numpy" 2>/dev/null || { echo "skip: /usr/bin/python3 lacks h5py"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
compare() { $python "$src/tests/lm_cli/lm_compare.py" "$@"; }

# The corpus: the docs, printable ASCII only (so a small BPE vocabulary covers every character).
mkdir -p "$work/text"
cat "$src"/docs/*.md | LC_ALL=C tr -cd '\11\12\40-\176' > "$work/text/book.txt"
[ "$(wc -c < "$work/text/book.txt")" -gt 20000 ] || fail "the docs corpus is too small"
config=$src/tests/lm_cli/lm_cli_tiny.yaml

# train [mpirun ranks|1] ARGS...: kwm train on the tiny config; output discarded, stderr kept in
# $work/train.err for the failure message.
train() {
  local ranks=$1; shift
  local launcher=()
  if [ "$ranks" != 1 ]; then launcher=("$mpiexec" --oversubscribe -np "$ranks"); fi
  "${launcher[@]}" "$kwm" train --config "$config" --quiet --set data.corpus.dir="$work/text" \
    "$@" > /dev/null 2> "$work/train.err" || fail "kwm train $* at $ranks rank(s): $(tail -3 "$work/train.err")"
}
