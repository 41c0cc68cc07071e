#!/usr/bin/env bash
# One device call (GPU machine, repository root): can kwm-ensemble on the GPU reach a target loss
# on configs/lm_gpu_10m.yaml within the forward-pass budget that would make it 2x cheaper than
# MeZO? MeZO (all parameters, rate 1e-4) reached the unigram after 240 batch forward passes in
# the sample-efficiency run (docs/results.md); a 32-member ensemble spends 33 per step, so it
# would have to get there within 3 steps. Each setting below trains STEPS steps of 32 x 256 on the
# GPU with a validation after every step (the same 8,192 validation tokens and unigram head-bias
# start as run_sample_efficiency.sh), from the same exported tokens.
# The image has no SentencePiece: carry build/sp-carry and data/text.
# A setting is r:q:std[:members[:subspace]]: members default to the shipped 32, subspace to the
# shipped lora4 (loraN: ln_f, head.bias and a rank-N adapter on the head; head: ln_f and the whole
# head). Fewer members cost fewer passes a step (members + 1).
# usage: OUT=/some/dir [KWM=path] [STEPS=10] [SETTINGS="r:q:std[:members[:subspace]] ..."] bash bench/lm_cuda/run_ensemble_sweep.sh
set -uo pipefail
OUT=${OUT:?set OUT to the output directory}
STEPS=${STEPS:-10}
# observation_noise : process_noise : initial_std (configs/lm_tiny_ensemble.yaml ships 3 : 0.003 : 0.1)
SETTINGS=${SETTINGS:-"3:0.003:0.1 3:0.003:0.02 30:0.003:0.1 30:0.003:0.02 300:0.003:0.02 300:0.0003:0.02"}
CONFIG=configs/lm_gpu_10m.yaml
W=${WORK:-/tmp/kwm-ensemble-sweep}
rm -rf "$W"
mkdir -p "$OUT" "$W/runs"
export PATH=/usr/local/cuda/bin:$PATH
carry=$PWD/build/sp-carry
if [ -d "$carry" ]; then
  export PKG_CONFIG_PATH=$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if [ -z "${KWM:-}" ]; then
  BUILD=${BUILD:-build/ensemble-sweep}
  {
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=OFF 2>&1 | grep -E "KWM|rror"
    timeout 240 cmake --build "$BUILD" -j16 --target kwm 2>&1 | tail -3
  } > "$OUT/build.log" 2>&1
  KWM=$BUILD/launch/kwm
fi
"$KWM" tokens --config "$CONFIG" --out "$W/tokens" > "$OUT/tokens.log" 2>&1
learner=$(awk '/^learner:/ { p = 1; print; next } /^[^ #]/ { p = 0 } p' configs/lm_tiny_ensemble.yaml)
awk -v block="$learner
  device: cuda" '/^[^ #]/ { skip = 0 } /^learner:/ { print block; skip = 1; next } !skip' \
  "$CONFIG" > "$W/ensemble.yaml"
tokens=$((STEPS * 32 * 256))
for s in $SETTINGS; do
  IFS=: read -r r q std members subspace <<< "$s"
  members=${members:-32}
  subspace=${subspace:-lora4}
  case $subspace in
    head) subspace_yaml="{type: head}" ;;
    lora*) subspace_yaml="{type: lora, rank: ${subspace#lora}}" ;;
    *) echo "unknown subspace '$subspace' in setting $s (head or loraN)" >&2; exit 2 ;;
  esac
  name=r$r-q$q-std$std
  [ "$members" = 32 ] && [ "$subspace" = lora4 ] || name=$name-j$members-$subspace
  dir=$W/runs/$name
  mkdir -p "$dir"
  cp -r "$W/tokens/tokens" "$W"/tokens/tokenizer.* "$dir/"
  timeout -k 5 90 "$KWM" train --config "$W/ensemble.yaml" --run-dir "$dir" --quiet \
    --set train.tokens=$tokens --set train.eval_every=1 --set train.eval_tokens=8192 \
    --set train.head_bias_init=unigram --set train.test_tokens=2048 \
    --set learner.observation_noise="$r" --set learner.process_noise="$q" \
    --set learner.initial_std="$std" --set learner.members="$members" \
    --set "learner.subspace=$subspace_yaml" > "$OUT/$name.log" 2>&1
  echo "exit $?" >> "$OUT/$name.log"
  cp "$dir/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2> /dev/null
  printf '%s:' "$name"
  python3 -c "import json,sys; print(' '.join('%.4f' % json.loads(l)['val_nll'] for l in open(sys.argv[1]) if 'val_nll' in json.loads(l)))" \
    "$dir/metrics.jsonl" 2> /dev/null || echo " no metrics"
done | tee "$OUT/summary.txt"
grep -m1 unigram "$OUT/tokens.log" || true
tar czf "$OUT/ensemble_sweep.tar.gz" -C "$OUT" --exclude=ensemble_sweep.tar.gz .
