#!/usr/bin/env bash
# kwm train with learner.device: cuda on several ranks (data parallel: each rank one GPU, or ranks
# sharing GPUs through the host-staged sums). For each way of summing the device statistics this
# machine allows (host always; nccl where there is a GPU per rank):
#   - the R-rank run repeated is bitwise equal to itself, and its model.h5 theta is within TOL of
#     the one-GPU run's (fp32 sums in another order), with the same steps and tokens;
#   - its step-6 checkpoint, written at R ranks, resumed at 1 rank on the GPU and at 3 ranks on the
#     CPU, ends within TOL of the uninterrupted R-rank run (resume on another rank count and device).
# Exits 77 (skip) when kwm reports no CUDA device or no CUDA build. Arguments after TOL are added
# to every run (e.g. --set learner.type=rls-head: the same checks for that learner).
# usage: cli_ranks_check.sh KWM SOURCE_DIR MPIEXEC [TOL [--set KEY=VALUE ...]]
kwm=$1 src=$2 mpiexec=$3 tol=${4:-1e-4}
extra=("${@:5}")
source "$src/tests/lm_cuda/cli_common.sh"
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
base=(--set train.checkpoint_every=3 --set train.keep_last=0 "${extra[@]}" --run-dir "$work/run")
gpu=(--set learner.device=cuda "${base[@]}")

# mtrain RANKS ARGS...: kwm train under mpirun, which must succeed; stderr in $work/train.err.
mtrain() {
  local ranks=$1; shift
  "$mpiexec" --oversubscribe -np "$ranks" "$kwm" train --config "$config" \
    --set data.corpus.dir="$work/text" "$@" > /dev/null 2> "$work/train.err" ||
    fail "kwm train at $ranks ranks ($KWM_DEVICE_COLLECTIVES) $*: $(tail -3 "$work/train.err")"
}
resume_from() {  # resume_from RUN: a copy of RUN cut back to its step-6 checkpoint, in $work/run
  rm -rf "$work/run"
  cp -r "$1" "$work/run"
  rm -rf "$work/run/checkpoints/step-9" "$work/run/model.h5" "$work/run/metrics.jsonl"
}

run "${gpu[@]}"
if [ "$status" = 2 ] && grep -qE "no CUDA device|needs a CUDA build" "$work/train.err"; then
  echo "skip: $(tail -1 "$work/train.err")"
  exit 77
fi
[ "$status" = 0 ] || fail "one-GPU run exited $status: $(tail -3 "$work/train.err")"
mv "$work/run" "$work/one"
compare moved "$work/one/metrics.jsonl"

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
for ranks in 2 4; do
  kinds=(host)
  [ "${gpus:-0}" -ge "$ranks" ] && kinds+=(nccl)
  for kind in "${kinds[@]}"; do
    export KWM_DEVICE_COLLECTIVES=$kind
    mtrain "$ranks" "${gpu[@]}"
    grep -q "summed through $kind" "$work/train.err" ||
      fail "the $ranks-rank run did not report '$kind' sums: $(cat "$work/train.err")"
    mv "$work/run" "$work/a"
    mtrain "$ranks" "${gpu[@]}"
    mv "$work/run" "$work/b"
    echo "$ranks ranks, $kind sums: repeat, then against one GPU"
    compare theta "$work/a/model.h5" "$work/b/model.h5" 0
    compare metrics "$work/a/metrics.jsonl" "$work/b/metrics.jsonl"
    compare theta "$work/one/model.h5" "$work/a/model.h5" "$tol"
    compare ranks "$work/one/metrics.jsonl" "$work/a/metrics.jsonl" "$tol"

    echo "$ranks-rank step-6 checkpoint resumed on one GPU, then on 3 CPU ranks"
    resume_from "$work/a"
    train "${gpu[@]}" --resume
    grep -q "resumed at step 6 (" "$work/train.err" || fail "no resume at step 6"
    compare theta "$work/a/model.h5" "$work/run/model.h5" "$tol"
    resume_from "$work/a"
    mtrain 3 --set learner.device=cpu "${base[@]}" --resume
    grep -q "resumed at step 6 (" "$work/train.err" || fail "no resume at step 6 on the CPU"
    compare theta "$work/a/model.h5" "$work/run/model.h5" "$tol"
    rm -rf "$work/a" "$work/b" "$work/run"
  done
done
echo "ok: learner.device cuda at 2 and 4 ranks (${gpus:-0} GPUs) within $tol of one GPU ${extra[*]}"
