#!/bin/bash
# Figures of docs/results.md from the run directories of run_all.sh (launch/plot_run.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
best_dir() {  # the run directory of the selected row: dataset condition row
  /usr/bin/python3 - "$@" <<'PY'
import json, shlex, sys
d, c, row = sys.argv[1:]
for line in open("bench/results/results.jsonl"):
    r = json.loads(line)
    if (r["dataset"], r["condition"], r["row"]) == (d, c, row):
        a = shlex.split(r["command"]); print(a[a.index("--run-dir") + 1])
PY
}
tmp=$(mktemp -d)
fig() {  # name dataset condition rows...
  local name=$1 d=$2 c=$3; shift 3
  local dirs=()
  for row in "$@"; do dirs+=("$(best_dir "$d" "$c" "$row")"); done
  /usr/bin/python3 launch/plot_run.py "${dirs[@]}" --out "$tmp/$name" > /dev/null
}
mkdir -p docs/figures
fig sunspots sunspots clean sensitivity-dekf adam-sensitivity bptt-adam
cp "$tmp/sunspots/learning_curves.png" docs/figures/sunspots_learning_curves.png
cp "$tmp/sunspots/predictions_compare.png" docs/figures/sunspots_predictions_compare.png
fig co2 co2 clean sensitivity-dekf
cp "$tmp/co2"/predictions_sensitivity-dekf-*.png docs/figures/co2_kwm_prediction_band.png
fig elnino elnino outliers sensitivity-dekf/gate-off sensitivity-dekf/gate-reject
cp "$tmp/elnino/learning_curves.png" docs/figures/elnino_outliers_gating_learning_curves.png
rm -rf "$tmp"
ls -la docs/figures
