#!/usr/bin/env bash
# One device call: build kwm_dekf_scaling_gpu, run the sharded DEKF update's strong and weak
# scaling on 1, 2, 4, ... G GPUs (NCCL; the powers of two up to G, then G), then the PyTorch DDP
# reference (GPT-2 small, AdamW, bf16 autocast, fixed per-GPU batch) on the same GPU counts, all
# on the same machine in the same call.
# usage (repo root, on the GPU machine): OUT=/some/dir bash bench/distributed/run_gpu_scaling.sh [G]
# Files in $OUT (6): env_build.log, kwm_scaling.jsonl, kwm_scaling.log, ddp.jsonl, ddp.log,
# summary.md (bench/distributed/summarise_gpu_scaling.py). CONFORMANCE=1 also builds and runs the
# backend conformance suite (CUDA cases included) before the timings, and at the end, time
# permitting, compute-sanitizer memcheck on its batched cases: a 7th file, conformance.log. DIAG=1
# adds runs that split the communication time (kwm_dekf_scaling_gpu --gather, --probe).
# NCCLTEST=1 also builds tests/distributed/nccl_sharded_test and runs it under mpirun on each GPU
# count (one GPU per rank), before the timings: a 7th file, nccl_test.log.
set -uo pipefail
OUT=${OUT:-/tmp/kwm-gpu-scaling}
G=${1:-2}
NPS=1; for ((k = 2; k < G; k *= 2)); do NPS="$NPS $k"; done; [ "$G" -gt 1 ] && NPS="$NPS $G"
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=build/gpuscale
mkdir -p build
{
  date -u; nvidia-smi
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  nvidia-smi topo -m
  nvcc --version | tail -2; cmake --version | head -1; mpirun --version | head -1; nproc
  python3 -c 'import torch; print("torch", torch.__version__, "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())'
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=OFF 2>&1 | tail -6
  if [ "${NCCLTEST:-0}" = 1 ]; then
    ( cmake -S . -B build/gpunccltest -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=ON > build/nccltest-build.log 2>&1 &&
      cmake --build build/gpunccltest -j32 --target nccl_sharded_test >> build/nccltest-build.log 2>&1 ) &
  fi
  if [ "${CONFORMANCE:-0}" = 1 ]; then
    # A separate tree with the tests, built alongside (its configure fails if another part of the
    # test tree is broken; then the suite is compiled directly, as bench/gpu/run_device.sh does).
    ( cmake -S . -B build/gpuconf -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=ON > build/conf-build.log 2>&1 &&
      cmake --build build/gpuconf -j16 --target backend_conformance_test >> build/conf-build.log 2>&1 ) &
  fi
  cmake --build $B -j32 --target kwm_dekf_scaling_gpu 2>&1 | tail -15
  wait
  [ -f build/conf-build.log ] && tail -5 build/conf-build.log
  [ -f build/nccltest-build.log ] && tail -5 build/nccltest-build.log
  date -u
} > "$OUT/env_build.log" 2>&1
if [ "${CONFORMANCE:-0}" = 1 ]; then
  TEST=build/gpuconf/tests/backend/backend_conformance_test
  if [ ! -x "$TEST" ]; then
    echo "== conformance: fallback build" >> "$OUT/env_build.log"
    mkdir -p build/conf-fallback
    for f in cuda_backend kernels riccati_downdate; do
      nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -I. -c core/backend/cuda/$f.cu \
        -o build/conf-fallback/$f.o >> "$OUT/env_build.log" 2>&1
    done
    g++ -std=c++20 -O2 -I. -I/usr/include/eigen3 -DKWM_HAVE_CUDA=1 -I/usr/local/cuda/include \
      tests/backend/conformance_test.cpp core/backend/backend_registry.cpp \
      core/backend/cpu/cpu_backend.cpp build/conf-fallback/*.o -L/usr/local/cuda/lib64 \
      -lgtest -lgtest_main -lcublas -lcusolver -lcudart -lpthread \
      -o build/conf-fallback/conformance >> "$OUT/env_build.log" 2>&1
    TEST=build/conf-fallback/conformance
  fi
  CUDA_VISIBLE_DEVICES=0 timeout 180 "$TEST" > "$OUT/conformance.log" 2>&1
  echo "== conformance exit $?" >> "$OUT/conformance.log"
fi
if [ "${NCCLTEST:-0}" = 1 ]; then
  NT=$(find build/gpunccltest -name nccl_sharded_test -type f -perm -u+x | head -1)
  for np in $NPS; do
    echo "== nccl_sharded_test np $np" >> "$OUT/nccl_test.log"
    if [ -n "$NT" ]; then
      timeout 120 mpirun --bind-to none -x NCCL_NVLS_ENABLE -np "$np" "$NT" >> "$OUT/nccl_test.log" 2>&1
      echo "== exit $?" >> "$OUT/nccl_test.log"
    else
      echo "== not built (build/nccltest-build.log in env_build.log)" >> "$OUT/nccl_test.log"
    fi
  done
fi
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
  for np in $NPS; do kwm $np --blocks 64 --n 1024 --m 8 $U; done
  for np in $NPS; do kwm $np --blocks 64 --n 1024 --m 8 $U --weak; done
  # The collectives alone (--probe): the fixed cost per NCCL call on each GPU count.
  for np in $NPS; do kwm $np --blocks 64 --n 1024 --m 8 $U --weak --gather equal --probe 20; done
fi
for np in $NPS; do ddp $np; done
if [ -x "$EXE" ]; then
  for n in 2048 4096; do
    [ "$SECONDS" -lt "$BUDGET" ] || { echo "== budget: skipped n=$n and later" >> "$OUT/kwm_scaling.log"; break; }
    for np in $NPS; do kwm $np --blocks 64 --n $n --m 8 $U; done
    for np in $NPS; do kwm $np --blocks 64 --n $n --m 8 $U --weak; done
  done
  # Larger m (more arithmetic per byte of P) at n = 1024 and 4096.
  for n in 1024 4096; do
    [ "$SECONDS" -lt "$BUDGET" ] || { echo "== budget: skipped m=64 n=$n" >> "$OUT/kwm_scaling.log"; continue; }
    for np in $NPS; do kwm $np --blocks 64 --n $n --m 64 $U; done
  done
  # Weak at a fixed 32 blocks per GPU, n = 1024 (the smaller per-GPU share).
  [ "$SECONDS" -lt "$BUDGET" ] && for np in $NPS; do kwm $np --blocks 32 --n 1024 --m 8 $U --weak; done
fi
if [ "${DIAG:-0}" = 1 ] && [ -x "$EXE" ]; then
  # Where the 2-GPU communication time goes: the all-reduce, the gather and the ranks' arrival
  # skew split out, the collectives alone (--probe), and the means gathered by one all_gather or
  # not at all (the update alone).
  for g in v equal none; do
    for np in $NPS; do kwm $np --blocks 64 --n 1024 --m 8 $U --weak --gather $g --probe 20; done
  done
  for g in equal none; do
    for np in $NPS; do kwm $np --blocks 64 --n 4096 --m 8 $U --weak --gather $g --probe 20; done
  done
fi
if [ "${CONFORMANCE:-0}" = 1 ] && [ -x "${TEST:-}" ] && [ "$SECONDS" -lt 470 ]; then
  echo "== compute-sanitizer memcheck (batched cases, cuda fp32)" >> "$OUT/conformance.log"
  CUDA_VISIBLE_DEVICES=0 timeout 90 compute-sanitizer --tool memcheck "$TEST" \
    --gtest_filter='*Batched*cuda_fp32:*GemmSum*cuda_fp32:*Poison*cuda_fp32' 2>&1 | tail -8 >> "$OUT/conformance.log"
fi
python3 bench/distributed/summarise_gpu_scaling.py "$OUT/kwm_scaling.jsonl" "$OUT/ddp.jsonl" \
  > "$OUT/summary.md" 2>&1
tail -4 "$OUT/env_build.log"
[ -f "$OUT/nccl_test.log" ] && grep -E "^== |PASSED|FAILED|SKIPPED|relative difference" "$OUT/nccl_test.log" | head -40
[ -f "$OUT/conformance.log" ] && grep -E "PASSED|FAILED|SKIPPED \]|ERROR SUMMARY|conformance exit|Failure" "$OUT/conformance.log" | head -20
cat "$OUT/summary.md"
