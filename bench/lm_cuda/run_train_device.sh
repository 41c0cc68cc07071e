#!/usr/bin/env bash
# One device call (GPU machine, repo root) for the GPU training step (issue 7): configure Release
# with CUDA for sm_90, build lm_cuda_test and lm_cuda_train_bench, run the conformance tests
# (forward, transposed Jacobians, kwm-linearized step), the KWM timing, the PyTorch AdamW
# counterpart on the same model and batches, then compute-sanitizer memcheck and racecheck on the
# small cases. Logs go to $OUT.
# usage: OUT=/some/dir [BATCHES="8 32 64"] [TORCH_BATCHES="32 64"] bash bench/lm_cuda/run_train_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-lm-cuda-train-out}
BATCHES=${BATCHES:-"8 32 64"}
TORCH_BATCHES=${TORCH_BATCHES:-"32 64"}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0
BUILD=build/lm-cuda
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  lscpu | grep -E "Model name|^CPU\(s\)"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-march=native 2>&1 |
    tail -12
  time cmake --build "$BUILD" -j16 --target lm_cuda_test lm_cuda_train_bench 2>&1 | tail -30
} > "$OUT/build.log" 2>&1
TEST=$BUILD/tests/lm_cuda/lm_cuda_test
BENCH=$BUILD/bench/lm_cuda/lm_cuda_train_bench
timeout 120 "$TEST" > "$OUT/test.log" 2>&1
echo "test exit $?" >> "$OUT/test.log"
{
  date -u
  for b in $BATCHES; do
    echo "== KWM batch $b x 256 =="
    extra=""
    [ "$b" = 32 ] && extra="--breakdown 1"
    # shellcheck disable=SC2086
    timeout 60 "$BENCH" --batch "$b" --reps 10 $extra
  done
} > "$OUT/bench.log" 2>&1
# shellcheck disable=SC2086
timeout 200 python3 bench/lm_cuda/torch_gpt_step.py --batch $TORCH_BATCHES --reps 20 \
  > "$OUT/torch.log" 2>&1
echo "torch exit $?" >> "$OUT/torch.log"
{
  echo "== memcheck (transpose tiny, repeated tokens, bad input; kwm-linearized) =="
  timeout 120 compute-sanitizer --tool memcheck "$TEST" \
    --gtest_filter='LmCudaTranspose.Tiny*:LmCudaTranspose.Repeated*:LmCudaTranspose.BadInput*:LmCudaKwmLinearized.*' \
    2>&1 | tail -12
  echo "== racecheck (transpose tiny, kwm-linearized small) =="
  timeout 60 compute-sanitizer --tool racecheck "$TEST" \
    --gtest_filter='LmCudaTranspose.Tiny*:LmCudaKwmLinearized.NoHeadBias*' 2>&1 | tail -6
} > "$OUT/sanitizer.log" 2>&1
tail -4 "$OUT/build.log"
grep -E "measured|OK \]|FAILED|PASSED|SKIPPED|Failure|error|exit" "$OUT/test.log" | head -60
grep -E "RESULT|tokens/s|model:|breakdown" "$OUT/bench.log"
grep -E "tokens/s|exit|Error" "$OUT/torch.log" | head -20
grep -E "SUMMARY|==|ERROR" "$OUT/sanitizer.log" | head -20
