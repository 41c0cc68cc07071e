#!/usr/bin/env bash
# One device call (GPU machine, repo root) for the GPU training step (issue 7): configure Release
# with CUDA for sm_90, build lm_cuda_test, lm_cuda_train_bench and lm_cuda_roofline_bench, run the
# conformance tests (forward, transposed Jacobians, kwm-linearized step, TF32), the KWM timing with
# the pass's GEMMs in fp32 and in TF32 (MATHS), the roofline of the step's Riccati and factor
# pieces (ROOFLINE=1), the PyTorch AdamW counterpart on the same model and batches, then
# compute-sanitizer memcheck and racecheck on the small cases. Logs go to $OUT, and all of them
# (with roofline.json) packed into $OUT/lm-cuda-train.tar.gz.
# usage: OUT=/some/dir [BATCHES="8 32 64"] [TORCH_BATCHES="32 64"] [MATHS="fp32 tf32"]
#        [ROOFLINE=1] bash bench/lm_cuda/run_train_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-lm-cuda-train-out}
BATCHES=${BATCHES:-"8 32 64"}
TORCH_BATCHES=${TORCH_BATCHES:-"32 64"}
MATHS=${MATHS:-"fp32 tf32"}
ROOFLINE=${ROOFLINE:-1}
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
  time cmake --build "$BUILD" -j16 --target lm_cuda_test lm_cuda_train_bench \
    lm_cuda_roofline_bench 2>&1 | tail -30
} > "$OUT/build.log" 2>&1
TEST=$BUILD/tests/lm_cuda/lm_cuda_test
BENCH=$BUILD/bench/lm_cuda/lm_cuda_train_bench
ROOF=$BUILD/bench/lm_cuda/lm_cuda_roofline_bench
timeout 120 "$TEST" > "$OUT/test.log" 2>&1
echo "test exit $?" >> "$OUT/test.log"
{
  date -u
  for math in $MATHS; do
    for b in $BATCHES; do
      echo "== KWM batch $b x 256, pass GEMMs $math =="
      extra=""
      [ "$b" = 32 ] && [ "$math" = fp32 ] && extra="--breakdown 1"
      # shellcheck disable=SC2086
      timeout 60 "$BENCH" --batch "$b" --reps 10 --tensor-math "$math" $extra
    done
  done
} > "$OUT/bench.log" 2>&1
if [ "$ROOFLINE" = 1 ]; then
  {
    date -u
    timeout 180 "$ROOF" --batch 32 --reps 10 --json "$OUT/roofline.json"
    echo "roofline exit $?"
  } > "$OUT/roofline.log" 2>&1
fi
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
[ -f "$OUT/roofline.log" ] && cat "$OUT/roofline.log"
tar czf "$OUT/lm-cuda-train.tar.gz" --exclude=lm-cuda-train.tar.gz -C "$OUT" .
ls -l "$OUT"
