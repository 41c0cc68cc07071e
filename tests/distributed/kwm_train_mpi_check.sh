#!/usr/bin/env bash
# `mpirun -np N kwm train --config FILE` just works: one JSON line on stdout (rank 0's), one run
# directory, and the same test metrics as the one-process run (1e-9 relative: the sharded sums
# run in another order; see docs/distributed.md). Usage: kwm_train_mpi_check.sh MPIEXEC KWM RANKS
# from the source root; exits 77 (skipped) when data/sunspots.csv has not been fetched.
set -euo pipefail
mpiexec="$1"
kwm="$2"
ranks="$3"
config=configs/quickstart.yaml
[[ -f data/sunspots.csv ]] || { echo "data/sunspots.csv missing (launch/fetch_data.sh): skipped"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$kwm" train --config "$config" --run-dir "$work/one" --quiet --json >"$work/one.json"
"$mpiexec" -np "$ranks" --oversubscribe "$kwm" train --config "$config" --run-dir "$work/many" \
  --quiet --json >"$work/many.json" 2>"$work/many.err"
cat "$work/many.err"

lines=$(wc -l <"$work/many.json")
[[ $lines -eq 1 ]] || { echo "FAIL: expected one JSON line on stdout, got $lines"; cat "$work/many.json"; exit 1; }
[[ -s "$work/many/metrics.jsonl" && -s "$work/many/model.yaml" ]] || { echo "FAIL: no run directory"; exit 1; }
if [[ $ranks -gt 1 ]]; then
  grep -q "placement: imbalance" "$work/many.err" || { echo "FAIL: placement not logged"; exit 1; }
  if grep -q "\[rank [1-9]\].*\[info\]\|\[info\].*\[rank [1-9]\]" "$work/many.err"; then
    echo "FAIL: a rank other than 0 logged at info level"; exit 1
  fi
fi
python3 - "$work/one.json" "$work/many.json" "$ranks" <<'PY'
import json, sys
one, many = (json.load(open(p)) for p in sys.argv[1:3])
ranks = int(sys.argv[3])
assert many["ranks"] == ranks, many
for split in ("validation", "test"):
    for key in ("mse", "mae", "nll"):
        a, b = one[split][key], many[split][key]
        assert abs(a - b) <= 1e-9 * max(abs(a), 1e-300), (split, key, a, b)
print(f"PASS: {ranks} ranks: test mse {many['test']['mse']:.12g} == one process {one['test']['mse']:.12g}")
PY
