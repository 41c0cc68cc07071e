#!/usr/bin/env bash
# Checkpoint policies and running metrics through kwm train (one rank): a resumed run's
# metrics.jsonl equals the uninterrupted run's; keep_steps and KEEP markers survive pruning;
# checkpoint_every_seconds writes checkpoints; bad policy values exit 2.
# usage: policies_check.sh KWM SOURCE_DIR
set -euo pipefail
kwm=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
config=configs/quickstart.yaml
[ -f data/sunspots.csv ] || { echo "skip: data/sunspots.csv missing (launch/fetch_data.sh)"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$src/tests/checkpoint/checkpoint_interval.sh"
train() { "$kwm" train --config "$config" --quiet "$@" > /dev/null 2>"$work/err" ||
  fail "kwm train $*: $(cat "$work/err")"; }
steps() { ls "$1/checkpoints" | grep '^step-[0-9]*$' | sed 's/step-//' | sort -n | tr '\n' ' '; }
# metrics.jsonl without the wall-clock times (quietly cut short when the reader stops early: grep -q,
# diff -q).
metrics() { /usr/bin/python3 -c '
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
for line in open(sys.argv[1]):
    j = json.loads(line); j.pop("elapsed_s", None); print(json.dumps(j, sort_keys=True))' "$1"; }

# 1. Running metrics. Two epochs of 216 steps, a log line every 5 steps and a checkpoint every
# 50: at steps 100 (epoch 1) and 300 (epoch 2) the log window holds 100 % 5 = 0 and
# 300 - 216 = 84 % 5 = 4 steps, and the pass sums hold 100 and 84 steps.
common=(--set train.epochs=2 --set train.log_every=5 --set train.checkpoint_every=50
        --set train.keep_last=0)
train "${common[@]}" --run-dir "$work/run"
mv "$work/run" "$work/straight"
grep -q '"split": "train_pass"' <(metrics "$work/straight/metrics.jsonl") ||
  fail "no train_pass line in metrics.jsonl"
for from in 100 300; do
  rm -rf "$work/run" && mkdir -p "$work/run/checkpoints"
  cp -r "$work/straight/checkpoints/step-$from" "$work/run/checkpoints/"
  train "${common[@]}" --run-dir "$work/run" --resume
  grep -q "resumed from .*step-$from" "$work/err" || fail "did not resume from step-$from"
  diff <(metrics "$work/straight/metrics.jsonl") <(metrics "$work/run/metrics.jsonl") > "$work/diff" ||
    fail "resumed from step $from: metrics.jsonl differs: $(head -6 "$work/diff")"
done
# The comparison can fail: a run whose checkpoint lost its running sums differs.
rm -rf "$work/run" && mkdir -p "$work/run/checkpoints"
cp -r "$work/straight/checkpoints/step-300" "$work/run/checkpoints/"
/usr/bin/python3 - "$work/run/checkpoints/step-300/index.h5" <<'PY' 2>/dev/null && have_h5py=1 || have_h5py=0
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    del f["metrics/running"]
PY
if [ "$have_h5py" = 1 ]; then
  train "${common[@]}" --run-dir "$work/run" --resume
  grep -q "has no running metrics" "$work/err" || fail "no warning for missing running metrics"
  diff -q <(metrics "$work/straight/metrics.jsonl") <(metrics "$work/run/metrics.jsonl") > /dev/null &&
    fail "metrics equal without the running sums: the comparison proves nothing"
fi

# 2. keep_last 1 plus marks: keep_steps [50] and a hand-made KEEP in step-100.
train --set train.checkpoint_every=50 --set train.keep_last=0 --run-dir "$work/keep"
[ "$(steps "$work/keep")" = "50 100 150 200 " ] || fail "expected steps 50..200, got $(steps "$work/keep")"
touch "$work/keep/checkpoints/step-100/KEEP"
rm -rf "$work/keep/checkpoints/step-200"
train --set train.checkpoint_every=50 --set train.keep_last=1 --set "train.keep_steps=[50, 210]" \
  --run-dir "$work/keep" --resume
# From step 150: writes 200 and 210 (keep_steps, marked); keeps the newest (210), the marked 100.
# step-50 was written before keep_steps named it, so it is not marked and goes.
[ "$(steps "$work/keep")" = "100 210 " ] || fail "after pruning expected 100 210, got $(steps "$work/keep")"
[ -f "$work/keep/checkpoints/step-210/KEEP" ] || fail "step-210 (keep_steps) not marked"
"$kwm" inspect "$work/keep/checkpoints/step-100" --json | tail -1 | grep -q '"kept":true' ||
  fail "inspect does not report the mark"
train --set train.checkpoint_every=50 --set train.keep_last=1 --set "train.keep_steps=[50]" \
  --run-dir "$work/keep2"
[ "$(steps "$work/keep2")" = "50 200 " ] || fail "keep_steps [50], keep_last 1: got $(steps "$work/keep2")"

# 3. Time-based: a long interval writes no checkpoint, a short one several. The short run (3
# epochs) takes checkpoint_interval's rule, timed by the long run's one epoch: a fixed 0.02 s once
# gave a single checkpoint on a loaded 2-core machine (an epoch in about 0.04 s), a fixed 0.01 s one
# after every step under ASan (648 writes in 3.5 minutes; an epoch there trains in about 3 s).
epoch_seconds=$("$kwm" train --config "$config" --quiet --json --run-dir "$work/notime" \
  --set train.checkpoint_every_seconds=3600 2>"$work/err" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["train_seconds"])') ||
  fail "checkpoint_every_seconds=3600 run: $(cat "$work/err")"
[ ! -d "$work/notime/checkpoints" ] || [ -z "$(steps "$work/notime")" ] ||
  fail "checkpoint_every_seconds=3600 wrote $(steps "$work/notime")"
interval=$(checkpoint_interval "$epoch_seconds" 0.002)
train --set train.checkpoint_every_seconds="$interval" --set train.epochs=3 --set train.keep_last=0 \
  --run-dir "$work/time"
[ "$(steps "$work/time" | wc -w)" -ge 2 ] || fail "checkpoint_every_seconds=$interval: $(steps "$work/time")"

# 4. Bad values: exit code 2 naming the key.
for bad in "train.checkpoint_every_seconds=-1" "train.keep_steps=[0]" "train.keep_steps=3"; do
  set +e
  err=$("$kwm" train --config "$config" --quiet --run-dir "$work/bad" --set "$bad" 2>&1 >/dev/null)
  rc=$?
  set -e
  key=${bad%%=*}
  [ "$rc" -eq 2 ] && grep -q "$key" <<< "$err" || fail "$bad: rc $rc: $err"
done
echo "checkpoint policy and running-metrics checks passed"
