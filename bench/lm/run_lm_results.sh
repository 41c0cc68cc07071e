#!/bin/bash
# Reproduces every number of docs/lm-results.md: the five LM learners (kwm-linearized, rls-head,
# kwm-ensemble, mezo, adamw) on the tiny GPT (configs/lm_tiny*.yaml) and on the small GPT
# (configs/lm_small.yaml with the tiny configs' learner settings, a reduced token budget), each
# scored on its test split by `kwm eval`, plus continual adaptation (bench/lm/kwm_lm_continual).
# Usage: bench/lm/run_lm_results.sh [tiny] [small] [continual] [small64k] [small256k] [table]
#   (default: all, in that order)
#   KWM=path/to/kwm CONTINUAL=path/to/kwm_lm_continual   binaries (default build/evidence/...)
#   SMALL_TOKENS (default 16384), SMALL_NAME (default small), CONTINUAL_TOKENS (per phase,
#   default 30720), SMALL_TEST, LEARNERS (default all five)
# Needs: the text data (launch/fetch_data.sh --set text), /usr/bin/python3 with python3-yaml and
# python3-matplotlib. Runs go to runs/lm_results/ (git-ignored); the tables to
# bench/lm/tables.md, the figures to docs/figures/lm_*.png. One process at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
KWM="${KWM:-build/evidence/launch/kwm}"
CONTINUAL="${CONTINUAL:-build/evidence/bench/lm/kwm_lm_continual}"
SMALL_TOKENS="${SMALL_TOKENS:-16384}"
SMALL_NAME="${SMALL_NAME:-small}"  # folder under runs/lm_results (and figure prefix lm_<name>_)
CONTINUAL_TOKENS="${CONTINUAL_TOKENS:-30720}"
# The small runs' test split: the first quarter of Sherlock Holmes (about 58K BPE tokens). kwm train
# scores its whole test split at the end; all of Sherlock (234K tokens) costs ~4 min per run here.
quarter_of_sherlock='[{book: sherlock, begin: 0.0, end: 0.25}]'
SMALL_TEST="${SMALL_TEST:-$quarter_of_sherlock}"
RUNS=runs/lm_results
LEARNERS="${LEARNERS:-kwm-linearized rls-head kwm-ensemble mezo adamw}"
parts="${*:-tiny small continual small64k small256k table}"
[ -f data/text/literature.txt ] && [ -f data/text/sherlock.txt ] ||
  { echo "run_lm_results: no text data (launch/fetch_data.sh --set text)" >&2; exit 2; }

tiny_config() {  # the shipped tiny config of a learner
  case $1 in
    kwm-linearized) echo configs/lm_tiny.yaml ;;
    rls-head) echo configs/lm_tiny_rls_head.yaml ;;
    kwm-ensemble) echo configs/lm_tiny_ensemble.yaml ;;
    *) echo "configs/lm_tiny_$1.yaml" ;;
  esac
}

small_config() {  # tiny-config output: configs/lm_small.yaml with the learner section (and a
  # batch of 1) of that learner's tiny config, written to output
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, yaml
tiny = yaml.safe_load(open(sys.argv[1]))
small = yaml.safe_load(open("configs/lm_small.yaml"))
small["learner"] = tiny["learner"]
if tiny["train"]["batch"] == 1:  # the forward-only learners step once per sequence
    small["train"]["batch"] = 1
with open(sys.argv[2], "w") as out:
    out.write(f"# configs/lm_small.yaml with the learner settings of {sys.argv[1]}\n")
    yaml.safe_dump(small, out, sort_keys=False)
PY
}

train_and_eval() {  # run_dir train-arguments...
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  echo "== $KWM train $* --run-dir $dir" >&2
  /usr/bin/time -f "%U %S" -o "$dir/time.txt" \
    "$KWM" train "$@" --run-dir "$dir" --json --quiet > "$dir/train.json" 2> "$dir/train.log"
  "$KWM" eval --run-dir "$dir" --json > "$dir/eval.json" 2> "$dir/eval.log"
  tail -n 1 "$dir/train.json" >&2
  tail -n 1 "$dir/eval.json" >&2
}

[ -x "$KWM" ] || { echo "run_lm_results: no kwm binary at $KWM (build: ninja -C build/evidence kwm)" >&2; exit 2; }
start=$(date +%s)
for part in $parts; do
  case $part in
    tiny)
      for l in $LEARNERS; do train_and_eval "$RUNS/tiny/$l" --config "$(tiny_config "$l")"; done ;;
    small)
      mkdir -p "$RUNS/$SMALL_NAME"
      for l in $LEARNERS; do
        config="$RUNS/$SMALL_NAME/$l.yaml"
        small_config "$(tiny_config "$l")" "$config"
        batch=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["train"]["batch"])' "$config")
        # About 8 validations per run, on 4096 tokens each.
        every=$(( SMALL_TOKENS / (batch * 128) / 8 )); [ "$every" -ge 1 ] || every=1
        train_and_eval "$RUNS/$SMALL_NAME/$l" --config "$config" \
          --set train.tokens="$SMALL_TOKENS" --set train.eval_every="$every" \
          --set train.eval_tokens=4096 --set "data.corpus.test=$SMALL_TEST"
      done ;;
    continual)
      [ -x "$CONTINUAL" ] || { echo "run_lm_results: no $CONTINUAL (ninja -C build/evidence kwm_lm_continual)" >&2; exit 2; }
      mkdir -p "$RUNS/continual"
      for l in $LEARNERS; do
        echo "== $CONTINUAL --config $(tiny_config "$l") (huckfinn then sherlock)" >&2
        "$CONTINUAL" --config "$(tiny_config "$l")" --book-a huckfinn --book-b sherlock \
          --tokens-a "$CONTINUAL_TOKENS" --tokens-b "$CONTINUAL_TOKENS" --every-tokens 3072 \
          --eval-tokens 4096 --out "$RUNS/continual/$l.jsonl"
        tail -n 1 "$RUNS/continual/$l.jsonl" >&2
      done ;;
    small64k)  # kwm-linearized, rls-head and adamw on the small model with 4x the budget
      SMALL_TOKENS=65536 SMALL_NAME=small_64k LEARNERS="kwm-linearized rls-head adamw" \
        KWM="$KWM" CONTINUAL="$CONTINUAL" "$0" small ;;
    small256k)  # the same three with 16x the budget (128 steps)
      SMALL_TOKENS=262144 SMALL_NAME=small_256k LEARNERS="kwm-linearized rls-head adamw" \
        KWM="$KWM" CONTINUAL="$CONTINUAL" "$0" small ;;
    table)
      /usr/bin/python3 bench/lm/make_lm_results.py --runs "$RUNS" --figures docs/figures \
        > bench/lm/tables.md ;;
    *) echo "run_lm_results: unknown part '$part' (tiny, small, continual, small64k, small256k, table)" >&2; exit 2 ;;
  esac
done
echo "run_lm_results: $(( $(date +%s) - start )) s" >&2
