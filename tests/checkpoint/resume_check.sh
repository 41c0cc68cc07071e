#!/usr/bin/env bash
# Bitwise resume, corruption and crash safety for kwm train checkpoints (one rank).
# usage: resume_check.sh KWM SOURCE_DIR
set -euo pipefail
kwm=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
config=configs/quickstart.yaml
[ -f data/sunspots.csv ] || { echo "skip: data/sunspots.csv missing (launch/fetch_data.sh)"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
train() { "$kwm" train --config "$config" --quiet --set train.checkpoint_every=108 \
  --set train.keep_last=0 "$@" > /dev/null; }

# Every dataset of two checkpoints equal byte for byte (h5diff compares values exactly), except
# /metrics/jsonl, whose lines carry wall-clock times.
same_checkpoint() {
  for f in "$1"/*.h5; do
    local name; name=$(basename "$f")
    [ -f "$2/$name" ] || fail "$2/$name missing"
    h5diff --exclude-path /metrics "$f" "$2/$name" > /dev/null ||
      fail "$name differs between $1 and $2: $(h5diff -r --exclude-path /metrics "$f" "$2/$name" | head -5)"
  done
}

# 1. Straight run: checkpoints at steps 108 and 216 (the end of the training split). Both runs
# use the same run-dir path (the resolved config, with its run_dir, is part of the checkpoint).
train --run-dir "$work/run"
mv "$work/run" "$work/a"
[ -f "$work/a/checkpoints/step-216/index.h5" ] || fail "no step-216 checkpoint"
# 2. The same run, then the last checkpoint removed and a fresh process resumed from step 108.
train --run-dir "$work/run"
rm -rf "$work/run/checkpoints/step-216"
train --run-dir "$work/run" --resume
same_checkpoint "$work/a/checkpoints/step-216" "$work/run/checkpoints/step-216"
cmp "$work/a/model.yaml" "$work/run/model.yaml" || fail "final model.yaml differs after resume"
# And a resume that must find something to do differs from a run without one: the test can fail.
h5diff -q "$work/a/checkpoints/step-108/rank-0.h5" "$work/a/checkpoints/step-216/rank-0.h5" \
  > /dev/null && fail "step-108 and step-216 are identical: the comparison proves nothing"

"$kwm" inspect "$work/a" --json | tail -1 | grep -q '"ok":true' || fail "inspect of a good run"

# 3. Corruption: exit code 2, an error naming the file and dataset, nothing overwritten.
expect_error() {  # dir-to-break pattern
  local run=$1 pattern=$2 err rc
  local before; before=$(cd "$run" && find . -type f -exec md5sum {} + | sort)
  set +e
  err=$("$kwm" train --config "$config" --quiet --run-dir "$run" --resume 2>&1 >/dev/null)
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "expected exit code 2, got $rc: $err"
  grep -q -- "$pattern" <<< "$err" || fail "error does not name '$pattern': $err"
  local after; after=$(cd "$run" && find . -type f -exec md5sum {} + | sort)
  [ "$before" = "$after" ] || fail "files changed by a failed resume"
}
one_checkpoint() {  # a run dir holding only step-108
  local run=$work/$1
  mkdir -p "$run/checkpoints"
  cp -r "$work/a/checkpoints/step-108" "$run/checkpoints/"
  echo "$run"
}
# A flipped byte inside the covariance data (its XXH64 fails the read); needs h5py to find it.
have_h5py=0
/usr/bin/python3 -c "import h5py" 2>/dev/null && have_h5py=1
if [ "$have_h5py" = 1 ]; then
run=$(one_checkpoint flip)
/usr/bin/python3 - "$run/checkpoints/step-108/rank-0.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    name = sorted(k for k in f["blocks"])[0]
    offset = f["blocks"][name]["covariance"].id.get_offset()  # contiguous since version 2
with open(path, "r+b") as raw:
    raw.seek(offset + 16); b = raw.read(1); raw.seek(offset + 16); raw.write(bytes([b[0] ^ 0x40]))
PY
expect_error "$run" "rank-0.h5: /blocks/[0-9]*/covariance"
# kwm inspect reports the same dataset and exits 2; on an intact checkpoint it says ok.
set +e
err=$("$kwm" inspect "$run/checkpoints/step-108" 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "rank-0.h5: /blocks/[0-9]*/covariance" <<< "$err" ||
  fail "inspect of a flipped byte: rc $rc: $err"
else
  echo "note: no h5py: the flipped-byte and format-version cases are not run"
fi
# A truncated rank file.
run=$(one_checkpoint truncated)
truncate -s 3000 "$run/checkpoints/step-108/rank-0.h5"
expect_error "$run" "rank-0.h5"
# A missing rank file.
run=$(one_checkpoint missing)
rm "$run/checkpoints/step-108/rank-0.h5"
expect_error "$run" "rank-0.h5: missing file"
# A wrong format version.
if [ "$have_h5py" = 1 ]; then
run=$(one_checkpoint version)
/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f.attrs['format_version']=99; f.close()" \
  "$run/checkpoints/step-108/index.h5"
expect_error "$run" "index.h5: format_version 99"
fi
# A checkpoint of a different model.
run=$(one_checkpoint other)
set +e
err=$("$kwm" train --config "$config" --quiet --run-dir "$run" --resume --set model.width=4 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "different model" <<< "$err" || fail "different model: rc $rc: $err"

# 4. Crash safety: SIGKILL at random points while checkpointing (every 4 steps, so most of the
# run is checkpoint I/O); the newest complete checkpoint always loads.
for trial in $(seq 1 20); do
  run=$work/crash$trial
  "$kwm" train --config "$config" --quiet --run-dir "$run" --set train.checkpoint_every=4 \
    --set train.keep_last=2 > /dev/null 2>&1 &
  pid=$!
  sleep "0.$(( (RANDOM % 9) + 1 ))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -d "$run/checkpoints" ] && ls "$run/checkpoints" | grep -q '^step-[0-9]*$' || continue
  newest=$(ls "$run/checkpoints" | grep '^step-[0-9]*$' | sort -t- -k2 -n | tail -1)
  "$kwm" train --config "$config" --quiet --run-dir "$run" --resume > /dev/null 2>"$run.err" ||
    fail "trial $trial: resume after SIGKILL failed: $(cat "$run.err")"
  grep -q "resumed from .*$newest" "$run.err" || fail "trial $trial: did not resume from $newest"
done
echo "checkpoint resume, corruption and crash checks passed"
