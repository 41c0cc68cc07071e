#!/usr/bin/env bash
# kwm tokens (issue 7's sample-efficiency tooling): the exported token ids are exactly those
# kwm train trains, validates and tests on. On the tiny test config with a BPE tokenizer (trained
# with train.seed, so a wrong seed or corpus would change every id): the counts equal the ones
# kwm train logs, the token shards under --out equal the run's byte for byte, each .int32 file
# holds the shard's ids and is 4 bytes per token as tokens.json says. Where /usr/bin/python3 has
# torch, bench/lm_cuda/torch_sample_efficiency.py is checked against kwm too: its sampler draws
# the batches kwm train's loader drew (loader_batches.int32), and its validation score of the
# run's model.h5 (fp64, score_tokens' windows) equals kwm's val_nll of the last step. Bad input:
# exit 2 with one line.
# usage: tokens_check.sh KWM SOURCE_DIR
kwm=$1 src=$2
source "$src/tests/lm_cli/lm_cli_common.sh"

sets=(--set data.corpus.dir="$work/text" --set data.tokenizer.type=bpe
      --set data.tokenizer.vocab_size=400 --set model.tied_head=false)
"$kwm" train --config "$config" --quiet "${sets[@]}" --run-dir "$work/run" > /dev/null \
  2> "$work/train.err" || fail "kwm train: $(tail -3 "$work/train.err")"
"$kwm" tokens --config "$config" "${sets[@]}" --out "$work/tok" --json > "$work/tokens.out" \
  2> "$work/tokens.err" || fail "kwm tokens: $(tail -3 "$work/tokens.err")"

for split in train validation test; do
  cmp -s "$work/run/tokens/$split.tokens" "$work/tok/tokens/$split.tokens" ||
    fail "tokens/$split.tokens differs from the kwm train run's"
done
$python - "$work" <<'PY' || fail "the exported files do not match kwm train"
import json, re, sys
import numpy as np
work = sys.argv[1]
meta = json.load(open(f"{work}/tok/tokens.json"))
log = open(f"{work}/train.err").read()
m = re.search(r"tokens: train (\d+) / validation (\d+) / test (\d+);", log)
assert m, "kwm train logged no token counts"
logged = dict(zip(("train", "validation", "test"), map(int, m.groups())))
for split, info in meta["splits"].items():
    ids = np.fromfile(f"{work}/tok/{info['file']}", dtype="<i4")
    shard = open(f"{work}/run/tokens/{split}.tokens", "rb").read()
    width = (len(shard) - 128) // info["tokens"]
    from_shard = np.frombuffer(shard[128:], dtype="<u2" if width == 2 else "<i4").astype(np.int64)
    assert info["file_bytes"] == 4 * info["tokens"] == ids.size * 4, split
    assert info["tokens"] == logged[split], (split, info["tokens"], logged[split])
    assert np.array_equal(ids, from_shard), f"{split}: ids differ from the run's shard"
    assert ids.min() >= 0 and ids.max() < meta["tokenizer"]["vocab_size"], split
    assert abs(info["bytes_per_token"] * info["tokens"] - info["text_bytes"]) < 1e-6 * info["text_bytes"]
    print(f"ok: {split}: {info['tokens']} ids equal kwm train's shard, "
          f"{info['bytes_per_token']:.3f} bytes/token")
lb = meta["loader_batches"]
drawn = np.fromfile(f"{work}/tok/{lb['file']}", dtype="<i4")
assert drawn.size == lb["batches"] * lb["batch"] * lb["length"], "loader_batches.int32 size"
assert meta["tokenizer"]["name"].startswith("bpe"), meta["tokenizer"]
out = json.loads(open(f"{work}/tokens.out").read().strip().splitlines()[-1])
assert out["command"] == "tokens" and out["train"] == logged["train"], out
PY

# The PyTorch baseline against kwm: sampler and validation score.
if $python -c "import torch" 2> /dev/null; then
  script=$src/bench/lm_cuda/torch_sample_efficiency.py
  $python "$script" --tokens-dir "$work/tok" --optimizer adamw --device cpu --token-budget 384 \
    --eval-every 1000 --out "$work/adamw.jsonl" > /dev/null 2> "$work/torch.err" ||
    fail "torch_sample_efficiency.py adamw: $(tail -3 "$work/torch.err")"
  grep -q "the first 4 batches equal kwm train's" "$work/adamw.jsonl" ||
    fail "the PyTorch sampler was not checked against kwm train's batches: $(head -1 "$work/adamw.jsonl")"
  $python "$script" --tokens-dir "$work/tok" --score-h5 "$work/run/model.h5" --eval-dtype fp64 \
    --device cpu > "$work/score.json" 2> "$work/torch.err" ||
    fail "torch_sample_efficiency.py --score-h5: $(tail -3 "$work/torch.err")"
  $python - "$work" <<'PY' || fail "PyTorch's validation score of model.h5 differs from kwm's"
import json, sys
work = sys.argv[1]
ours = json.load(open(f"{work}/score.json"))
kwm = [json.loads(l) for l in open(f"{work}/run/metrics.jsonl") if l.strip()][-1]
rel = abs(ours["val_nll"] - kwm["val_nll"]) / kwm["val_nll"]
print(f"ok: validation of model.h5: PyTorch fp64 {ours['val_nll']:.12f}, kwm {kwm['val_nll']:.12f} "
      f"(relative {rel:.1e}, {ours['tokens']} tokens); sampler equals kwm train's")
assert rel < 1e-12, rel
PY
else
  echo "note: /usr/bin/python3 has no torch; the PyTorch checks were not run"
fi

# Bad input: exit status 2 and one line on stderr naming the problem.
expect_status_2() {
  local pattern=$1; shift
  local err rc=0
  err=$("$@" 2>&1 > /dev/null) || rc=$?
  [ "$rc" = 2 ] || fail "expected exit status 2, got $rc from: $* -> $err"
  [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "expected one line on stderr from: $* -> $err"
  grep -q -- "$pattern" <<< "$err" || fail "the error does not name '$pattern': $err"
  echo "ok: $err"
}
expect_status_2 "missing.yaml" "$kwm" tokens --config "$work/missing.yaml" --out "$work/x"
touch "$work/a-file"
expect_status_2 "a-file/sub" "$kwm" tokens --config "$config" "${sets[@]}" --out "$work/a-file/sub"
expect_status_2 "not a language-model config" \
  "$kwm" tokens --config "$src/configs/sunspots.yaml" --out "$work/y"
expect_status_2 "another config" "$kwm" tokens --config "$config" "${sets[@]}" \
  --set train.seed=4 --out "$work/tok"
expect_status_2 "out" "$kwm" tokens --config "$config"
if [ -e "$work/x" ] || [ -e "$work/y" ]; then fail "a refused export created its directory"; fi
