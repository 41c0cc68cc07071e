#!/usr/bin/python3
"""Runs every row of docs/results.md and appends one JSON line per selected row to
bench/results/results.jsonl (and every candidate of every grid to candidates.jsonl).

Selection rule, for every learner with knobs: the candidate with the lowest VALIDATION MSE
(data units) is kept; the test split is never looked at for any choice. Called by run_all.sh:

  /usr/bin/python3 bench/results/run_experiments.py [--datasets sunspots,co2] [--jobs 2]
"""

import argparse
import concurrent.futures as cf
import csv
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "bench", "results")
RUNS = os.path.join("runs", "results")  # git-ignored run directories
KWM = os.environ.get("KWM", "build/results/launch/kwm")
PY = "/usr/bin/python3"
BPTT = "bench/baselines/bptt_adam.py"

# Grids (small on purpose: 2 shared cores). KWM knobs: initial_variance x process_noise x noise.
KWM_GRID = [(iv, q, noise) for iv in (0.01, 0.05, 0.2) for q in (1e-6, 1e-5)
            for noise in ("adaptive", "fixed")]
KWM_GRID_ECG = [(iv, 1e-6, "adaptive") for iv in (0.01, 0.05, 0.2)]
ADAM_LR = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BPTT_LR = "1e-3,3e-3,1e-2"
AR_ORDERS = (1, 2, 3, 4, 6, 8, 12, 13, 24, 26, 52)

DATASETS = {
    "sunspots": {"config": "configs/sunspots.yaml", "robust": True, "max_p": 12},
    "co2": {"config": "configs/co2.yaml", "robust": True, "max_p": 52},
    "elnino": {"config": "configs/elnino.yaml", "robust": True, "max_p": 26},
    "macrodata": {"config": "configs/macrodata.yaml", "robust": False, "max_p": 8, "var": True},
    "ecg": {"config": "configs/ecg.yaml", "robust": False, "max_p": 24, "ecg": True},
}
CONDITIONS = {
    "clean": [],
    "outliers": ["data.corrupt.outlier_fraction=0.05", "data.corrupt.outlier_scale=10",
                 "data.corrupt.seed=7"],
    "noise": ["data.corrupt.noise_std=0.5", "data.corrupt.seed=7"],
}


def kwm_learner(kind, iv, q, noise, gating="off"):
    noise_part = ("{mode: adaptive, variance: 0.3, ema: 0.98, floor: 1.0e-3}" if noise == "adaptive"
                  else "{mode: fixed, variance: 0.1}")
    return (f"learner={{type: {kind}, blocking: per_group, initial_variance: {iv}, "
            f"predict: {{dynamics: process_noise, process_noise: {q}}}, noise: {noise_part}, "
            f"gating: {{mode: {gating}, probability: 0.999}}}}")


def kwm_command(config, sets, run_dir):
    cmd = [KWM, "train", "--config", config]
    for s in sets:
        cmd += ["--set", s]
    return cmd + ["--run-dir", run_dir, "--json"]


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:], "rc": proc.returncode,
                "command": shlex.join(cmd), "elapsed": elapsed}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["command"] = shlex.join(cmd)
    result["elapsed"] = elapsed
    return result


def log_candidate(record):
    with open(os.path.join(OUT, "candidates.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


def select(dataset, condition, row, label, candidates, pool):
    """Runs the candidate commands, keeps the lowest validation MSE, writes the row."""
    results = list(pool.map(run, [c for _, c in candidates]))
    best, best_knobs = None, None
    grid_seconds = 0.0
    for (knobs, _), r in zip(candidates, results):
        grid_seconds += r.get("elapsed", 0.0)
        log_candidate({"dataset": dataset, "condition": condition, "row": row, "knobs": knobs,
                       "validation": r.get("validation"), "test": r.get("test"),
                       "error": r.get("error"), "command": r["command"]})
        val = (r.get("validation") or {}).get("mse")
        if val is not None and (best is None or val < best["validation"]["mse"]):
            best, best_knobs = r, knobs
    record = {"dataset": dataset, "condition": condition, "row": row, "label": label,
              "grid_size": len(candidates), "grid_seconds": grid_seconds}
    if best is None:
        record["error"] = [r.get("error") for r in results][:1]
        record["command"] = results[0]["command"] if results else ""
    else:
        record.update({"knobs": best_knobs, "command": best["command"],
                       "parameters": best.get("parameters"),
                       "passes": best.get("passes"), "wall_seconds": best.get("wall_seconds"),
                       "validation": best["validation"], "test": best["test"],
                       "health": best.get("health"), "learning_rate": best.get("learning_rate"),
                       "best_epoch": best.get("best_epoch")})
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    t = record.get("test") or {}
    print(f"{dataset:10s} {condition:9s} {row:28s} val {str((record.get('validation') or {}).get('mse'))[:9]:9s} "
          f"test {str(t.get('mse'))[:9]:9s} nll {str(t.get('nll'))[:6]:6s} knobs {record.get('knobs')}",
          flush=True)
    return record


def corrupted_csv(dataset, condition, spec, sets, pool):
    """The corrupted series exactly as kwm builds it (predictions.csv of a persistence run holds
    the corrupted training targets), as a one-column long CSV for bptt_adam.py, which does not
    apply data.corrupt itself."""
    run_dir = os.path.join(RUNS, dataset, condition, "corrupted-series")
    r = run(kwm_command(spec["config"], sets + ["learner={type: persistence}"], run_dir))
    if "error" in r:
        raise RuntimeError(r)
    with open(os.path.join(ROOT, run_dir, "predictions.csv")) as f:
        rows = list(csv.DictReader(f))
    channels = [k[2:] for k in rows[0] if k.startswith("y_")]
    path = os.path.join("data", f"results_{dataset}_{condition}.csv")
    with open(os.path.join(ROOT, path), "w") as f:
        f.write(",".join(channels) + "\n")
        for row in rows:
            # "NA", not an empty cell: a line of one empty cell is a blank line, which the CSV
            # readers skip (that would drop the missing steps and shift the series).
            f.write(",".join("NA" if row["y_" + c] in ("NaN", "nan", "") else row["y_" + c]
                             for c in channels) + "\n")
    return path, channels


def run_dataset(dataset, conditions, pool):
    spec = DATASETS[dataset]
    config = spec["config"]
    grid = KWM_GRID_ECG if spec.get("ecg") else KWM_GRID
    for condition in conditions:
        sets = CONDITIONS[condition]
        base = os.path.join(RUNS, dataset, condition)

        def kwm_rows(kind, gating, row):
            cands = []
            for i, (iv, q, noise) in enumerate(grid):
                knobs = {"initial_variance": iv, "process_noise": q, "noise": noise,
                         "gating": gating}
                cands.append((knobs, kwm_command(config, sets + [kwm_learner(kind, iv, q, noise, gating)],
                                                 os.path.join(base, f"{row}-{i}"))))
            return select(dataset, condition, row, kind, cands, pool)

        if condition == "outliers":
            for gating in ("off", "reject", "inflate"):
                kwm_rows("sensitivity-dekf", gating, f"sensitivity-dekf/gate-{gating}")
        else:
            kwm_rows("sensitivity-dekf", "off", "sensitivity-dekf")
        if condition == "clean":
            kwm_rows("diagonal-ekf", "off", "diagonal-ekf")
        cands = [({"learning_rate": lr},
                  kwm_command(config, sets + [f"learner={{type: adam-sensitivity, learning_rate: {lr}}}"],
                              os.path.join(base, f"adam-{lr}"))) for lr in ADAM_LR]
        select(dataset, condition, "adam-sensitivity", "adam-sensitivity", cands, pool)
        orders = [p for p in AR_ORDERS if p <= spec["max_p"]]
        for kind in (("ar", "var") if spec.get("var") else ("ar",)):
            cands = [({"order": p}, kwm_command(config, sets + [f"learner={{type: {kind}, order: {p}}}"],
                                                os.path.join(base, f"{kind}-{p}"))) for p in orders]
            select(dataset, condition, kind, kind, cands, pool)
        select(dataset, condition, "persistence", "persistence",
               [({}, kwm_command(config, sets + ["learner={type: persistence}"],
                                 os.path.join(base, "persistence")))], pool)
        # BPTT + Adam: 3 learning rates x 10 epochs inside the script (selection on validation).
        bptt_sets = []
        if sets:
            path, channels = corrupted_csv(dataset, condition, spec, sets, pool)
            bptt_sets = [f"data.path={path}", f"data.columns=[{', '.join(channels)}]",
                         "data.layout=long"]
        cmd = [PY, BPTT, "--config", config, "--lr", BPTT_LR, "--epochs", "10", "--threads", "1",
               "--quiet", "--run-dir", os.path.join(base, "bptt-adam")]
        for s in bptt_sets:
            cmd += ["--set", s]
        select(dataset, condition, "bptt-adam", "bptt-adam", [({"lr_grid": BPTT_LR}, cmd)], pool)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--conditions", default="clean,outliers,noise")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for dataset in args.datasets.split(","):
            conditions = [c for c in args.conditions.split(",")
                          if c == "clean" or DATASETS[dataset]["robust"]]
            run_dataset(dataset, conditions, pool)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
