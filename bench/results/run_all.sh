#!/bin/bash
# Reproduces every row of docs/results.md: KWM (sensitivity-dekf, diagonal-ekf), adam-sensitivity,
# BPTT+Adam, AR/VAR and persistence on sunspots, co2, elnino, macrodata and an ECG prefix, clean
# and (sunspots, co2, elnino) with 5% outliers or 0.5 sd noise on the training targets.
# Usage: bench/results/run_all.sh            (KWM=path/to/kwm to use another binary)
# Needs: a kwm binary (default build/results/launch/kwm), /usr/bin/python3 with python3-torch,
# python3-yaml, python3-matplotlib; the data of launch/fetch_data.sh.
# Run time: 346 s on the shared 2-core machine (594 s under heavier load); see docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export KWM="${KWM:-build/results/launch/kwm}"
[ -x "$KWM" ] || { echo "run_all: no kwm binary at $KWM (build: cmake --build build/results --target kwm)" >&2; exit 2; }
[ -f data/ecg.csv ] || launch/fetch_data.sh
# ECG prefix: the first 20000 samples (55.6 s at 360 Hz) keep every single-pass run short.
head -n 20001 data/ecg.csv > data/ecg_20k.csv
rm -f bench/results/results.jsonl bench/results/candidates.jsonl
start=$(date +%s)
/usr/bin/python3 bench/results/run_experiments.py "$@"
/usr/bin/python3 bench/results/make_table.py > bench/results/tables.md
bash bench/results/make_figures.sh
echo "run_all: $(( $(date +%s) - start )) s"
