#!/usr/bin/env bash
# Format version 1 is still read end to end: a step-108 checkpoint rewritten (with h5py) the way
# version 1 stored it (chunked datasets with the Fletcher32 filter, no xxh64 attributes, no
# /metrics/running, format_version 1) resumes through the metadata probe and ends with the
# uninterrupted run's model.yaml byte for byte, warning that the epoch's train metrics restart.
# A version-1 dataset whose chunk was damaged is refused by HDF5's Fletcher32 check.
# usage: v1_resume_check.sh KWM SOURCE_DIR
set -euo pipefail
kwm=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
config=configs/quickstart.yaml
[ -f data/sunspots.csv ] || { echo "skip: data/sunspots.csv missing (launch/fetch_data.sh)"; exit 77; }
/usr/bin/python3 -c "import h5py" 2>/dev/null || { echo "skip: no h5py to write version 1"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
train() { "$kwm" train --config "$config" --quiet --set train.checkpoint_every=108 \
  --set train.keep_last=0 "$@"; }

# Rewrites one version-2 file as version 1 wrote it.
to_v1() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as fi, h5py.File(dst, "w", libver=("v108", "latest")) as fo:
    def attrs(a, b):
        for k, v in a.attrs.items():
            if k != "xxh64":
                b.attrs[k] = v
    attrs(fi, fo)
    if "format_version" in fo.attrs:
        fo.attrs["format_version"] = np.int64(1)
    def visit(name, obj):
        if name.startswith("metrics/running"):
            return
        if isinstance(obj, h5py.Group):
            attrs(obj, fo.require_group(name))
        else:
            data = obj[()]
            attrs(obj, fo.create_dataset(name, data=data, chunks=True, fletcher32=True))
    fi.visititems(visit)
PY
}

train --run-dir "$work/run" > /dev/null
mv "$work/run" "$work/a"
mkdir -p "$work/run/checkpoints/step-108"
for f in index.h5 rank-0.h5; do
  to_v1 "$work/a/checkpoints/step-108/$f" "$work/run/checkpoints/step-108/$f"
done
h5dump -A "$work/run/checkpoints/step-108/index.h5" | grep -q xxh64 && fail "xxh64 left in v1"
"$kwm" inspect "$work/run/checkpoints/step-108" --json | tail -1 | grep -q '"format_version":1' ||
  fail "inspect does not read the version-1 checkpoint"
cp -r "$work/run" "$work/damaged"

set +e
err=$(train --run-dir "$work/run" --resume 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "resume from version 1 failed: rc $rc: $err"
grep -q "resumed from .*step-108" <<< "$err" || fail "did not resume from step-108: $err"
grep -q "format version 1) has no running metrics" <<< "$err" || fail "no version-1 warning: $err"
cmp "$work/a/model.yaml" "$work/run/model.yaml" || fail "final model.yaml differs after a v1 resume"

# A flipped byte inside a chunk of the first block's covariance: Fletcher32 refuses it.
/usr/bin/python3 - "$work/damaged/checkpoints/step-108/rank-0.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    name = sorted(f["blocks"])[0]
    offset = f["blocks"][name]["covariance"].id.get_chunk_info(0).byte_offset
with open(path, "r+b") as raw:
    raw.seek(offset + 8); b = raw.read(1); raw.seek(offset + 8); raw.write(bytes([b[0] ^ 0x40]))
PY
set +e
err=$(train --run-dir "$work/damaged" --resume 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "rank-0.h5: /blocks/[0-9]*/covariance" <<< "$err" ||
  fail "a damaged version-1 chunk: rc $rc: $err"
echo "format version 1 resume checks passed"
