#!/usr/bin/env bash
# One device call: build the CUDA backend + conformance suite + GPU benchmark, run them all, and
# the PyTorch comparison. Logs and tables go to $OUT (at most 7 files).
# usage (repo root, on the GPU machine): OUT=/some/dir bash bench/gpu/run_device.sh [--quick]
set -uo pipefail
OUT=${OUT:-/tmp/kwm-gpu-out}
mkdir -p "$OUT"
QUICK=${1:-}
J=$(nproc)
export PATH=/usr/local/cuda/bin:$PATH
{
  date -u; nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  nvcc --version | tail -2; cmake --version | head -1
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=ON 2>&1 | tail -15
  cmake --build build/dev -j"$J" --target backend_conformance_test 2>&1 | tail -25
} > "$OUT/env_build.log" 2>&1
TEST=build/dev/tests/backend/backend_conformance_test
if [ ! -x "$TEST" ]; then
  # Fallback when the rest of the tree does not configure right now: build only our sources.
  echo "== fallback build ==" >> "$OUT/env_build.log"
  mkdir -p build/fallback
  nvcc -std=c++17 -O3 -arch=sm_90 -I. -c core/backend/cuda/cuda_backend.cu -o build/fallback/a.o &&
  nvcc -std=c++17 -O3 -arch=sm_90 -I. -c core/backend/cuda/kernels.cu -o build/fallback/b.o &&
  nvcc -std=c++17 -O3 -arch=sm_90 -I. -c core/backend/cuda/riccati_downdate.cu -o build/fallback/c.o &&
  g++ -std=c++20 -O2 -I. -I/usr/include/eigen3 -I/usr/local/include/eigen3 -DKWM_HAVE_CUDA=1 \
    -I/usr/local/cuda/include tests/backend/conformance_test.cpp core/backend/backend_registry.cpp \
    core/backend/cpu/cpu_backend.cpp build/fallback/*.o -L/usr/local/cuda/lib64 \
    -lgtest -lgtest_main -lcublas -lcusolver -lcudart -lpthread -o build/fallback/conformance \
    >> "$OUT/env_build.log" 2>&1
  TEST=build/fallback/conformance
fi
(nvcc -std=c++17 -O3 -arch=sm_90 -I. bench/gpu/riccati_gpu_bench.cu core/backend/cuda/cuda_backend.cu \
  core/backend/cuda/kernels.cu core/backend/cuda/riccati_downdate.cu -lcublas -lcusolver \
  -o build/riccati_gpu_bench >> "$OUT/env_build.log" 2>&1) &
BENCH_BUILD=$!
{
  "$TEST" 2>&1 | tail -60
  echo "== compute-sanitizer memcheck (cuda fp32 + fp64 downdate, cholesky, eigen) =="
  timeout 100 compute-sanitizer --tool memcheck "$TEST" \
    --gtest_filter='*Riccati*cuda*:*Cholesky*cuda*:*Eigen*cuda_fp32:*DiagonalAnd*cuda_fp32' 2>&1 | tail -8
  echo "== compute-sanitizer racecheck (fused downdate, symmetrize) =="
  timeout 80 compute-sanitizer --tool racecheck "$TEST" \
    --gtest_filter='*Riccati*cuda_fp32:*DiagonalAnd*cuda_fp32' 2>&1 | tail -6
} > "$OUT/conformance.log" 2>&1
wait $BENCH_BUILD
./build/riccati_gpu_bench $QUICK --json "$OUT/bench.json" > "$OUT/bench.log" 2>&1
{
  for nm in "8192 1" "8192 64"; do
    timeout 60 ncu --clock-control none -k regex:riccati_downdate_kernel -c 1 -s 1 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
      ./build/riccati_gpu_bench --profile $nm 2>&1 | grep -vE "^==PROF==" | tail -60
  done
} > "$OUT/ncu.log" 2>&1
PYTHONUNBUFFERED=1 python3 bench/pytorch/riccati_torch.py $QUICK --json "$OUT/torch.json" \
  --kwm "$OUT/bench.json" --md "$OUT/compare.md" > "$OUT/torch.log" 2>&1
grep -E "PASSED|FAILED|SKIPPED \]|ERROR SUMMARY|RACECHECK SUMMARY|tests ran" "$OUT/conformance.log" | head -20
grep -E "ceilings|check" "$OUT/bench.log"
grep -E "\| (1024|4096|8192) \| (1|16|64|256) \|" "$OUT/bench.log" | grep -E "downdate|fused|whole" | head -120
grep -E "rls|dekf" "$OUT/bench.log"
cat "$OUT/compare.md"
tail -3 "$OUT/torch.log"
