#!/usr/bin/env bash
# `mpirun -np N kwm train` with distributed.mode: data_parallel (learner.type ar and var): each rank
# fits on its share of the training rows and one all-reduce joins the normal equations, so the
# validation and test metrics equal the one-process run (no mpirun, the default mode) within 1e-11
# relative (the shares' sums are added in another order). Cases: VAR(2) on the 3-channel macro
# data, AR(9) on sunspots. A sequence learner in data_parallel mode is refused with exit code 2.
# Usage: kwm_train_data_parallel_check.sh MPIEXEC KWM RANKS from the source root; exits 77
# (skipped) when the data have not been fetched.
set -euo pipefail
mpiexec="$1"
kwm="$2"
ranks="$3"
for f in data/macrodata.csv data/sunspots.csv; do
  [[ -f $f ]] || { echo "$f missing (launch/fetch_data.sh): skipped"; exit 77; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

check() {  # name config learner
  local name="$1" config="$2" learner="$3"
  "$kwm" train --config "$config" --set "learner=$learner" --run-dir "$work/$name-one" --quiet \
    --json >"$work/$name-one.json"
  "$mpiexec" -np "$ranks" --oversubscribe "$kwm" train --config "$config" --set "learner=$learner" \
    --set distributed.mode=data_parallel --run-dir "$work/$name-many" --quiet --json \
    >"$work/$name-many.json" 2>"$work/$name-many.err"
  cat "$work/$name-many.err"
  python3 - "$work/$name-one.json" "$work/$name-many.json" "$ranks" "$name" <<'PY'
import json, sys
one, many = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
ranks, name = int(sys.argv[3]), sys.argv[4]
assert many["ranks"] == ranks, many
worst = 0.0
for split in ("validation", "test"):
    for key in ("mse", "mae", "nll"):
        a, b = one[split][key], many[split][key]
        rel = abs(a - b) / max(abs(a), 1e-300)
        worst = max(worst, rel)
        assert rel <= 1e-11, (name, split, key, a, b)
print(f"PASS: {name}, {ranks} ranks: test mse {many['test']['mse']:.15g} vs one process "
      f"{one['test']['mse']:.15g} (largest relative difference {worst:.1e})")
PY
}
check var configs/macrodata.yaml '{type: var, order: 2}'
check ar configs/sunspots.yaml '{type: ar, order: 9}'

# A sequence learner is refused, naming the key and the alternative.
set +e
"$kwm" train --config configs/quickstart.yaml --set distributed.mode=data_parallel \
  --run-dir "$work/refused" --quiet >"$work/refused.out" 2>&1
code=$?
set -e
[[ $code -eq 2 ]] || { echo "FAIL: expected exit code 2, got $code"; cat "$work/refused.out"; exit 1; }
grep -q "data_parallel.*ar and var" "$work/refused.out" || { echo "FAIL: unclear error"; cat "$work/refused.out"; exit 1; }
echo "PASS: sensitivity-dekf in data_parallel mode refused: $(cat "$work/refused.out")"
