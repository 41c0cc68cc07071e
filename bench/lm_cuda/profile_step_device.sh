#!/usr/bin/env bash
# Where the KWM-linearized step's device time goes, kernel by kernel (one device call, GPU machine,
# repo root): a Release build of lm_cuda_train_bench, then Nsight Compute's kernel durations over
# the step alone (--skip-pass 1, graphs off so that each launch is seen; 2 warm-up + REPS timed steps),
# summed per kernel by kernel_table.py. ncu serialises kernels, so the table is kernel time
# without the overlap of the two streams: it says what to make faster, the bench says how fast.
# usage: OUT=/some/dir [MATHS="tf32:tf32"] [BATCH=32] bash bench/lm_cuda/profile_step_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-profile-out}
MATHS=${MATHS:-"tf32:tf32"}
BATCH=${BATCH:-32}
REPS=${REPS:-1}
BUILD=${BUILD:-build/profile}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
bench=$BUILD/bench/lm_cuda/lm_cuda_train_bench
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  git log --oneline -1 2>/dev/null || true
  if [ ! -x "$bench" ]; then  # a build the same call made (run_issue7_device.sh) is reused
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_WARNINGS_AS_ERRORS=ON 2>&1 | grep -E "KWM|Error" | head
    time cmake --build "$BUILD" -j16 --target lm_cuda_train_bench 2>&1 | grep -E "error|FAILED" | head
  fi
} > "$OUT/build-profile.log" 2>&1
steps=$((REPS + 2))
for maths in $MATHS; do
  tag=${maths/:/-}
  ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    "$bench" --batch "$BATCH" --reps "$REPS" --skip-pass 1 --graphs off \
    --tensor-math "${maths%%:*}" --statistics-math "${maths#*:}" > "$OUT/ncu-$tag.csv" 2> "$OUT/ncu-$tag.err"
  echo "ncu exit $? ($maths)" >> "$OUT/ncu-$tag.err"
  python3 bench/lm_cuda/kernel_table.py "$OUT/ncu-$tag.csv" "$steps" > "$OUT/kernels-$tag.md"
done
tail -3 "$OUT/build-profile.log"
for f in "$OUT"/kernels-*.md; do echo "== $f"; head -${TABLE_ROWS:-40} "$f"; tail -1 "$f"; done
