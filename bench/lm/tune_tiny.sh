#!/bin/bash
# The tuning grid behind the shipped configs/lm_tiny*.yaml (docs/lm-results.md, "Tuning"): every
# candidate trains 30,720 tokens (60 steps of 8 x 64, or 480 of 1 x 64) and is judged on its
# VALIDATION loss only (the test split is never looked at). Prints one line per candidate:
#   name  val_nll  wall_s  | overrides
# Usage: bench/lm/tune_tiny.sh [> bench/lm/tuning.txt]    (KWM=path/to/kwm; default build/evidence;
# the rows after "Forward-only learners with the unigram head-bias start" need a kwm with
# train.head_bias_init and the lora subspace)
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
  # The first grid predates train.head_bias_init (zero bias); rows that want it set it again.
  "$KWM" train --config "$config" --run-dir "$RUNS/$name" --set train.tokens=30720 \
    --set train.eval_every=1000000 --set train.head_bias_init=zero "${sets[@]}" --json --quiet \
    2> "$RUNS/$name.log" |
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
# The first ensemble grid: 16 members on the head subspace with the random-walk process noise.
ens_old=(learner.members=16 learner.subspace=head learner.process_noise_mode=walk)
run ens_b8_r0.3 $ens "${ens_old[@]}" train.batch=8 learner.observation_noise=0.3 learner.process_noise=0.02
run ens_b8_r10 $ens "${ens_old[@]}" train.batch=8 learner.observation_noise=10 learner.process_noise=0.02
run ens_b8_r100 $ens "${ens_old[@]}" train.batch=8 learner.observation_noise=100 learner.process_noise=0.02
run ens_b1_r0.3 $ens "${ens_old[@]}" train.batch=1 learner.observation_noise=0.3 learner.process_noise=0.02
run ens_b1_r1 $ens "${ens_old[@]}" train.batch=1 learner.observation_noise=1 learner.process_noise=0.02
run ens_b1_r1_pn0.007 $ens "${ens_old[@]}" train.batch=1 learner.observation_noise=1 learner.process_noise=0.007
run ens_b1_r0.5_pn0.007 $ens "${ens_old[@]}" train.batch=1 learner.observation_noise=0.5 learner.process_noise=0.007
run ens_b1_r1_pn0.05 $ens "${ens_old[@]}" train.batch=1 learner.observation_noise=1 learner.process_noise=0.05

# Forward-only learners with the unigram head-bias start (train.head_bias_init: unigram, now in
# every lm_tiny config) and the low-rank-adapter subspace; the zero-bias rows first. Each row sets
# every learner key it depends on, so it reproduces whatever the shipped config holds.
U=train.head_bias_init=unigram
Z=train.head_bias_init=zero
L4='learner.subspace={type: lora, rank: 4}'
L1='learner.subspace={type: lora, rank: 1}'
H=learner.subspace=head
ens16=(learner.members=16 learner.process_noise_mode=centered)
run z_mezo_lora4_3e-3 $mezo $Z "$L4" learner.learning_rate=3e-3
run z_mezo_lora4_1e-2 $mezo $Z "$L4" learner.learning_rate=1e-2
run z_mezo_lora1_1e-2 $mezo $Z "$L1" learner.learning_rate=1e-2
run z_ens_head_centered $ens $Z $H "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.02
run z_ens_lora4 $ens $Z "$L4" "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.02
run z_ens_lora4_j64 $ens $Z "$L4" "${ens16[@]}" learner.members=64 learner.observation_noise=1 learner.process_noise=0.02
run z_ens_lora4_q0.05 $ens $Z "$L4" "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.05
run z_ens_lora4_q0.05_s0.5 $ens $Z "$L4" "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.05 learner.initial_std=0.5
run z_ens_lora4_j32_q0.05_r3 $ens $Z "$L4" "${ens16[@]}" learner.members=32 learner.observation_noise=3 learner.process_noise=0.05
run u_mezo_head_5e-4 $mezo $U $H learner.learning_rate=5e-4
run u_mezo_head_1e-3 $mezo $U $H learner.learning_rate=1e-3
run u_mezo_head_2e-3 $mezo $U $H learner.learning_rate=2e-3
run u_mezo_head_3e-3 $mezo $U $H learner.learning_rate=3e-3
run u_mezo_head_1e-2 $mezo $U $H learner.learning_rate=1e-2
run u_mezo_lora4_3e-3 $mezo $U "$L4" learner.learning_rate=3e-3
run u_mezo_lora1_3e-3 $mezo $U "$L1" learner.learning_rate=3e-3
run u_ens_head_r1_q0.02 $ens $U $H "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.02
run u_ens_lora4_r1_q0.02 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.02
run u_ens_lora4_r100_q0.02 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=100 learner.process_noise=0.02
run u_ens_lora4_r30_q0.01 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=30 learner.process_noise=0.01
run u_ens_lora4_r10_q0.003 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=10 learner.process_noise=0.003
run u_ens_lora4_r10_q0.003_walk $ens $U "$L4" "${ens16[@]}" learner.observation_noise=10 learner.process_noise=0.003 learner.process_noise_mode=walk
run u_ens_lora4_r3_q0.003 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=3 learner.process_noise=0.003
run u_ens_lora4_r1_q0.003 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=1 learner.process_noise=0.003
run u_ens_lora4_r3_q0.005 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=3 learner.process_noise=0.005
run u_ens_lora4_r10_q0.001 $ens $U "$L4" "${ens16[@]}" learner.observation_noise=10 learner.process_noise=0.001
run u_ens_lora8_r3_q0.003 $ens $U 'learner.subspace={type: lora, rank: 8}' "${ens16[@]}" learner.observation_noise=3 learner.process_noise=0.003
run u_ens_lora4_r3_q0.003_j32 $ens $U "$L4" "${ens16[@]}" learner.members=32 learner.observation_noise=3 learner.process_noise=0.003
run u_lin $lin $U
run u_rls $rls $U
run u_adamw $adamw $U
# Annealed process noise (q_t = q / sqrt(1 + t / h)) on the shipped ensemble setting.
ens32=(learner.members=32 "$L4" learner.observation_noise=3 learner.process_noise_mode=centered)
run u_ens_lora4_j32_q0.01_h100 $ens $U "${ens32[@]}" learner.process_noise=0.01 learner.process_noise_halflife=100
run u_ens_lora4_j32_q0.006_h300 $ens $U "${ens32[@]}" learner.process_noise=0.006 learner.process_noise_halflife=300
