#!/usr/bin/env bash
# kwm train with learner.device: cuda where there is no CUDA device (CI, this project's CPU
# machines): exit 2 with a message naming the problem, before any run directory is written; a bad
# learner.device value, and learner.tensor_math or learner.statistics_math: tf32 with the CPU
# learner, are exit 2 naming the
# key (bf16 too, which only statistics_math offers). Exits 77 (skip) when a device is present (then
# cli_resume_check.sh trains on it).
# usage: cli_no_device_check.sh KWM SOURCE_DIR
kwm=$1 src=$2
source "$src/tests/lm_cuda/cli_common.sh"
# refused SETTING MESSAGE: kwm train --set SETTING exits 2 with MESSAGE on stderr.
refused() {
  run --set "$1" --run-dir "$work/bad"
  [ "$status" = 2 ] || fail "$1 exited $status"
  grep -q "$2" "$work/train.err" || fail "$1: unexpected message: $(cat "$work/train.err")"
}
refused learner.device=tpu "learner.device' must be cpu or cuda; got 'tpu'"
refused learner.tensor_math=tf32 "learner.tensor_math' tf32 needs learner.device: cuda"
refused learner.statistics_math=tf32 "learner.statistics_math' tf32 needs learner.device: cuda"
refused learner.statistics_math=bf16 "learner.statistics_math' bf16 needs learner.device: cuda"
refused learner.tensor_math=bf16 "learner.tensor_math' must be fp32 or tf32; got 'bf16'"
run --set learner.device=cuda --set train.tokens=96 --run-dir "$work/run"
if [ "$status" = 0 ]; then
  echo "skip: a CUDA device is present (cli_resume_check.sh covers it)"
  exit 77
fi
[ "$status" = 2 ] || fail "learner.device: cuda without a device exited $status: $(cat "$work/train.err")"
grep -qE "learner.device: cuda: no CUDA device is visible|learner.device: cuda needs a CUDA build" \
  "$work/train.err" || fail "unexpected message: $(cat "$work/train.err")"
[ ! -e "$work/run" ] || fail "the run directory was written before the refusal"
echo "ok: $(tail -1 "$work/train.err")"
