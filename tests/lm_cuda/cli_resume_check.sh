#!/usr/bin/env bash
# kwm train with learner.device: cuda (one GPU): 12 steps straight (checkpoints at 3, 6, 9) against
# the same run cut back to step 6 and resumed by a fresh process: the step-9 checkpoint, model.h5
# and metrics.jsonl equal byte for byte (except wall-clock fields). Then the checkpoints cross
# devices: the GPU run's step 6 resumed on the CPU, and a CPU run's step 6 resumed on the GPU, end
# within TOL (max |theta| difference of model.h5) of the uninterrupted run of the other device.
# Exits 77 (skip) when kwm reports no CUDA device or no CUDA build. Arguments after TOL are added
# to every run (e.g. --set learner.type=rls-head: the same checks for that learner).
# usage: cli_resume_check.sh KWM SOURCE_DIR [TOL [--set KEY=VALUE ...]]
kwm=$1 src=$2 tol=${3:-1e-4}
extra=("${@:4}")
source "$src/tests/lm_cuda/cli_common.sh"
base=(--set train.checkpoint_every=3 --set train.keep_last=0 "${extra[@]}" --run-dir "$work/run")
gpu=(--set learner.device=cuda "${base[@]}")
cpu=(--set learner.device=cpu "${base[@]}")

run "${gpu[@]}"
if [ "$status" = 2 ] && grep -qE "no CUDA device|needs a CUDA build" "$work/train.err"; then
  echo "skip: $(tail -1 "$work/train.err")"
  exit 77
fi
[ "$status" = 0 ] || fail "GPU run exited $status: $(tail -3 "$work/train.err")"
mv "$work/run" "$work/gpu"
if compare checkpoint "$work/gpu/checkpoints/step-6" "$work/gpu/checkpoints/step-9" > /dev/null; then
  fail "step-6 and step-9 are identical: the comparison proves nothing"
fi
compare moved "$work/gpu/metrics.jsonl"

# GPU resumed on the GPU: bitwise.
cp -r "$work/gpu" "$work/run"
rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
train "${gpu[@]}" --resume
grep -q "resumed at step 6 (" "$work/train.err" || fail "no resume at step 6: $(cat "$work/train.err")"
compare checkpoint "$work/gpu/checkpoints/step-9" "$work/run/checkpoints/step-9"
compare files "$work/gpu/model.h5" "$work/run/model.h5"
compare metrics "$work/gpu/metrics.jsonl" "$work/run/metrics.jsonl"
rm -rf "$work/run"

# The CPU reference, uninterrupted.
train "${cpu[@]}"
mv "$work/run" "$work/cpu"

# GPU step 6 resumed on the CPU, against the uninterrupted GPU and CPU runs.
cp -r "$work/gpu" "$work/run"
rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
train "${cpu[@]}" --resume
grep -q "resumed at step 6 (" "$work/train.err" || fail "no resume at step 6: $(cat "$work/train.err")"
echo "GPU checkpoint resumed on the CPU, against the GPU run and the CPU run:"
compare theta "$work/run/model.h5" "$work/gpu/model.h5" "$tol"
compare theta "$work/run/model.h5" "$work/cpu/model.h5" "$tol"
rm -rf "$work/run"

# CPU step 6 resumed on the GPU, against the uninterrupted CPU run.
cp -r "$work/cpu" "$work/run"
rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
train "${gpu[@]}" --resume
grep -q "resumed at step 6 (" "$work/train.err" || fail "no resume at step 6: $(cat "$work/train.err")"
echo "CPU checkpoint resumed on the GPU, against the CPU run:"
compare theta "$work/run/model.h5" "$work/cpu/model.h5" "$tol"
echo "ok: learner.device cuda resumed bitwise on the GPU and across devices within $tol"
