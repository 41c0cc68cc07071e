#!/usr/bin/python3
"""bench/results/results.jsonl -> markdown tables (stdout) for docs/results.md."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["sensitivity-dekf", "sensitivity-dekf/gate-off", "sensitivity-dekf/gate-reject",
         "sensitivity-dekf/gate-inflate", "diagonal-ekf", "adam-sensitivity", "bptt-adam", "ar",
         "var", "persistence"]
DATASETS = ["sunspots", "co2", "elnino", "macrodata", "ecg"]


def fmt(x, digits=4):
    if x is None:
        return "-"
    if abs(x) >= 1000 or (abs(x) < 1e-3 and x != 0):
        return f"{x:.3e}"
    return f"{x:.{digits}g}"


def knobs_text(r):
    k = r.get("knobs") or {}
    if r["row"] == "bptt-adam":
        return f"lr {r.get('learning_rate'):g}, epoch {r.get('best_epoch')}/10"
    if "learning_rate" in k:
        return f"lr {k['learning_rate']:g}"
    if "order" in k:
        return f"p = {k['order']}"
    if "initial_variance" in k:
        noise = "R adaptive" if k["noise"] == "adaptive" else "R fixed 0.1"
        return f"P0 {k['initial_variance']:g}, q {k['process_noise']:g}, {noise}"
    return ""


def passes_text(r):
    row = r["row"]
    if row in ("ar", "var"):
        return "batch LS"
    if row == "persistence":
        return "1"
    if row == "bptt-adam":
        return f"{r.get('best_epoch')} (30)"
    return f"1 ({r['grid_size']})"


def main():
    rows = [json.loads(l) for l in open(os.path.join(HERE, "results.jsonl"))]
    out = []
    for condition, title in (("clean", "Clean data"),
                             ("outliers", "5% outliers (10 sd) in the training targets"),
                             ("noise", "Observation noise (0.5 sd) added to the training targets")):
        sel = [r for r in rows if r["condition"] == condition]
        if not sel:
            continue
        out.append(f"### {title}\n")
        out.append("| data | learner | selected on validation | params | passes (grid) | "
                   "val MSE | test MSE | test MSE / BPTT | test NLL | cov90 | wall s (grid s) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for d in DATASETS:
            ds = sorted([r for r in sel if r["dataset"] == d],
                        key=lambda r: ORDER.index(r["row"]) if r["row"] in ORDER else 99)
            bptt = next((r["test"]["mse"] for r in ds if r["row"] == "bptt-adam" and r.get("test")),
                        None)
            for r in ds:
                if r.get("error"):
                    out.append(f"| {d} | {r['row']} | error: {r['error']} | | | | | | | | |")
                    continue
                t, v = r["test"], r["validation"]
                ratio = f"{t['mse'] / bptt:.2f}" if bptt else "-"
                grid = f" ({r['grid_seconds']:.1f})" if r["grid_size"] > 1 else ""
                out.append(f"| {d} | {r['row']} | {knobs_text(r)} | {r.get('parameters') or '-'} | "
                           f"{passes_text(r)} | {fmt(v['mse'])} | **{fmt(t['mse'])}** | {ratio} | "
                           f"{fmt(t['nll'])} | {fmt(t['coverage90'], 3)} | "
                           f"{fmt(r.get('wall_seconds'), 3)}{grid} |")
        out.append("")
    out.append("### Commands of the selected rows\n")
    out.append("Run from the repository root; `$KWM` is the kwm binary. Every candidate of every "
               "grid, with its command and validation/test metrics, is in "
               "`bench/results/candidates.jsonl`.\n")
    out.append("| data | condition | learner | command |")
    out.append("|---|---|---|---|")
    for r in rows:
        cmd = r.get("command", "").replace(os.environ.get("KWM", "build/results/launch/kwm"), "$KWM")
        cmd = cmd.replace("/tmp/kwm_lead", "$KWM").replace("|", "\\|")
        out.append(f"| {r['dataset']} | {r['condition']} | {r['row']} | `{cmd}` |")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
