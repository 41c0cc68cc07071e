#!/usr/bin/env bash
# The main job: set up, build, fetch the Nile series from Debian's statsmodels package and run the
# Kalman filter and RTS smoother of configs/nile_local_level.yaml on it. Idempotent.
#
#   launch/main_job.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

launch/setup.sh --preset release
launch/fetch_data.sh nile
mkdir -p runs/nile
build/release/launch/kwm filter --model configs/nile_local_level.yaml --data data/nile.csv \
  --column volume --smooth --out runs/nile/filtered.csv --json
