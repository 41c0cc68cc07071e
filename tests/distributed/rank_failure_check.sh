#!/usr/bin/env bash
# A rank killed mid-run ends the whole job: mpirun exits non-zero within a few seconds and says
# which rank died. The same run without the kill must finish with status 0 (so the failure is the
# kill's doing). Usage: rank_failure_check.sh MPIEXEC VICTIM
set -uo pipefail
mpiexec="$1"
victim="$2"
limit=20  # seconds from the kill to mpirun's exit, with generous headroom for loaded CI hosts

if ! out="$(timeout 120 "$mpiexec" -np 2 --oversubscribe "$victim" -1 0 2>&1)"; then
  echo "FAIL: the run without a kill did not finish cleanly:"; echo "$out"; exit 1
fi
grep -q "completed 200 steps on 2 ranks" <<<"$out" || { echo "FAIL: no completion line: $out"; exit 1; }

start=$(date +%s%N)
out="$(timeout 120 "$mpiexec" -np 3 --oversubscribe "$victim" 1 20 2>&1)"
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "$out"
echo "mpirun exit status $rc after ${elapsed_ms} ms"
if [[ $rc -eq 0 ]]; then echo "FAIL: mpirun exited 0 although rank 1 was killed"; exit 1; fi
if [[ $rc -eq 124 ]]; then echo "FAIL: the job hung (killed by timeout)"; exit 1; fi
if ! grep -Eq "rank 1 .*(signal 9|Killed)" <<<"$out"; then
  echo "FAIL: mpirun's message does not name rank 1 and the signal"; exit 1
fi
if (( elapsed_ms > limit * 1000 )); then echo "FAIL: took ${elapsed_ms} ms > ${limit} s"; exit 1; fi
echo "PASS"
