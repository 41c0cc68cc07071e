#!/usr/bin/env bash
# kwm-ensemble with its rank-4 head adapter and ln_f in the subspace (configs/lm_tiny_ensemble.yaml,
# shipped) against the same adapter with ln_f fixed at the base (learner.subspace.layer_norms:
# false: the head input is shared, so a member's logits are W_0 h + B (A h) + b, no merged head),
# and both against kwm's mezo (configs/lm_tiny_mezo.yaml), on the tiny config: 15,360 training
# tokens per run (240 steps of 1 x 64), validation (4,096 tokens) every 10 steps, seeds 1-3, one
# run at a time. Prints one markdown row per setting and seed: the validation NLL at step 0, best
# and last, and for the unigram 3.252 and 3.245 the step at which validation first reached it,
# the counted forward passes then, the forward compute then in whole-pass equivalents (the
# FLOP counts of docs/results.md: whole pass 262,144 a token, body 229,376, head 32,768, a
# member's rank-4 correction 2,560) and the wall time then (wall_s, which includes the
# validations before it).
# usage: bench/lm/fixed_norms_sweep.sh   (KWM=path/to/kwm, default build/release/launch/kwm;
#        OUT=dir, default runs/fixed_norms_sweep; about 2 minutes on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
KWM=${KWM:-build/release/launch/kwm}
OUT=${OUT:-runs/fixed_norms_sweep}
[ -x "$KWM" ] || { echo "fixed_norms_sweep: no kwm binary at $KWM" >&2; exit 2; }
mkdir -p "$OUT"
run() {  # name config --set ...
  local name=$1 config=$2; shift 2
  "$KWM" train --config "$config" --run-dir "$OUT/$name" --set train.tokens=15360 \
    --set train.eval_every=10 "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "fixed_norms_sweep: $name failed: $(tail -2 "$OUT/$name.log")" >&2; exit 1; }
}
for seed in 1 2 3; do
  run "shipped-s$seed" configs/lm_tiny_ensemble.yaml --set train.seed="$seed"
  run "fixed-s$seed" configs/lm_tiny_ensemble.yaml --set train.seed="$seed" \
    --set learner.subspace.layer_norms=false
  run "mezo-s$seed" configs/lm_tiny_mezo.yaml --set train.seed="$seed"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
whole = 262144.0
# Forward compute of one step in whole passes: the ensemble's mean pass plus 32 merged heads
# (shipped) or plus W_0 h and 32 rank-4 corrections (fixed); mezo's body and two heads.
per_step = {"shipped": (whole + 32 * 32768) / whole,
            "fixed": (whole + 32768 + 32 * 2560) / whole,
            "mezo": (229376 + 2 * 32768) / whole}
print("| setting | seed | val at step 0 | best | last | unigram 3.252: step / passes / whole-pass compute / wall s | 3.245: same |")
print("|---|---|---|---|---|---|---|")
for kind in ["shipped", "fixed", "mezo"]:
    for seed in (1, 2, 3):
        rows = [json.loads(l) for l in open(f"{out}/{kind}-s{seed}/metrics.jsonl")]
        rows = [r for r in rows if "val_nll" in r]
        def reach(t):
            r = next((r for r in rows if r["step"] > 0 and r["val_nll"] <= t), None)
            if r is None:
                return "-"
            return (f"{r['step']} / {r['forward_passes']} / {r['step'] * per_step[kind]:.0f} / "
                    f"{r['wall_s']:.2f}")
        vals = [r["val_nll"] for r in rows]
        print(f"| {kind} | {seed} | {vals[0]:.4f} | {min(vals):.4f} | {vals[-1]:.4f} | "
              f"{reach(3.2520)} | {reach(3.245)} |")
PY
