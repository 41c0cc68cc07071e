#!/usr/bin/python3
"""Plots kwm run directories (kwm train, bench/baselines/bptt_adam.py) as PNG files.

  /usr/bin/python3 launch/plot_run.py RUN_DIR [RUN_DIR ...] --out DIR

Writes to DIR:
  learning_curves.png        windowed one-step train MSE and NLL against training steps seen
                             (metrics.jsonl "train" lines), every run overlaid, named by learner;
  predictions_<run>.png      per run: truth, one-step mean and the 90% band mean +- 1.645 sd on
                             the validation and test part (predictions.csv), one panel a channel;
  predictions_compare.png    with several runs on the same series: their means overlaid.
Needs Debian's python3-matplotlib (run with /usr/bin/python3). Exit status 2 on bad input.
"""

import argparse
import csv
import json
import math
import os
import sys

CENTRAL_90_QUANTILE = 1.6448536269514722
MAX_CHANNELS = 6  # panels per predictions figure


class RunError(Exception):
    """A run directory that cannot be plotted; the message says why."""


def read_metrics(run_dir):
    """(learner name, [(steps seen, mse, nll)]) from metrics.jsonl's train lines."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise RunError(f"{path}: no such file (is {run_dir} a run directory?)")
    learner, points = None, []
    offset, last_step = 0, 0
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as error:
                raise RunError(f"{path} line {number}: not JSON ({error})") from None
            if line.get("event") == "start":
                learner = line.get("learner", learner)
            if line.get("split") != "train" or "window" not in line:
                continue
            step = int(line.get("step", 0))
            # kwm counts steps within an epoch: a smaller step starts a new pass.
            if step < last_step:
                offset += last_step
            last_step = step
            window = line["window"]
            points.append((offset + step, window.get("mse"), window.get("nll")))
    return learner, points


def read_predictions(run_dir):
    """{"t": [...], "split": [...], "channels": {name: (y, mean, var)}} from predictions.csv."""
    path = os.path.join(run_dir, "predictions.csv")
    if not os.path.isfile(path):
        raise RunError(f"{path}: no such file (is {run_dir} a run directory?)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[:2] != ["t", "split"]:
            raise RunError(f"{path}: expected a header starting with t,split")
        names = [h[2:] for h in header if h.startswith("y_")]
        columns = {h: i for i, h in enumerate(header)}
        for name in names:
            for prefix in ("mean_", "var_"):
                if prefix + name not in columns:
                    raise RunError(f"{path}: column {prefix + name} is missing")
        rows = list(reader)

    def number(text):
        try:
            return float(text)
        except ValueError:
            return math.nan

    out = {"t": [int(r[0]) for r in rows], "split": [r[1] for r in rows], "channels": {}}
    for name in names:
        out["channels"][name] = tuple([number(r[columns[prefix + name]]) for r in rows]
                                      for prefix in ("y_", "mean_", "var_"))
    return out


def learner_label(run_dir, learner):
    config = os.path.join(run_dir, "config.yaml")
    if learner is None and os.path.isfile(config):
        with open(config, encoding="utf-8") as f:
            in_learner = False
            for text in f:
                if text.startswith("learner:"):
                    in_learner = True
                elif in_learner and text.strip().startswith("type:"):
                    learner = text.split(":", 1)[1].strip()
                    break
    return learner or "run"


def plot_learning_curves(runs, path, plt):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = False
    for run in runs:
        points = [p for p in run["points"] if p[1] is not None]
        if not points:
            continue
        drawn = True
        steps = [p[0] for p in points]
        axes[0].plot(steps, [p[1] for p in points], label=run["label"], linewidth=1.2)
        nll = [(s, p[2]) for s, p in zip(steps, points) if p[2] is not None]
        axes[1].plot([s for s, _ in nll], [v for _, v in nll], label=run["label"], linewidth=1.2)
    axes[0].set_yscale("log")
    axes[0].set_title("train MSE (windowed, one-step, data units)")
    axes[1].set_title("train Gaussian NLL (windowed, nats)")
    for ax in axes:
        ax.set_xlabel("training steps seen (all epochs)")
        ax.grid(True, alpha=0.3)
    if drawn:
        axes[0].legend(fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no train lines in metrics.jsonl", ha="center",
                     transform=axes[0].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def held_out_rows(pred):
    return [i for i, s in enumerate(pred["split"]) if s in ("validation", "test", "eval")]


def shade_splits(ax, pred, rows):
    test = [pred["t"][i] for i in rows if pred["split"][i] == "test"]
    if test:
        ax.axvspan(test[0] - 0.5, test[-1] + 0.5, color="0.92", zorder=0, label="test")


def plot_predictions(run, path, plt):
    pred = run["predictions"]
    rows = held_out_rows(pred) or list(range(len(pred["t"])))
    names = list(pred["channels"])[:MAX_CHANNELS]
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 3.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        y, mean, var = pred["channels"][name]
        t = [pred["t"][i] for i in rows]
        m = [mean[i] for i in rows]
        half = [CENTRAL_90_QUANTILE * math.sqrt(var[i]) if var[i] >= 0 else math.nan
                for i in rows]
        shade_splits(ax, pred, rows)
        ax.fill_between(t, [a - b for a, b in zip(m, half)], [a + b for a, b in zip(m, half)],
                        color="tab:blue", alpha=0.2, label="90% band")
        ax.plot(t, m, color="tab:blue", linewidth=1.2, label="one-step mean")
        ax.plot(t, [y[i] for i in rows], color="black", linewidth=0.9, marker=".",
                markersize=3, label="truth")
        ax.set_title(f"{run['label']}: {name} (validation + test)")
        ax.set_xlabel("t")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_comparison(runs, path, plt):
    """Means of several runs on one series, if their predictions.csv files line up."""
    first = runs[0]["predictions"]
    if any(r["predictions"]["t"] != first["t"]
           or list(r["predictions"]["channels"]) != list(first["channels"]) for r in runs):
        return False
    rows = held_out_rows(first) or list(range(len(first["t"])))
    names = list(first["channels"])[:MAX_CHANNELS]
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 3.2 * len(names)), squeeze=False)
    t = [first["t"][i] for i in rows]
    for ax, name in zip(axes[:, 0], names):
        shade_splits(ax, first, rows)
        y = first["channels"][name][0]
        ax.plot(t, [y[i] for i in rows], color="black", linewidth=0.9, marker=".", markersize=3,
                label="truth")
        for run in runs:
            mean = run["predictions"]["channels"][name][1]
            ax.plot(t, [mean[i] for i in rows], linewidth=1.2, label=run["label"])
        ax.set_title(f"{name}: one-step means (validation + test)")
        ax.set_xlabel("t")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def safe_name(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "run"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Plot kwm run directories as PNG files.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", required=True, help="directory for the PNG files")
    args = parser.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_run: matplotlib is missing: apt-get install python3-matplotlib and run "
              "with /usr/bin/python3", file=sys.stderr)
        return 2

    runs = []
    try:
        for run_dir in args.run_dirs:
            if not os.path.isdir(run_dir):
                raise RunError(f"{run_dir}: no such directory")
            learner, points = read_metrics(run_dir)
            runs.append({"dir": run_dir, "learner": learner_label(run_dir, learner),
                         "points": points, "predictions": read_predictions(run_dir)})
    except RunError as error:
        print(f"plot_run: {error}", file=sys.stderr)
        return 2
    # Learner names label the curves; the directory name is added where names repeat.
    learners = [r["learner"] for r in runs]
    for r in runs:
        base = os.path.basename(os.path.normpath(r["dir"]))
        r["label"] = r["learner"] if learners.count(r["learner"]) == 1 else \
            f"{r['learner']} ({base})"
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        print(f"plot_run: {args.out}: cannot create the output directory: {error}",
              file=sys.stderr)
        return 2

    written = [os.path.join(args.out, "learning_curves.png")]
    plot_learning_curves(runs, written[0], plt)
    used = set()
    for r in runs:
        name = safe_name(os.path.basename(os.path.normpath(r["dir"])))
        while name in used:
            name += "_"
        used.add(name)
        written.append(os.path.join(args.out, f"predictions_{name}.png"))
        plot_predictions(r, written[-1], plt)
    if len(runs) > 1:
        path = os.path.join(args.out, "predictions_compare.png")
        if plot_comparison(runs, path, plt):
            written.append(path)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
