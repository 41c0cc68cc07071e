#!/usr/bin/python3
"""Checks that the PyTorch twins in kwm_models.py are the same function as core/models.

Three comparisons against the kwm binary, on one run directory (or a fresh one trained from
--config with train.epochs=1):
  1. normalisation: train-split mean / population std equal model.yaml's (same split, same data);
  2. initial theta: the torch initialisation equals the C++ one (a kwm run with an Adam learning
     rate of 1e-300 writes its initial theta; entries that start at 0 move by ~1e-300);
  3. predictions: the trained theta from model.yaml loaded into the torch model gives the same
     one-step means, t = 0..T-1, as `kwm eval --data` (a learn=false pass from reset).
Prints one JSON line; exit status 0 when every difference is within --tolerance, 1 otherwise,
77 when PyTorch is missing (ctest's skip code).

  /usr/bin/python3 bench/baselines/check_equivalence.py --config configs/quickstart.yaml
  /usr/bin/python3 bench/baselines/check_equivalence.py runs/quickstart
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
    import torch
    import yaml
except ImportError as error:
    print(f"check_equivalence: {error}. Install Debian's CPU PyTorch: apt-get install -y "
          "python3-torch, and run with /usr/bin/python3 (see docs/bptt-baseline.md).",
          file=sys.stderr)
    sys.exit(77)

import kwm_data  # noqa: E402
import kwm_models  # noqa: E402

DEFAULT_KWM = ("build/lead/launch/kwm", "build/torch/launch/kwm", "build/launch/kwm")


def find_kwm(explicit):
    if explicit:
        return explicit
    for candidate in DEFAULT_KWM:
        if os.access(candidate, os.X_OK):
            return candidate
    sys.exit("check_equivalence: no kwm binary found; build it or pass --kwm PATH")


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"check_equivalence: {' '.join(cmd)} failed:\n{result.stderr.strip()}")
    return result.stdout


def read_means(path, channels):
    with open(path, newline="", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        cols = [header.index(f"mean_{c}") for c in channels]
    table = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=cols, dtype=float)
    return table.reshape(-1, len(channels))


def write_config(root, path):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(root, f, sort_keys=False)


def initial_theta_difference(kwm, config_root, workdir):
    """Max |theta_torch_init - theta_cpp_init| over entries the 1e-300 Adam step cannot move."""
    root = dict(config_root)
    root["learner"] = {"type": "adam-sensitivity", "learning_rate": 1e-300}
    root["train"] = {"epochs": 1, "run_dir": os.path.join(workdir, "init")}
    path = os.path.join(workdir, "init.yaml")
    write_config(root, path)
    run([kwm, "train", "--config", path])
    cpp, _ = kwm_models.load_model_file(os.path.join(workdir, "init", "model.yaml"), yaml)
    fresh = kwm_models.make_model(cpp.config)
    a, b = cpp.theta.detach().numpy(), fresh.theta.detach().numpy()
    return float(np.max(np.abs(a - b))), int(np.sum(a != b)), a.size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a kwm train run directory")
    parser.add_argument("--config", help="train a fresh 1-epoch run from this config instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for --config (repeatable)")
    parser.add_argument("--kwm", help="the kwm binary (default: build/lead/launch/kwm, ...)")
    parser.add_argument("--tolerance", type=float, default=1e-8,
                        help="largest allowed relative difference |a-b|/(1+|b|)")
    args = parser.parse_args()
    if bool(args.run_dir) == bool(args.config):
        parser.error("give either RUN_DIR or --config")
    kwm = find_kwm(args.kwm)

    with tempfile.TemporaryDirectory(prefix="kwm_equivalence_") as workdir:
        if args.config:
            root = kwm_data.load_config(args.config, yaml, args.set)
            root.setdefault("train", {})
            root["train"]["epochs"] = 1
            root["train"]["run_dir"] = os.path.join(workdir, "run")
            config_path = os.path.join(workdir, "run.yaml")
            write_config(root, config_path)
            run([kwm, "train", "--config", config_path])
            run_dir = root["train"]["run_dir"]
        else:
            run_dir = args.run_dir
            if not os.path.isfile(os.path.join(run_dir, "config.yaml")):
                sys.exit(f"check_equivalence: {run_dir}/config.yaml: no such file "
                         "(is it a kwm train run directory?)")
        root = kwm_data.load_config(os.path.join(run_dir, "config.yaml"), yaml)
        data = root["data"]
        if data.get("layout", "long") != "long":
            sys.exit("check_equivalence: kwm eval --data reads the long layout only; "
                     "use a long-layout run")
        outputs, inputs, channels = kwm_data.load_series(data)
        split = kwm_data.split_by_time(len(outputs), data.get("split", {}))
        train = slice(*split["train"])

        model, norm = kwm_models.load_model_file(os.path.join(run_dir, "model.yaml"), yaml)
        out_mean, out_scale = kwm_data.fit_scaling(outputs[train])
        in_mean, in_scale = kwm_data.fit_scaling(inputs[train])
        norm_diff = max(
            float(np.max(np.abs(mine - norm[key]), initial=0.0))
            for mine, key in ((out_mean, "output_mean"), (out_scale, "output_scale"),
                              (in_mean, "input_mean"), (in_scale, "input_scale")))

        init_diff, init_moved, size = initial_theta_difference(kwm, root, workdir)

        eval_csv = os.path.join(workdir, "eval.csv")
        cmd = [kwm, "eval", "--run-dir", run_dir, "--data", data["path"], "--out", eval_csv]
        for c in channels:
            cmd += ["--column", c]
        run(cmd)
        cpp_mean = read_means(eval_csv, channels)

    v = model.model_inputs((inputs - norm["input_mean"]) / norm["input_scale"],
                           (outputs - norm["output_mean"]) / norm["output_scale"])
    y_norm = (outputs - norm["output_mean"]) / norm["output_scale"]
    yhat, _ = kwm_models.predict_series(model, v, y_norm)
    torch_mean = yhat * norm["output_scale"] + norm["output_mean"]
    abs_diff = np.abs(torch_mean - cpp_mean)
    rel_diff = abs_diff / (1.0 + np.abs(cpp_mean))
    result = {
        "check": "bptt-equivalence",
        "source": f"--config {args.config} (train.epochs=1)" if args.config else run_dir,
        "model": model.config.get("type"),
        "parameters": int(size),
        "steps": int(len(outputs)),
        "normalization_max_abs_diff": norm_diff,
        "initial_theta_max_abs_diff": init_diff,
        "initial_theta_entries_differing": init_moved,
        "prediction_max_abs_diff": float(abs_diff.max()),
        "prediction_max_rel_diff": float(rel_diff.max()),
        "tolerance": args.tolerance,
    }
    result["ok"] = bool(norm_diff <= args.tolerance and init_diff <= args.tolerance
                        and result["prediction_max_rel_diff"] <= args.tolerance)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
