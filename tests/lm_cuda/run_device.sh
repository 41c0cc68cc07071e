#!/usr/bin/env bash
# One device call (GPU machine, repo root) for `kwm train` on the GPU (issue 7): configure Release
# with CUDA for sm_90, build kwm and lm_cuda_test (-j16), run lm_cuda_test and the lm_cuda_cli
# ctest scripts, then time configs/lm_gpu_10m.yaml through kwm train on the GPU and on the CPU
# (each stopped by SIGTERM after a fixed time: it checkpoints and exits; tokens/s from the
# metrics lines' tokens and wall_s). The GPU image has no SentencePiece: Debian 12's library,
# headers and pkgconf are carried in build/sp-carry (made on the CPU machine; see docs/gpu-lm.md).
# usage: OUT=/some/dir [GPU_SECONDS=60] [CPU_SECONDS=40] bash tests/lm_cuda/run_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-lm-cuda-cli-out}
GPU_SECONDS=${GPU_SECONDS:-60}
CPU_SECONDS=${CPU_SECONDS:-40}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0
carry=$PWD/build/sp-carry
export PKG_CONFIG_PATH=$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
command -v pkg-config > /dev/null || export PATH=$carry/bin:$PATH
BUILD=build/lm-cuda-cli
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  lscpu | grep -E "Model name|^CPU\(s\)"
  command -v pkg-config
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF 2>&1 | grep -E "KWM|Error|error" | head
  time timeout 220 cmake --build "$BUILD" -j16 --target kwm lm_cuda_test 2>&1 | tail -8
} > "$OUT/build.log" 2>&1
KWM=$BUILD/launch/kwm
[ -x "$KWM" ] || KWM=$(find "$BUILD" -maxdepth 3 -name kwm -type f -perm -u+x | head -1)
echo "kwm: $KWM" >> "$OUT/build.log"
timeout 60 "$BUILD/tests/lm_cuda/lm_cuda_test" > "$OUT/test.log" 2>&1
echo "test exit $?" >> "$OUT/test.log"
(cd "$BUILD" && timeout 90 ctest -R lm_cuda_cli --output-on-failure -V) > "$OUT/ctest.log" 2>&1
echo "ctest exit $?" >> "$OUT/ctest.log"

# configs/lm_gpu_10m.yaml (novels, BPE 4096, 11.6M parameters, batch 32 x 256): a validation of
# 256 tokens every 20 steps and 2048 test tokens (both scored on the CPU in fp64), stopped by
# SIGTERM (kwm checkpoints and exits) or killed 10 s later. The first run of this script scored
# the whole test split on the CPU and ran out of the call's time (docs/gpu-lm.md).
speed() {  # speed NAME SECONDS DEVICE
  local name=$1 seconds=$2 device=$3
  {
    date -u
    timeout -k 10 -s TERM "$seconds" "$KWM" train --config configs/lm_gpu_10m.yaml \
      --run-dir "/tmp/kwm-speed-$name" --set learner.device="$device" \
      --set train.eval_every=20 --set train.eval_tokens=256 --set train.test_tokens=2048 \
      --set train.checkpoint_every=1000000
    echo "exit $?"
    cat "/tmp/kwm-speed-$name/metrics.jsonl"
  } > "$OUT/speed_$name.log" 2>&1
}
speed gpu "$GPU_SECONDS" cuda
[ "$SECONDS" -lt $((350 - CPU_SECONDS)) ] && speed cpu "$CPU_SECONDS" cpu
(cd "$OUT" && tar czf logs.tar.gz ./*.log)
tail -3 "$OUT/build.log"
grep -E "measured|OK \]|FAILED|PASSED|SKIPPED|Failure|exit" "$OUT/test.log" | head -40
grep -E "Test +#|ok:|FAIL|skip|max|exit|tests passed" "$OUT/ctest.log" | head -30
for f in "$OUT"/speed_*.log; do echo "== $f"; grep -E "learner|exit|tokens:" "$f" | head -4; tail -3 "$f"; done
