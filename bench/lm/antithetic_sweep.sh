#!/usr/bin/env bash
# Antithetic members against independent draws for kwm-ensemble, and both against kwm's mezo, on
# the tiny config (configs/lm_tiny_ensemble.yaml, configs/lm_tiny_mezo.yaml; unigram head-bias
# start): 15,360 training tokens per run (240 steps of 1 x 64), validation (4,096 tokens) every
# 10 steps, members 8 / 16 / 32 with learner.antithetic false and true, seeds 1-3. Prints one
# markdown row per setting: mean over seeds of the validation NLL at step 0, the best and the last
# one, and per seed the forward passes (all members', and the mean's prequential pass) at which
# validation first reached each target (unigram 3.252, 3.245, 3.240; '-': not reached).
# usage: bench/lm/antithetic_sweep.sh    (KWM=path/to/kwm, default build/release/launch/kwm, what launch/main_job.sh builds;
#        OUT=dir, default runs/antithetic_sweep; about 75 s on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
KWM=${KWM:-build/release/launch/kwm}
OUT=${OUT:-runs/antithetic_sweep}
[ -x "$KWM" ] || { echo "antithetic_sweep: no kwm binary at $KWM" >&2; exit 2; }
mkdir -p "$OUT"
run() {  # name config --set ...
  local name=$1 config=$2; shift 2
  "$KWM" train --config "$config" --run-dir "$OUT/$name" --set train.tokens=15360 \
    --set train.eval_every=10 "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "antithetic_sweep: $name failed: $(tail -2 "$OUT/$name.log")" >&2; exit 1; }
}
for seed in 1 2 3; do
  for members in 8 16 32; do
    for anti in false true; do  # two at a time
      run "e$members-$anti-s$seed" configs/lm_tiny_ensemble.yaml --set learner.members="$members" \
        --set learner.antithetic="$anti" --set train.seed="$seed" &
    done
    wait
  done
  run "mezo-s$seed" configs/lm_tiny_mezo.yaml --set train.seed="$seed"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
targets = [3.2520, 3.245, 3.240]
def curve(name):
    rows = []
    for line in open(f"{out}/{name}/metrics.jsonl"):
        d = json.loads(line)
        if "val_nll" in d:
            rows.append((d.get("forward_passes") or 0, d["val_nll"], d.get("step", 0)))
    return rows
def first(c, t):
    return next((p for p, v, s in c if s > 0 and v <= t), None)
print("| setting | val at step 0 | best | last | passes to 3.252 (seeds 1/2/3) | to 3.245 | to 3.240 | passes in the run |")
print("|---|---|---|---|---|---|---|---|")
for kind in ["e8-false", "e8-true", "e16-false", "e16-true", "e32-false", "e32-true", "mezo"]:
    per = [curve(f"{kind}-s{seed}") for seed in (1, 2, 3)]
    mean = lambda f: statistics.mean(f(c) for c in per)
    cells = ["/".join("-" if first(c, t) is None else str(first(c, t)) for c in per) for t in targets]
    print(f"| {kind} | {mean(lambda c: c[0][1]):.4f} | {mean(lambda c: min(v for _, v, _ in c)):.4f} | "
          f"{mean(lambda c: c[-1][1]):.4f} | " + " | ".join(cells) + f" | {per[0][-1][0]} |")
PY
