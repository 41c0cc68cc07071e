#!/usr/bin/env bash
# Runs a kwm training command until it completes, restarting after a crash or preemption from the
# newest complete checkpoint (kwm train --resume; docs/checkpoint-format.md). The command must
# write checkpoints (train.checkpoint_every) into RUN_DIR.
#
#   launch/auto_resume.sh --run-dir runs/x [--max-restarts 10] [--delay 5] -- \
#       launch/mpirun.sh -np 4 build/release/launch/kwm train --config FILE --run-dir runs/x
#
# First attempt: the command as given when RUN_DIR has no complete checkpoint, else with
# --resume. Exit 0 ends the loop; exit 2 (bad input, or no checkpoint loads) is final; any other
# exit restarts with --resume after DELAY seconds, at most MAX_RESTARTS times.
set -uo pipefail

run_dir=""
max_restarts=10
delay=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --run-dir) run_dir="$2"; shift 2 ;;
    --max-restarts) max_restarts="$2"; shift 2 ;;
    --delay) delay="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "auto_resume.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$run_dir" && $# -gt 0 ]] || { echo "auto_resume.sh: needs --run-dir DIR -- COMMAND..." >&2; exit 2; }

have_checkpoint() {
  compgen -G "$run_dir/checkpoints/step-[0-9]*" >/dev/null &&
    ls -d "$run_dir"/checkpoints/step-* 2>/dev/null | grep -qv '\.tmp$'
}

restarts=0
while true; do
  cmd=("$@")
  if have_checkpoint; then cmd+=(--resume); fi
  echo "auto_resume.sh: attempt $((restarts + 1)): ${cmd[*]}" >&2
  "${cmd[@]}"
  rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "auto_resume.sh: completed after $restarts restart(s)" >&2
    exit 0
  fi
  if [[ $rc -eq 2 ]]; then
    echo "auto_resume.sh: exit code 2 (bad input or no loadable checkpoint): not restarting" >&2
    exit 2
  fi
  if [[ $restarts -ge $max_restarts ]]; then
    echo "auto_resume.sh: exit code $rc and $max_restarts restarts used: giving up" >&2
    exit "$rc"
  fi
  restarts=$((restarts + 1))
  echo "auto_resume.sh: exit code $rc: restarting from the newest checkpoint in ${delay}s" >&2
  sleep "$delay"
done
