#!/usr/bin/python3
"""Compares what kwm train writes for language models (h5py; used by the tests/lm_cli scripts).

  theta A.h5 B.h5 TOL      max |theta_A - theta_B| of two model.h5 files; TOL 0 means bitwise
  files A.h5 B.h5          every dataset byte for byte and every attribute equal, except the
                           wall-clock ones (attribute wall_seconds, the wall_s fields of
                           /metrics/jsonl)
  checkpoint DIR_A DIR_B   `files` for every .h5 of two checkpoint directories (same file names)
  metrics A.jsonl B.jsonl  the lines equal field by field except wall_s
  moved A.jsonl            the validation loss of the last line differs from the first's (the
                           model was trained, so equal results are not an untouched init)
  ranks A.jsonl B.jsonl TOL  runs on different rank counts: step, tokens and skipped equal, the
                           losses within TOL (the pass counters sum per-rank work, so they differ)

Prints what it measured; exits 1 on a difference, naming the file, dataset or line.
"""
import json
import os
import sys

import h5py
import numpy as np

WALL_CLOCK_ATTRIBUTES = {"wall_seconds"}
WALL_CLOCK_DATASET = "/metrics/jsonl"


def text_of(data):
    if isinstance(data, np.ndarray):
        return data.tobytes().decode()
    return data.decode() if isinstance(data, bytes) else str(data)


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def metrics_lines(text, where):
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{where} line {number} is not JSON: {e}")
        record.pop("wall_s", None)
        lines.append(record)
    return lines


def same_metrics(a_text, b_text, where):
    a, b = metrics_lines(a_text, where), metrics_lines(b_text, where)
    if len(a) != len(b):
        fail(f"{where}: {len(a)} lines vs {len(b)}")
    for number, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            fail(f"{where} line {number} differs: {x} vs {y}")
    return len(a)


def h5_objects(path):
    """name -> (kind, h5py object) for the root group and everything under it."""
    out = {}
    handle = h5py.File(path, "r")
    out["/"] = ("group", handle)
    handle.visititems(lambda name, obj: out.__setitem__(
        "/" + name, ("dataset" if isinstance(obj, h5py.Dataset) else "group", obj)))
    return handle, out


def attribute_value(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tobytes()
    return value


def same_files(a_path, b_path):
    a_file, a = h5_objects(a_path)
    b_file, b = h5_objects(b_path)
    if sorted(a) != sorted(b):
        fail(f"{a_path} and {b_path} hold different objects: {sorted(set(a) ^ set(b))}")
    datasets = 0
    for name, (kind, x) in sorted(a.items()):
        y = b[name][1]
        if kind != b[name][0]:
            fail(f"{name}: a {kind} in {a_path}, not in {b_path}")
        if name == WALL_CLOCK_DATASET:
            # Its text carries wall_s, so its checksum attributes differ too; compared below.
            same_metrics(text_of(x[()]), text_of(y[()]), f"{a_path}:{name}")
            datasets += 1
            continue
        keys = set(x.attrs.keys()) - WALL_CLOCK_ATTRIBUTES
        if keys != set(y.attrs.keys()) - WALL_CLOCK_ATTRIBUTES:
            fail(f"{name}: attribute names differ between {a_path} and {b_path}")
        for key in sorted(keys):
            if attribute_value(x.attrs[key]) != attribute_value(y.attrs[key]):
                fail(f"{a_path} vs {b_path}: attribute {name}:{key} differs: "
                     f"{x.attrs[key]!r} vs {y.attrs[key]!r}")
        if kind != "dataset":
            continue
        datasets += 1
        u, v = x[()], y[()]
        u, v = np.asarray(u), np.asarray(v)
        if u.dtype != v.dtype or u.shape != v.shape or u.tobytes() != v.tobytes():
            detail = ""
            if u.shape == v.shape and u.dtype.kind == "f":
                detail = f" (max |difference| {np.max(np.abs(u - v)):.3e})"
            fail(f"{a_path} vs {b_path}: dataset {name} differs{detail}")
    a_file.close()
    b_file.close()
    return datasets


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    mode = argv[0]
    if mode == "theta" and len(argv) == 4:
        with h5py.File(argv[1], "r") as fa, h5py.File(argv[2], "r") as fb:
            a, b = fa["theta"][()], fb["theta"][()]
        tolerance = float(argv[3])
        if a.shape != b.shape:
            fail(f"theta shapes differ: {a.shape} vs {b.shape}")
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
            fail("theta holds NaN or Inf")
        difference = float(np.max(np.abs(a - b)))
        bitwise = a.tobytes() == b.tobytes()
        print(f"max |theta difference| {difference:.3e} over {a.size} parameters "
              f"(|theta| up to {float(np.max(np.abs(a))):.3g}; bitwise equal: {bitwise}; "
              f"tolerance {tolerance:g}) {argv[1]} vs {argv[2]}")
        if (tolerance == 0 and not bitwise) or difference > tolerance:
            fail(f"theta differs beyond {tolerance:g}")
    elif mode == "files" and len(argv) == 3:
        count = same_files(argv[1], argv[2])
        print(f"{count} datasets equal byte for byte: {argv[1]} vs {argv[2]}")
    elif mode == "checkpoint" and len(argv) == 3:
        names = sorted(f for f in os.listdir(argv[1]) if f.endswith(".h5"))
        if names != sorted(f for f in os.listdir(argv[2]) if f.endswith(".h5")):
            fail(f"{argv[1]} and {argv[2]} hold different files")
        if not names:
            fail(f"{argv[1]} holds no .h5 files")
        count = sum(same_files(os.path.join(argv[1], n), os.path.join(argv[2], n)) for n in names)
        print(f"{len(names)} files, {count} datasets equal byte for byte: {argv[1]} vs {argv[2]}")
    elif mode == "metrics" and len(argv) == 3:
        with open(argv[1]) as fa, open(argv[2]) as fb:
            lines = same_metrics(fa.read(), fb.read(), f"{argv[1]} vs {argv[2]}")
        print(f"{lines} metrics lines equal except wall_s: {argv[1]} vs {argv[2]}")
    elif mode == "moved" and len(argv) == 2:
        with open(argv[1]) as f:
            lines = metrics_lines(f.read(), argv[1])
        first, last = lines[0]["val_nll"], lines[-1]["val_nll"]
        print(f"validation loss {first:.6f} -> {last:.6f} over {lines[-1]['step']} steps")
        if first == last:
            fail(f"{argv[1]}: the validation loss did not change: the model was not trained")
    elif mode == "ranks" and len(argv) == 4:
        with open(argv[1]) as fa, open(argv[2]) as fb:
            a = metrics_lines(fa.read(), argv[1])
            b = metrics_lines(fb.read(), argv[2])
        if len(a) != len(b):
            fail(f"{argv[1]} vs {argv[2]}: {len(a)} lines vs {len(b)}")
        worst = 0.0
        for number, (x, y) in enumerate(zip(a, b), 1):
            for key in ("step", "tokens", "skipped"):
                if x.get(key) != y.get(key):
                    fail(f"{argv[1]} vs {argv[2]} line {number}: {key} {x.get(key)} vs {y.get(key)}")
            for key in ("train_nll", "val_nll", "val_bpb", "unigram_nll"):
                if (key in x) != (key in y):
                    fail(f"line {number}: {key} in one file only")
                if key in x:
                    worst = max(worst, abs(x[key] - y[key]))
        print(f"{len(a)} metrics lines: steps and tokens equal, losses within {worst:.3e} "
              f"(tolerance {float(argv[3]):g})")
        if worst > float(argv[3]):
            fail("losses differ beyond the tolerance")
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
