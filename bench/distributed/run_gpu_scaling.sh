#!/usr/bin/env bash
# One device call: build kwm_dekf_scaling_gpu, run the sharded DEKF update's strong and weak
# scaling on 1 and G GPUs (NCCL), then the PyTorch DDP reference (GPT-2 small, AdamW, bf16
# autocast, fixed per-GPU batch) on 1 and G GPUs, all on the same machine in the same call.
# usage (repo root, on the GPU machine): OUT=/some/dir bash bench/distributed/run_gpu_scaling.sh [G]
# Files in $OUT (6): env_build.log, kwm_scaling.jsonl, kwm_scaling.log, ddp.jsonl, ddp.log,
# summary.md (bench/distributed/summarise_gpu_scaling.py).
set -uo pipefail
OUT=${OUT:-/tmp/kwm-gpu-scaling}
G=${1:-2}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=build/gpuscale
{
  date -u; nvidia-smi
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  nvidia-smi topo -m
  nvcc --version | tail -2; cmake --version | head -1; mpirun --version | head -1; nproc
  python3 -c 'import torch; print("torch", torch.__version__, "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())'
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=OFF 2>&1 | tail -6
  cmake --build $B -j"$(nproc)" --target kwm_dekf_scaling_gpu 2>&1 | tail -15
  date -u
} > "$OUT/env_build.log" 2>&1
EXE=$B/bench/distributed/kwm_dekf_scaling_gpu
# A binary built elsewhere (FALLBACK_EXE) when this build failed.
if [ ! -x "$EXE" ] && [ -n "${FALLBACK_EXE:-}" ] && [ -x "$FALLBACK_EXE" ]; then
  echo "== using FALLBACK_EXE $FALLBACK_EXE" >> "$OUT/env_build.log"; EXE=$FALLBACK_EXE
fi
BUDGET=${BUDGET:-330}  # seconds after which the optional sizes are skipped
MPI="mpirun --bind-to none -x NCCL_NVLS_ENABLE -x PATH -x LD_LIBRARY_PATH"
kwm() {  # kwm NP ARGS...: one JSON line to kwm_scaling.jsonl, everything to kwm_scaling.log
  local np=$1; shift
  echo "== np $np $*" >> "$OUT/kwm_scaling.log"
  timeout 90 $MPI -np "$np" "$EXE" "$@" 2>>"$OUT/kwm_scaling.log" | tee -a "$OUT/kwm_scaling.log" |
    grep '^{' >> "$OUT/kwm_scaling.jsonl"
}
ddp() {
  echo "== ddp nproc $1" >> "$OUT/ddp.log"
  timeout 150 torchrun --standalone --nproc_per_node="$1" bench/distributed/ddp_reference.py \
    --batch 8 --seq 1024 --steps 30 --warmup 10 --json "$OUT/ddp.jsonl" >> "$OUT/ddp.log" 2>&1
}
U="--updates 30 --warmup 5"
if [ -x "$EXE" ]; then
  # n = 1024, 64 blocks (m = 8 as the CPU benchmark), strong then weak (64 blocks per GPU).
  for np in 1 $G; do kwm $np --blocks 64 --n 1024 --m 8 $U; done
  for np in 1 $G; do kwm $np --blocks 64 --n 1024 --m 8 $U --weak; done
fi
for np in 1 $G; do ddp $np; done
if [ -x "$EXE" ]; then
  for n in 2048 4096; do
    [ "$SECONDS" -lt "$BUDGET" ] || { echo "== budget: skipped n=$n and later" >> "$OUT/kwm_scaling.log"; break; }
    for np in 1 $G; do kwm $np --blocks 64 --n $n --m 8 $U; done
    for np in 1 $G; do kwm $np --blocks 64 --n $n --m 8 $U --weak; done
  done
  # Larger m (more arithmetic per byte of P) at n = 1024 and 4096.
  for n in 1024 4096; do
    [ "$SECONDS" -lt "$BUDGET" ] || { echo "== budget: skipped m=64 n=$n" >> "$OUT/kwm_scaling.log"; continue; }
    for np in 1 $G; do kwm $np --blocks 64 --n $n --m 64 $U; done
  done
  # Weak at a fixed 32 blocks per GPU, n = 1024 (the smaller per-GPU share).
  [ "$SECONDS" -lt "$BUDGET" ] && for np in 1 $G; do kwm $np --blocks 32 --n 1024 --m 8 $U --weak; done
fi
python3 bench/distributed/summarise_gpu_scaling.py "$OUT/kwm_scaling.jsonl" "$OUT/ddp.jsonl" \
  > "$OUT/summary.md" 2>&1
tail -4 "$OUT/env_build.log"
cat "$OUT/summary.md"
