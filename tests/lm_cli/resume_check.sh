#!/usr/bin/env bash
# Bitwise resume of a language-model run at RANKS ranks: 12 steps straight (checkpoints at steps 3,
# 6 and 9) against the same run cut back to its step-6 checkpoint and continued by a fresh process
# with --resume. The step-9 checkpoint and model.h5 must be equal dataset by dataset, byte for
# byte, and metrics.jsonl line by line except wall_s. Both runs use one run-dir path (the resolved
# config, with its run_dir, is part of every checkpoint).
# usage: resume_check.sh KWM SOURCE_DIR MPIEXEC LEARNER RANKS [--set KEY=VALUE ...]
kwm=$1 src=$2 mpiexec=$3 learner=$4 ranks=$5
source "$src/tests/lm_cli/lm_cli_common.sh"
args=(--set learner.type="$learner" "${@:6}" --set train.checkpoint_every=3 --set train.keep_last=0
      --run-dir "$work/run")

train "$ranks" "${args[@]}"
mv "$work/run" "$work/a"
[ -f "$work/a/checkpoints/step-9/index.h5" ] || fail "no step-9 checkpoint"
[ "$(ls "$work/a/checkpoints/step-9" | grep -c '^rank-.*\.h5$')" = "$ranks" ] ||
  fail "step-9 does not hold one rank file per rank"
# The comparison can fail: the checkpoints of steps 6 and 9 differ.
if compare checkpoint "$work/a/checkpoints/step-6" "$work/a/checkpoints/step-9" > /dev/null; then
  fail "step-6 and step-9 are identical: the comparison proves nothing"
fi

# Stopped after step 6: later checkpoints, model.h5 and metrics.jsonl gone; a fresh process resumes.
cp -r "$work/a" "$work/run"
rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
train "$ranks" "${args[@]}" --resume
grep -q "resumed at step 6 (" "$work/train.err" || fail "the run did not resume at step 6: $(cat "$work/train.err")"
compare checkpoint "$work/a/checkpoints/step-9" "$work/run/checkpoints/step-9"
compare files "$work/a/model.h5" "$work/run/model.h5"
compare metrics "$work/a/metrics.jsonl" "$work/run/metrics.jsonl"
echo "ok: $learner resumed bitwise at $ranks rank(s)"
