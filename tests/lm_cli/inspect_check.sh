#!/usr/bin/env bash
# kwm inspect on a language-model checkpoint written by 2 ranks: step, tokens, learner, loader
# cursor, every rank file's tensors with shapes, checksum status; a flipped byte in a rank file is
# reported naming the file and dataset, with exit status 2.
# usage: inspect_check.sh KWM SOURCE_DIR MPIEXEC
kwm=$1 src=$2 mpiexec=$3
source "$src/tests/lm_cli/lm_cli_common.sh"

# 4 steps of 12 x 8 tokens, a checkpoint after step 2 (the last step writes none).
train 2 --set train.tokens=384 --set train.checkpoint_every=2 --run-dir "$work/run"
out=$("$kwm" inspect "$work/run") || fail "inspect of a good checkpoint failed"
printf '%s\n' "$out"
for expected in "language-model checkpoint .*step-2: step 2, 192 tokens, learner kwm-linearized, written by 2 rank" \
                "data cursor: epoch 0, window 24, random draws 24" \
                "rank-0.h5: ok" "rank-1.h5: ok" "index.h5: ok" \
                "    parameters  *12016 x 1"; do
  grep -q -- "$expected" <<< "$out" || fail "inspect output lacks '$expected'"
done
"$kwm" inspect "$work/run/checkpoints/step-2" --json | "$python" -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["ok"] and r["kind"] == "language-model" and r["step"] == 2, r
assert sorted(r["ranks"]) == ["rank-0.h5", "rank-1.h5"], r["ranks"].keys()
tensors = {}
for part in r["ranks"].values():
    tensors.update(part["tensors"])
# The kwm-linearized state: the mean on rank 0, every block information on its owner.
assert tensors["parameters"] == [12016, 1], tensors
assert tensors["head.information"] == [17, 17], tensors
assert all(r["checksums"][f] == "ok" for f in ("index.h5", "rank-0.h5", "rank-1.h5"))
print("json ok:", len(tensors), "tensors over 2 rank files")
' || fail "inspect --json"

# A flipped byte inside the first tensor of rank-1.h5: exit 2, the file and dataset named.
dataset=$("$python" - "$work/run/checkpoints/step-2/rank-1.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    name = sorted(f["state"])[0]
    data = f["state"][name]
    offset = data.id.get_chunk_info(0).byte_offset if data.chunks else data.id.get_offset()
with open(path, "r+b") as raw:
    raw.seek(offset + 8); b = raw.read(1); raw.seek(offset + 8); raw.write(bytes([b[0] ^ 0x40]))
print("/state/" + name)
PY
)
rc=0
err=$("$kwm" inspect "$work/run" 2>&1 > /dev/null) || rc=$?
[ "$rc" = 2 ] || fail "inspect of a corrupt checkpoint: exit status $rc"
grep -q "rank-1.h5.*$dataset" <<< "$err" || fail "the error does not name rank-1.h5 $dataset: $err"
echo "ok: corrupt $dataset reported: $err"
