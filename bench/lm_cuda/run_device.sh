#!/usr/bin/env bash
# One device call (GPU machine, repo root): configure Release with CUDA for sm_90, build only
# lm_cuda_test and lm_cuda_forward_bench, run the conformance tests, the benchmark, then
# compute-sanitizer memcheck and racecheck on the small cases. Logs go to $OUT.
# usage: OUT=/some/dir bash bench/lm_cuda/run_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-lm-cuda-out}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
BUILD=build/lm-cuda
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  lscpu | grep -E "Model name|^CPU\(s\)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-march=native 2>&1 |
    tail -12
  cmake --build "$BUILD" -j16 --target lm_cuda_test lm_cuda_forward_bench 2>&1 | tail -30
} > "$OUT/build.log" 2>&1
TEST=$BUILD/tests/lm_cuda/lm_cuda_test
BENCH=$BUILD/bench/lm_cuda/lm_cuda_forward_bench
if [ ! -x "$TEST" ] || [ ! -x "$BENCH" ]; then
  # The rest of the tree may not configure on this image: compile only what these two need.
  echo "== fallback build ==" >> "$OUT/build.log"
  F=build/lm-cuda-fallback
  mkdir -p $F
  for k in elementwise layer_norm softmax; do
    nvcc -std=c++17 -O3 -arch=sm_90 -I. -c core/lm/cuda/$k.cu -o $F/$k.o >> "$OUT/build.log" 2>&1
  done
  COMMON="-std=c++20 -O2 -march=native -I. -I/usr/include/eigen3 -I/usr/local/include/eigen3
    -I/usr/local/cuda/include core/lm/*.cpp core/lm/cuda/*.cpp $F/*.o -L/usr/local/cuda/lib64
    -lyaml-cpp -lcublas -lcudart -lpthread"
  g++ $COMMON tests/lm_cuda/gpt_forward_cuda_test.cpp -lgtest -lgtest_main -o $F/lm_cuda_test \
    >> "$OUT/build.log" 2>&1
  g++ $COMMON bench/lm_cuda/forward_bench.cpp -o $F/lm_cuda_forward_bench >> "$OUT/build.log" 2>&1
  TEST=$F/lm_cuda_test
  BENCH=$F/lm_cuda_forward_bench
fi
"$TEST" > "$OUT/test.log" 2>&1
{
  echo "== default: GPU batch 32 x 256, CPU batch 4 x 256 =="
  "$BENCH" --gpu-batch 32 --cpu-batch 4 --reps 20 --cpu-reps 3
  echo "== equal batches: 4 x 256 on both =="
  "$BENCH" --gpu-batch 4 --cpu-batch 4 --reps 20 --cpu-reps 1
  echo "== GPU batch 128 x 256 =="
  "$BENCH" --gpu-batch 128 --cpu-batch 1 --reps 10 --cpu-reps 1
} > "$OUT/bench.log" 2>&1
{
  echo "== memcheck (tiny, upload, bad input) =="
  timeout 90 compute-sanitizer --tool memcheck "$TEST" \
    --gtest_filter='*Tiny*:*Upload*:*BadInput*' 2>&1 | tail -8
  echo "== racecheck (tiny) =="
  timeout 60 compute-sanitizer --tool racecheck "$TEST" --gtest_filter='*Tiny*' 2>&1 | tail -6
} > "$OUT/sanitizer.log" 2>&1
tail -5 "$OUT/build.log"
grep -E "measured|OK \]|FAILED|PASSED|SKIPPED|Failure|error" "$OUT/test.log" | head -40
grep -E "SUMMARY|==" "$OUT/sanitizer.log"
cat "$OUT/bench.log"
