#!/usr/bin/env bash
# SIGTERM stops a language-model run at the next step boundary with a checkpoint and exit 0; a fresh
# process with --resume then ends with the model.h5, later checkpoints and metrics.jsonl of an
# uninterrupted run (byte for byte, except wall-clock fields). One rank.
# usage: signal_check.sh KWM SOURCE_DIR LEARNER
kwm=$1 src=$2 learner=$3 mpiexec=unused
source "$src/tests/lm_cli/lm_cli_common.sh"
# 60 steps, checkpoints every 4: the signal lands well before the end (even in a Release build).
args=(--set learner.type="$learner" --set train.tokens=5760 --set train.eval_every=4
      --set train.checkpoint_every=4 --set train.keep_last=0 --run-dir "$work/run")

train 1 "${args[@]}"
mv "$work/run" "$work/a"

"$kwm" train --config "$config" --quiet --set data.corpus.dir="$work/text" "${args[@]}" \
  > /dev/null 2> "$work/stopped.err" &
pid=$!
# The handler is installed before the first step; the step-4 checkpoint proves training started.
for _ in $(seq 6000); do  # up to 2 minutes (sanitizer builds, a loaded machine)
  [ -d "$work/run/checkpoints/step-4" ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.02
done
kill -TERM "$pid" 2> /dev/null || true
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "the signalled run exited $rc: $(tail -3 "$work/stopped.err")"
[ -f "$work/run/model.h5" ] && fail "the run finished before the signal arrived (machine too fast?)"
grep -q "stopping on a signal" "$work/stopped.err" || fail "no stop message: $(cat "$work/stopped.err")"
stopped_at=$(ls "$work/run/checkpoints" | sed -n 's/^step-\([0-9]*\)$/\1/p' | sort -n | tail -1)
echo "stopped by SIGTERM after step $stopped_at of 60"

train 1 "${args[@]}" --resume
grep -q "resumed at step $stopped_at (" "$work/train.err" || fail "did not resume at step $stopped_at"
compare files "$work/a/model.h5" "$work/run/model.h5"
compare metrics "$work/a/metrics.jsonl" "$work/run/metrics.jsonl"
for dir in "$work/a"/checkpoints/step-*; do
  step=${dir##*/step-}
  if [ "$step" -gt "$stopped_at" ]; then
    compare checkpoint "$dir" "$work/run/checkpoints/step-$step"
  fi
done
echo "ok: $learner stopped by SIGTERM at step $stopped_at and resumed bitwise"
