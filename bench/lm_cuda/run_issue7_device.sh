#!/usr/bin/env bash
# One device call (GPU machine, repo root) covering issue 7's GPU code at once: one Release build
# (CUDA sm_90, warnings as errors) of kwm, lm_cuda_test and the GPU benchmarks; the conformance
# tests; the kwm train GPU scripts (resume, rls-head resume, several ranks); the KWM step (fp32
# and TF32 pass GEMMs, fp32 and TF32 statistics, with its phase breakdown) and the rls-head step against PyTorch AdamW on the same model and batches;
# the roofline. Everything under $OUT, packed into $OUT/issue7.tar.gz (few files come back).
# Carry build/sp-carry (tests/lm_cuda/make_sp_carry.sh; the image has no SentencePiece).
# Part `solves`: the TF32 step (TF32 statistics) with the triangular solves' right-hand sides
# whole and in column chunks of SOLVE_COLUMNS (--solve-columns; the learner's default is 128),
# each with its phases, in two alternating rounds.
# usage: OUT=/some/dir [PARTS="test cli|cli_core bench solves torch roofline"] [BATCHES="32 64"]
#   [TORCH_ARGS="--cudagraphs 1", the default; TORCH_ARGS= leaves the CUDA-graph step out]
#   bash bench/lm_cuda/run_issue7_device.sh
set -uo pipefail
OUT=${OUT:-/tmp/kwm-issue7-out}
PARTS=${PARTS:-"test cli bench torch roofline"}
BATCHES=${BATCHES:-"32 64"}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0
carry=$PWD/build/sp-carry
export PKG_CONFIG_PATH=$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
BUILD=${BUILD:-build/issue7}
# A part runs when asked for and while the call has time left (LIMIT seconds, default 540, under
# the device tool's 600); pack after each, so a call cut short still returns what finished.
has() { [[ " $PARTS " == *" $1 "* ]] && [ "$SECONDS" -lt "${LIMIT:-540}" ]; }
pack() { tar czf "$OUT/issue7.tar.gz" --exclude=issue7.tar.gz -C "$OUT" .; }
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  lscpu | grep -E "Model name|^CPU\(s\)"
  git log --oneline -1
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_WARNINGS_AS_ERRORS=ON -DCMAKE_CXX_FLAGS=-march=native \
    2>&1 | grep -E "KWM|Error|error" | head
  time timeout 300 cmake --build "$BUILD" -j16 --target kwm lm_cuda_test lm_cuda_train_bench \
    lm_cuda_roofline_bench lm_cuda_rls_head_bench lm_cuda_ensemble_bench lm_cuda_mezo_bench 2>&1 | grep -E "error|FAILED|warning" | head -30
} > "$OUT/build.log" 2>&1
B=$BUILD/bench/lm_cuda
if has test; then
  timeout 150 "$BUILD/tests/lm_cuda/lm_cuda_test" > "$OUT/test.log" 2>&1
  echo "test exit $?" >> "$OUT/test.log"
  pack
fi
if has cli || has cli_core; then
  # cli_core: kwm-linearized's resume and rank scripts only (the other learners' rank logic is
  # also covered by lm_cuda_test's emulated-rank tests).
  pattern=lm_cuda_cli
  has cli || pattern='lm_cuda_cli_(resume|ranks)$'
  (cd "$BUILD" && timeout 420 ctest -R "$pattern" --output-on-failure -V) > "$OUT/ctest.log" 2>&1
  echo "ctest exit $?" >> "$OUT/ctest.log"
  pack
fi
if has bench; then
  {
    # pass GEMMs : statistics GEMMs; each with the phase breakdown after its timed calls
    # and the TF32 one once more with the step's graphs off (call by call)
    timeout 60 "$B/lm_cuda_train_bench" --batch 32 --reps 10 --tensor-math tf32 \
      --statistics-math tf32 --phases 1 --graphs off
    for maths in fp32:fp32 tf32:fp32 tf32:tf32 tf32:bf16; do
      for b in $BATCHES; do
        extra=""
        [ "$b" = 32 ] && [ "$maths" = fp32:fp32 ] && extra="--breakdown 1"
        # shellcheck disable=SC2086
        timeout 60 "$B/lm_cuda_train_bench" --batch "$b" --reps 10 --tensor-math "${maths%%:*}" \
          --statistics-math "${maths#*:}" --phases 1 $extra
      done
    done
    for b in $BATCHES; do
      timeout 60 "$B/lm_cuda_rls_head_bench" --batch "$b" --reps 20
    done
    timeout 90 "$B/lm_cuda_ensemble_bench" --batch 32 --reps 10
    for b in $BATCHES; do
      timeout 60 "$B/lm_cuda_mezo_bench" --batch "$b" --reps 20
      timeout 60 "$B/lm_cuda_mezo_bench" --batch "$b" --reps 20 --head-subspace 1
    done
  } > "$OUT/bench.log" 2>&1
  pack
fi
if has solves; then
  {
    for round in 1 2; do
      for b in $BATCHES; do
        for width in whole ${SOLVE_COLUMNS:-256 128 64 32}; do
          echo "round $round width $width"
          timeout 60 "$B/lm_cuda_train_bench" --batch "$b" --reps 10 --tensor-math tf32 \
            --statistics-math tf32 --phases 1 --skip-pass 1 --solve-columns "$width"
        done
      done
    done
  } > "$OUT/solves.log" 2>&1
  pack
fi
if has torch; then
  # shellcheck disable=SC2086
  timeout 200 python3 bench/lm_cuda/torch_gpt_step.py --batch $BATCHES --reps "${TORCH_REPS:-50}" \
    ${TORCH_ARGS---cudagraphs 1} > "$OUT/torch.log" 2>&1
  echo "torch exit $?" >> "$OUT/torch.log"
  pack
fi
if has roofline; then
  timeout 150 "$B/lm_cuda_roofline_bench" --batch 32 --reps 10 --json "$OUT/roofline.json" \
    > "$OUT/roofline.log" 2>&1
  echo "roofline exit $?" >> "$OUT/roofline.log"
fi
pack
tail -5 "$OUT/build.log"
[ -f "$OUT/test.log" ] && grep -E "FAILED|PASSED|Failure|exit" "$OUT/test.log" | head -20
[ -f "$OUT/ctest.log" ] && grep -E "Test +#|ok:|FAIL|exit|tests passed" "$OUT/ctest.log" | head -20
[ -f "$OUT/bench.log" ] && grep -E "RESULT" "$OUT/bench.log"
[ -f "$OUT/solves.log" ] && grep -E "RESULT|phases" "$OUT/solves.log"
[ -f "$OUT/torch.log" ] && grep -E "tokens/s|exit" "$OUT/torch.log" | head -12
[ -f "$OUT/roofline.log" ] && tail -3 "$OUT/roofline.log"
