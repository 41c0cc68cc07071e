#!/usr/bin/env bash
# kwm-linearized with strided statistics (learner.statistics_stride: the linear blocks' x x^T from
# every k-th position of each sequence, scaled back) on the tiny config (configs/lm_tiny.yaml:
# 100,000 training bytes, 8 x 64 tokens a step, validation of 4,096 tokens every 20 steps), for
# strides 1 (every token), 2, 4, 8 and 16, seeds 1-3. Prints one markdown row per stride: mean over
# seeds of the validation NLL after 1/4, 1/2 and all of the run, and of the best one, and the
# per-seed last values; the question is how much of the filter's sample efficiency survives 1/k
# of the statistics' arithmetic (docs/gpu-lm.md, "the step's arithmetic").
# usage: bench/lm/statistics_stride_sweep.sh    (KWM=path/to/kwm, default build/release/launch/kwm,
#        what launch/main_job.sh builds; OUT=dir, default runs/statistics_stride_sweep; about 4
#        minutes on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
KWM=${KWM:-build/release/launch/kwm}
OUT=${OUT:-runs/statistics_stride_sweep}
STRIDES=${STRIDES:-"1 2 4 8 16"}
[ -x "$KWM" ] || { echo "statistics_stride_sweep: no kwm binary at $KWM" >&2; exit 2; }
mkdir -p "$OUT"
run() {  # name --set ...
  local name=$1; shift
  "$KWM" train --config configs/lm_tiny.yaml --run-dir "$OUT/$name" --set train.eval_every=20 \
    "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "statistics_stride_sweep: $name failed: $(tail -2 "$OUT/$name.log")" >&2; exit 1; }
}
for seed in 1 2 3; do
  for stride in $STRIDES; do
    run "k$stride-s$seed" --set learner.statistics_stride="$stride" --set train.seed="$seed" &
    [ "$(jobs -r | wc -l)" -ge 2 ] && wait -n
  done
done
wait
/usr/bin/python3 - "$OUT" "$STRIDES" <<'PY'
import json, statistics, sys
out, strides = sys.argv[1], sys.argv[2].split()
def curve(name):
    return [(d.get("tokens", 0), d["val_nll"]) for d in map(json.loads, open(f"{out}/{name}/metrics.jsonl"))
            if "val_nll" in d]
print("| statistics stride | val NLL at 1/4 of the run | at 1/2 | last | best | last per seed (1/2/3) |")
print("|---|---|---|---|---|---|")
for k in strides:
    per = [curve(f"k{k}-s{seed}") for seed in (1, 2, 3)]
    at = lambda c, f: c[min(len(c) - 1, round(f * (len(c) - 1)))][1]
    mean = lambda f: statistics.mean(f(c) for c in per)
    print(f"| {k} | {mean(lambda c: at(c, 0.25)):.4f} | {mean(lambda c: at(c, 0.5)):.4f} | "
          f"{mean(lambda c: c[-1][1]):.4f} | {mean(lambda c: min(v for _, v in c)):.4f} | "
          + "/".join(f"{c[-1][1]:.4f}" for c in per) + " |")
PY
