#!/bin/bash
# The small GPT (configs/lm_small*.yaml, 1,072,896 parameters, BPE 1024, novels split by book) at
# the configs' full budget of 1,000,000 training tokens, for the learners that need one
# transposed-Jacobian pass or none per step: kwm-linearized, rls-head and adamw. Meant for a
# many-core host (the 2-vCPU sandbox needs 20-40 min per learner): the three run at once, each
# on RANKS MPI ranks (mpirun --bind-to none; one thread per rank). A run on R ranks equals the
# one-rank run (tests/lm_cli, kwm_lm_mpi.*), so the result does not depend on RANKS; the wall
# time does. Each run is then scored by `kwm eval` on its test split (all of Sherlock Holmes).
#
#   bench/lm/run_small_host.sh [OUT_DIR]     # default runs/lm_results; runs go to OUT_DIR/small_1m/
#   RANKS=4 LEARNERS="kwm-linearized rls-head adamw" BUILD=build/lm-small-host
#
# Needs the text data (launch/fetch_data.sh --set text --set kjv) and mpirun. Tables and figures:
# bench/lm/run_lm_results.sh table (reads every folder under runs/lm_results).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/lm_results}/small_1m"
RANKS="${RANKS:-4}"
LEARNERS="${LEARNERS:-kwm-linearized rls-head adamw}"
BUILD="${BUILD:-build/lm-small-host}"
[ -f data/text/sherlock.txt ] ||
  { echo "run_small_host: no text data (launch/fetch_data.sh --set text)" >&2; exit 2; }

mkdir -p "$(dirname "$BUILD")"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_BUILD_TESTS=OFF \
  -DKWM_BUILD_BENCH=OFF -DKWM_ENABLE_CUDA=OFF > "$BUILD.configure.log"
ninja -C "$BUILD" kwm > "$BUILD.build.log"
kwm="$BUILD/launch/kwm"

config_of() {
  case $1 in
    kwm-linearized) echo configs/lm_small.yaml ;;
    rls-head) echo configs/lm_small_rls_head.yaml ;;
    adamw) echo configs/lm_small_adamw.yaml ;;
    *) echo "run_small_host: no small config for learner '$1'" >&2; exit 2 ;;
  esac
}

cpu_time() {  # output-file command...: user and system seconds of the command and its children
  local file=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %S" -o "$file" "$@"
  else
    "$@"
  fi
}

cores=$(nproc)  # before OMP_NUM_THREADS, which nproc honours
export OMP_NUM_THREADS=1
start=$(date +%s)
for l in $LEARNERS; do
  dir="$out/$l"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cpu_time "$dir/time.txt" mpirun -np "$RANKS" --bind-to none --oversubscribe \
      "$kwm" train --config "$(config_of "$l")" --run-dir "$dir" --json --quiet \
      > "$dir/train.json" 2> "$dir/train.log"
    "$kwm" eval --run-dir "$dir" --json > "$dir/eval.json" 2> "$dir/eval.log"
    echo "== $l: $(tail -n 1 "$dir/train.json")" >&2
  ) &
done
wait
echo "run_small_host: $(( $(date +%s) - start )) s on $cores cores, $RANKS ranks per learner" >&2
# One archive of the runs without their token shards (device calls return a limited number of files).
tar czf "$out.tar.gz" --exclude=tokens -C "$(dirname "$out")" "$(basename "$out")"
