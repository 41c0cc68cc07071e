#!/usr/bin/env bash
# The main job: set up and build, fetch the real time series from Debian's statsmodels package,
# then train a deep diagonal recurrent model on yearly sunspot numbers in ONE pass by Kalman
# filtering (configs/quickstart.yaml), train a tiny GPT language model by KWM-linearized on text
# from Debian's fortunes-min (configs/lm_tiny.yaml, about a minute on 2 cores) and sample from it,
# and run the Kalman filter and smoother of the classical Nile local-level model. Idempotent.
#
#   launch/main_job.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

launch/setup.sh --preset release --target kwm
launch/fetch_data.sh sunspots nile literature
build/release/launch/kwm train --config configs/quickstart.yaml --run-dir runs/quickstart
build/release/launch/kwm train --config configs/lm_tiny.yaml --run-dir runs/lm_tiny --quiet
build/release/launch/kwm generate --run-dir runs/lm_tiny --prompt "The " --tokens 120 \
  --temperature 0.8 --seed 1
mkdir -p runs/nile
build/release/launch/kwm filter --model configs/nile_local_level.yaml --data data/nile.csv \
  --column volume --smooth --out runs/nile/filtered.csv --json
