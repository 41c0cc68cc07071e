#!/usr/bin/env bash
# A language-model checkpoint written at 4 ranks, resumed at 1, 2 and 3: the final model.h5 theta
# equals the uninterrupted 4-rank run's within TOL (the remaining steps sum in another order), with
# the same steps and tokens in metrics.jsonl and the losses within TOL.
# usage: reshard_check.sh KWM SOURCE_DIR MPIEXEC LEARNER TOL
kwm=$1 src=$2 mpiexec=$3 learner=$4 tol=$5
source "$src/tests/lm_cli/lm_cli_common.sh"
args=(--set learner.type="$learner" --set train.checkpoint_every=3 --set train.keep_last=0
      --run-dir "$work/run")

train 4 "${args[@]}"
mv "$work/run" "$work/a"
for ranks in 1 2 3; do
  rm -rf "$work/run"
  cp -r "$work/a" "$work/run"
  rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
  train "$ranks" "${args[@]}" --resume
  grep -q "resumed at step 6 (" "$work/train.err" || fail "the $ranks-rank run did not resume at step 6"
  compare theta "$work/a/model.h5" "$work/run/model.h5" "$tol"
  compare ranks "$work/a/metrics.jsonl" "$work/run/metrics.jsonl" "$tol"
done
echo "ok: $learner written at 4 ranks, resumed at 1, 2, 3"
