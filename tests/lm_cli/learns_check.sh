#!/usr/bin/env bash
# Issue 6's learning test: kwm train with one shipped tiny config (configs/lm_tiny*.yaml: the GPT
# of 137K parameters on the literature fortunes, bytes) for a fixed, reduced token budget, then
# the last validation loss in metrics.jsonl must be below the unigram reference of the same
# run (metrics.jsonl step 0: the add-one unigram of the training split on the same validation
# tokens). A learner that does not learn context fails: with train.head_bias_init: unigram the
# untrained model already sits just above the unigram, and only context takes it below.
# The corpus is fetched data (launch/fetch_data.sh literature -> data/text/literature.txt); the
# test skips (77) without it unless KWM_REQUIRE_LM_DATA=1, and skips when SKIP_REASON is set
# (sanitizer and Debug builds, where the runs take minutes).
# usage: learns_check.sh KWM SOURCE_DIR CONFIG TOKENS [SKIP_REASON]
set -euo pipefail
kwm=$1 src=$2 config=$3 tokens=$4 skip_reason=${5:-}
if [ -n "$skip_reason" ]; then echo "skip: $skip_reason"; exit 77; fi
if [ ! -s "$src/data/text/literature.txt" ]; then
  [ "${KWM_REQUIRE_LM_DATA:-0}" = 1 ] && { echo "FAIL: no $src/data/text/literature.txt" >&2; exit 1; }
  echo "skip: no data/text/literature.txt (launch/fetch_data.sh literature)"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
start=$(date +%s)
"$kwm" train --config "$config" --run-dir "$work/run" --quiet --set train.tokens="$tokens" \
  --set train.eval_every=1000000 > "$work/out" 2> "$work/err" ||
  { echo "FAIL: kwm train $config: $(tail -3 "$work/err")" >&2; exit 1; }
/usr/bin/python3 - "$work/run/metrics.jsonl" "$config" "$tokens" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
first, last = rows[0], rows[-1]
unigram, start, final = first["unigram_nll"], first["val_nll"], last["val_nll"]
print(f"{sys.argv[2]}: {last['tokens']} tokens (budget {sys.argv[3]}), {sys.argv[4]} s: "
      f"validation {start:.4f} -> {final:.4f} nats/token, unigram {unigram:.4f}")
if last["tokens"] < int(sys.argv[3]) - 512:
    sys.exit(f"FAIL: trained {last['tokens']} tokens, budget {sys.argv[3]}")
if not final < unigram:
    sys.exit(f"FAIL: validation {final:.4f} is not below the unigram {unigram:.4f}")
PY
