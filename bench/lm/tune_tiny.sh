#!/bin/bash
# The tuning grid behind the shipped configs/lm_tiny*.yaml (docs/lm-results.md, "Tuning"): every
# candidate trains 30,720 tokens (60 steps of 8 x 64, or 480 of 1 x 64) and is judged on its
# VALIDATION loss only (the test split is never looked at). Prints one line per candidate:
#   name  val_nll  wall_s  | overrides
# Usage: bench/lm/tune_tiny.sh [> bench/lm/tuning.txt]    (KWM=path/to/kwm; default build/evidence)
# Run time: about 20 minutes on the shared 2-core machine (the ensemble rows are 80-100 s each).
set -euo pipefail
cd "$(dirname "$0")/../.."
KWM="${KWM:-build/evidence/launch/kwm}"
[ -x "$KWM" ] || { echo "tune_tiny: no kwm binary at $KWM" >&2; exit 2; }
RUNS=runs/lm_tuning
mkdir -p "$RUNS"

run() {  # name config overrides... (each a key=value for --set)
  local name=$1 config=$2; shift 2
  local sets=() s
  for s in "$@"; do sets+=(--set "$s"); done
  # The base learner keys are reset to their defaults so that each line is exactly its overrides
  # on top of the learner type (the shipped configs carry the chosen values).
  "$KWM" train --config "$config" --run-dir "$RUNS/$name" --set train.tokens=30720 \
    --set train.eval_every=1000000 "${sets[@]}" --json --quiet 2> "$RUNS/$name.log" |
    tail -n 1 > "$RUNS/$name.json"
  /usr/bin/python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:24s} {r[\"val_nll\"]:10.4f} {r[\"wall_s\"]:7.1f}  | {\" \".join(sys.argv[3:])}")' \
    "$RUNS/$name.json" "$name" "$@"
}

lin=configs/lm_tiny.yaml
base_lin=(learner.type=kwm-linearized learner.forgetting=1 learner.noise.mode=fixed)
run lin_r1 $lin "${base_lin[@]}" learner.noise.variance=1
run lin_r0.1 $lin "${base_lin[@]}" learner.noise.variance=0.1
run lin_r0.3 $lin "${base_lin[@]}" learner.noise.variance=0.3
run lin_r3 $lin "${base_lin[@]}" learner.noise.variance=3
run lin_adaptive $lin learner.forgetting=1 learner.noise.mode=adaptive
run lin_r0.3_f0.99 $lin "${base_lin[@]}" learner.noise.variance=0.3 learner.forgetting=0.99

rls=configs/lm_tiny_rls_head.yaml
run rls_default $rls learner.delta=0.01 learner.probability_ema=0
run rls_iv10 $rls learner.delta=0.01 learner.probability_ema=0 learner.initial_variance=10
run rls_d1 $rls learner.delta=1 learner.probability_ema=0
run rls_d0.1_ema0.9 $rls learner.delta=0.1 learner.probability_ema=0.9
run rls_d0.1_ema0.99 $rls learner.delta=0.1 learner.probability_ema=0.99
run rls_d0.03_ema0.99 $rls learner.delta=0.03 learner.probability_ema=0.99
run rls_d0.01_ema0.99 $rls learner.delta=0.01 learner.probability_ema=0.99
run rls_d0.01_ema0.999 $rls learner.delta=0.01 learner.probability_ema=0.999

adamw=configs/lm_tiny_adamw.yaml
run adamw_1e-3 $adamw learner.learning_rate=1e-3
run adamw_3e-3 $adamw learner.learning_rate=3e-3
run adamw_1e-2 $adamw learner.learning_rate=1e-2
run adamw_3e-3_cosine $adamw learner.learning_rate=3e-3 learner.schedule=cosine \
  learner.warmup_steps=5 learner.total_steps=60 learner.min_learning_rate=3e-4

mezo=configs/lm_tiny_mezo.yaml
run mezo_b8_1e-2 $mezo train.batch=8 learner.learning_rate=1e-2
run mezo_b8_3e-2 $mezo train.batch=8 learner.learning_rate=3e-2
run mezo_b8_1e-1 $mezo train.batch=8 learner.learning_rate=1e-1
run mezo_b1_1e-3 $mezo train.batch=1 learner.learning_rate=1e-3
run mezo_b1_3e-3 $mezo train.batch=1 learner.learning_rate=3e-3
run mezo_b1_1e-2 $mezo train.batch=1 learner.learning_rate=1e-2

ens=configs/lm_tiny_ensemble.yaml
run ens_b8_r0.3 $ens train.batch=8 learner.observation_noise=0.3 learner.process_noise=0.02
run ens_b8_r10 $ens train.batch=8 learner.observation_noise=10 learner.process_noise=0.02
run ens_b8_r100 $ens train.batch=8 learner.observation_noise=100 learner.process_noise=0.02
run ens_b1_r0.3 $ens train.batch=1 learner.observation_noise=0.3 learner.process_noise=0.02
run ens_b1_r1 $ens train.batch=1 learner.observation_noise=1 learner.process_noise=0.02
run ens_b1_r1_pn0.007 $ens train.batch=1 learner.observation_noise=1 learner.process_noise=0.007
run ens_b1_r0.5_pn0.007 $ens train.batch=1 learner.observation_noise=0.5 learner.process_noise=0.007
run ens_b1_r1_pn0.05 $ens train.batch=1 learner.observation_noise=1 learner.process_noise=0.05
