# Shared by the tests/lm_cuda kwm train scripts (sourced): a scratch directory, the tests/lm_cli
# corpus (the repository's docs, printable ASCII) and tiny GPT config, and a train helper that
# keeps stderr. Expects $kwm and $src; python: the first python3 with h5py (the GPU image's is
# not /usr/bin/python3).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$work/text"
cat "$src"/docs/*.md | LC_ALL=C tr -cd '\11\12\40-\176' > "$work/text/book.txt"
config=$src/tests/lm_cli/lm_cli_tiny.yaml
python=""
for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
  if [ -n "$candidate" ] && "$candidate" -c "import h5py, numpy" 2>/dev/null; then
    python=$candidate
    break
  fi
done
compare() {
  [ -n "$python" ] || { echo "skip: no python3 with h5py"; exit 77; }
  "$python" "$src/tests/lm_cli/lm_compare.py" "$@"
}
# run ARGS...: kwm train on the tiny config; sets $status, stderr in $work/train.err.
run() {
  status=0
  "$kwm" train --config "$config" --quiet --set data.corpus.dir="$work/text" "$@" \
    > /dev/null 2> "$work/train.err" || status=$?
}
# train ARGS...: run, which must succeed.
train() {
  run "$@"
  [ "$status" = 0 ] || fail "kwm train $* exited $status: $(tail -3 "$work/train.err")"
}
