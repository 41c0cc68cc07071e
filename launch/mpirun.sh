#!/usr/bin/env bash
# mpirun for kwm on one machine or a hostfile: adds the switches Open MPI needs here and forwards
# everything else. -np N (or -n N) sets the rank count; when it exceeds this host's cores and no
# hostfile is given, --oversubscribe is added; as root, the run-as-root switches are set.
#
#   launch/mpirun.sh -np 4 build/release/launch/kwm train --config configs/sunspots_distributed.yaml
#   launch/mpirun.sh -np 8 --hostfile hosts.txt kwm train --config FILE
# KWM_MPIRUN overrides the mpirun binary; NCCL_NVLS_ENABLE defaults to 0 (docs/distributed.md).
set -euo pipefail
mpirun_bin="${KWM_MPIRUN:-mpirun}"
command -v "$mpirun_bin" >/dev/null || { echo "mpirun.sh: $mpirun_bin not found (install Open MPI)" >&2; exit 2; }

ranks=""
hostfile=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -np | -n | --np | -c) ranks="${args[i + 1]:-}" ;;
    --hostfile | -hostfile | --machinefile | -machinefile | --host | -H) hostfile=1 ;;
  esac
done

extra=()
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cores="$(nproc)"
if [[ -n "$ranks" && $hostfile -eq 0 && "$ranks" -gt "$cores" ]]; then
  extra+=(--oversubscribe)
fi
# NCCL's NVLink SHARP (multicast) path is off on the shared GPU machines; env travels with -x.
export NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}"
extra+=(-x NCCL_NVLS_ENABLE)
exec "$mpirun_bin" "${extra[@]}" "$@"
