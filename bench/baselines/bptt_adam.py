#!/usr/bin/python3
"""Truncated BPTT with Adam: the multi-epoch gradient reference for KWM (ALGORITHMS.md 10).

Reads a kwm run config (data, split, `model:` section), builds the same model in PyTorch
(kwm_models.py: same function, same initial theta as core/models), trains it by truncated
backpropagation through time with Adam for up to --epochs passes over the training split, keeps
the epoch with the lowest validation MSE, repeats that for each learning rate of --lr, and scores
the winner on the test split with the metrics of core/eval/forecast_metrics (predictive variance:
the validation mean squared residual per channel, data units). The last stdout line is one JSON
object like `kwm train --json`'s; --run-dir also writes config.yaml, metrics.jsonl, model.yaml and
predictions.csv in kwm's formats. See docs/bptt-baseline.md.

  /usr/bin/python3 bench/baselines/bptt_adam.py --config configs/quickstart.yaml \\
      --run-dir runs/quickstart-bptt
"""

import argparse
import base64
import copy
import json
import math
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
    import torch
    import yaml
except ImportError as error:
    print(f"bptt_adam: {error}. This baseline needs Debian's CPU PyTorch, which the project's "
          "setup script does not install: apt-get install -y python3-torch, then run it with "
          "/usr/bin/python3 (see docs/bptt-baseline.md).", file=sys.stderr)
    sys.exit(3)

import kwm_data  # noqa: E402
import kwm_models  # noqa: E402

LEARNER = "bptt-adam"
JACOBIAN_SOURCE = "reverse mode (autograd) through truncated windows; Adam step"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Truncated BPTT + Adam on a kwm run config (the gradient reference)")
    parser.add_argument("--config", required=True, help="kwm run config (YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, as kwm train --set (repeatable)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training split")
    parser.add_argument("--lr", default="1e-3,3e-3,1e-2",
                        help="comma-separated learning-rate grid (default 1e-3,3e-3,1e-2)")
    parser.add_argument("--truncation", type=int, default=16,
                        help="window length: gradients flow back at most this many steps")
    parser.add_argument("--batch", type=int, default=4, help="windows per Adam step")
    parser.add_argument("--clip", type=float, default=1.0,
                        help="clip the gradient 2-norm to this (0: off)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decay (0: Adam)")
    parser.add_argument("--stability-margin", type=float,
                        default=kwm_models.DEFAULT_STABILITY_MARGIN,
                        help="project to spectral radius <= 1 - margin after each step, as kwm")
    parser.add_argument("--seed", type=int, default=0, help="window order and offsets")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--run-dir", help="write config.yaml, metrics.jsonl, model.yaml, "
                        "predictions.csv here")
    parser.add_argument("--quiet", action="store_true", help="only the JSON line on stdout")
    args = parser.parse_args(argv)
    try:
        args.lr = [float(x) for x in args.lr.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--lr must be comma-separated numbers; got '{args.lr}'")
    for name in ("epochs", "truncation", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not args.lr or min(args.lr) <= 0:
        parser.error("--lr needs positive learning rates")
    return args


class Problem:
    """Series, split, normalisation and model inputs of one run config."""

    def __init__(self, root):
        data = root["data"]
        corrupt = data.get("corrupt") or {}
        if corrupt.get("outlier_fraction", 0) or corrupt.get("noise_std", 0):
            # kwm's corruption draws from C++'s std::normal_distribution, which this script does
            # not reproduce; refuse rather than silently train on clean data.
            raise ValueError("data.corrupt is not applied by bptt_adam.py: train on the corrupted "
                             "series kwm writes (predictions.csv of a kwm run with the same "
                             "data.corrupt), as bench/results/run_experiments.py does")
        self.outputs, self.inputs, self.channels = kwm_data.load_series(data)
        self.steps = len(self.outputs)
        self.split = kwm_data.split_by_time(self.steps, data.get("split") or {})
        train = slice(*self.split["train"])
        self.in_mean, self.in_scale = kwm_data.fit_scaling(self.inputs[train])
        self.out_mean, self.out_scale = kwm_data.fit_scaling(self.outputs[train])
        self.model_config = dict(root["model"])
        self.model_config["n_in"] = self.inputs.shape[1]
        self.model_config["n_out"] = self.outputs.shape[1]
        self.y_norm = (self.outputs - self.out_mean) / self.out_scale
        model = kwm_models.make_model(self.model_config)
        self.v = model.model_inputs((self.inputs - self.in_mean) / self.in_scale, self.y_norm)

    def new_model(self):
        return kwm_models.make_model(self.model_config)

    def to_data_units(self, yhat):
        return yhat * self.out_scale + self.out_mean

    def predict(self, model):
        """One-step means (data units) for t = 0..T-1, frozen theta, from the zero state."""
        yhat, _ = kwm_models.predict_series(model, self.v, self.y_norm)
        return self.to_data_units(yhat)

    def residual_variance(self, mean, part):
        """Per-channel mean squared one-step residual over the observed steps of `part`."""
        rows = slice(*self.split[part])
        e = self.outputs[rows] - mean[rows]
        var = np.array([np.nanmean(e[:, c] ** 2) if np.any(~np.isnan(e[:, c])) else np.nan
                        for c in range(e.shape[1])])
        # A channel never observed in `part` falls back to its training variance.
        return np.where(np.isfinite(var) & (var > 0), var, self.out_scale**2)

    def metrics(self, mean, variance, part):
        rows = slice(*self.split[part])
        return kwm_data.forecast_metrics(self.outputs[rows], mean[rows],
                                         np.broadcast_to(variance, mean[rows].shape))


def stack_states(states):
    """Concatenate batch-1 states (a tensor, or a list of (re, im) per layer) along batch."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(states, 0)
    return [(torch.cat([s[l][0] for s in states], 0), torch.cat([s[l][1] for s in states], 0))
            for l in range(len(first))]


def windows(begin, end, length, offset):
    """[begin, end) cut into windows of `length`, the first shortened by `offset`."""
    starts = [begin]
    s = begin + (offset if offset > 0 else length)
    while s < end:
        starts.append(s)
        s += length
    return [(a, min(b, end)) for a, b in zip(starts, starts[1:] + [end])]


def train_one_rate(problem, lr, args, log):
    """Epochs of truncated BPTT + Adam at one learning rate; returns the best-epoch record."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = problem.new_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay) \
        if args.weight_decay > 0 else torch.optim.Adam(model.parameters(), lr=lr)
    begin, end = problem.split["train"]
    k, m = args.truncation, len(problem.channels)
    y_norm = torch.from_numpy(problem.y_norm)
    best = {"validation_mse": math.inf, "epoch": 0, "theta": model.theta.detach().clone()}
    # Predictive variance for the logged training windows: the last residual variance seen.
    variance = problem.out_scale**2
    steps_done, adam_steps, start = 0, 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        cuts = windows(begin, end, k, int(rng.integers(0, k)))
        # Start states of every window from a forward pass with the epoch's starting theta.
        states = kwm_models.states_along(model, problem.v, problem.y_norm, [a for a, _ in cuts])
        order = rng.permutation(len(cuts))
        epoch_se, epoch_count = 0.0, 0
        for first in range(0, len(order), args.batch):
            chosen = [cuts[i] for i in order[first : first + args.batch]]
            v = torch.zeros(len(chosen), k, problem.v.shape[1], dtype=kwm_models.DTYPE)
            y = torch.full((len(chosen), k, m), math.nan, dtype=kwm_models.DTYPE)
            for b, (a, z) in enumerate(chosen):
                v[b, : z - a] = problem.v[a:z]
                y[b, : z - a] = y_norm[a:z]  # padding stays NaN: masked, and e = 0 there
            yhat, _ = model(v, y, stack_states([states[a] for a, _ in chosen]))
            observed = ~torch.isnan(y)
            if not observed.any():
                continue
            residual = torch.where(observed, yhat - y, torch.zeros_like(yhat))
            loss = (residual**2).sum() / observed.sum()
            optimizer.zero_grad()
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            model.project_to_stable(args.stability_margin)
            adam_steps += 1
            # Pre-update predictions of this batch, data units, as kwm's train windows.
            with torch.no_grad():
                mean = problem.to_data_units(yhat.detach().numpy()).reshape(-1, m)
                truth = problem.to_data_units(y.numpy()).reshape(-1, m)
            window = kwm_data.forecast_metrics(truth, mean, variance)
            epoch_se += window["mse"] * window["count"] if window["count"] else 0.0
            epoch_count += window["count"]
            steps_done += sum(z - a for a, z in chosen)
            log({"split": "train", "lr": lr, "epoch": epoch, "step": steps_done,
                 "adam_steps": adam_steps, "loss": float(loss),
                 "elapsed_s": time.perf_counter() - start, "window": window})
        mean = problem.predict(model)
        variance = problem.residual_variance(mean, "train")
        val = problem.metrics(mean, problem.residual_variance(mean, "validation"), "validation")
        log({"split": "epoch", "lr": lr, "epoch": epoch, "adam_steps": adam_steps,
             "train_mse_while_learning": epoch_se / max(1, epoch_count),
             "validation_mse": val["mse"], "elapsed_s": time.perf_counter() - start})
        if val["mse"] is not None and val["mse"] < best["validation_mse"]:
            best = {"validation_mse": val["mse"], "epoch": epoch,
                    "theta": model.theta.detach().clone()}
    best["seconds"] = time.perf_counter() - start
    best["adam_steps"] = adam_steps
    best["lr"] = lr
    return best


def model_yaml(problem, model, theta):
    """A kwm-model document (core/models/model_io) for the trained theta."""
    config = {key: model.config[key] for key in model.config}
    encoded = base64.b64encode(theta.astype("<f8").tobytes()).decode("ascii")

    def numbers(values):
        return "[" + ", ".join(repr(float(x)) for x in values) + "]"

    lines = ["format: kwm-model", "version: 1", "model:"]
    lines += [f"  {key}: {str(value).lower() if isinstance(value, bool) else value}"
              for key, value in config.items()]
    lines += ["normalization:", f"  input_mean: {numbers(problem.in_mean)}",
              f"  input_scale: {numbers(problem.in_scale)}",
              f"  output_mean: {numbers(problem.out_mean)}",
              f"  output_scale: {numbers(problem.out_scale)}",
              "theta:", f"  size: {theta.size}", "  encoding: base64 float64 little-endian",
              f"  data: {encoded}"]
    return "\n".join(lines) + "\n"


def predictions_csv(problem, mean, variance):
    def number(x):
        return "NaN" if not math.isfinite(x) else repr(float(x))

    header = "t,split" + "".join(f",y_{c},mean_{c},var_{c}" for c in problem.channels)
    rows = [header]
    for t in range(problem.steps):
        part = "train" if t < problem.split["train"][1] else (
            "validation" if t < problem.split["validation"][1] else "test")
        cells = [str(t), part]
        for c in range(len(problem.channels)):
            cells += [number(problem.outputs[t, c]), number(mean[t, c]), number(variance[c])]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    wall_start = time.perf_counter()
    try:
        root = kwm_data.load_config(args.config, yaml, args.set)
        problem = Problem(root)
    except (OSError, ValueError, KeyError) as error:
        print(f"bptt_adam: {error}", file=sys.stderr)
        return 2

    lines = []
    grid = [train_one_rate(problem, lr, args, lines.append) for lr in args.lr]
    best = min(grid, key=lambda r: r["validation_mse"])
    if not math.isfinite(best["validation_mse"]):
        print("bptt_adam: no learning rate gave a finite validation MSE", file=sys.stderr)
        return 1

    model = problem.new_model()
    model.set_theta(best["theta"].numpy())
    mean = problem.predict(model)
    variance = problem.residual_variance(mean, "validation")
    validation = problem.metrics(mean, variance, "validation")
    test = problem.metrics(mean, variance, "test")
    wall = time.perf_counter() - wall_start
    begin, end = problem.split["train"]
    result = {
        "command": "bptt-adam",
        "run_dir": args.run_dir,
        "learner": LEARNER,
        "jacobian_source": JACOBIAN_SOURCE,
        "model": problem.model_config.get("type"),
        "parameters": model.parameter_count(),
        "epochs": args.epochs,
        "best_epoch": best["epoch"],
        "passes": args.epochs * len(args.lr),
        "learning_rate": best["lr"],
        "learning_rates": {repr(r["lr"]): {"validation_mse": r["validation_mse"],
                                           "best_epoch": r["epoch"], "seconds": r["seconds"],
                                           "adam_steps": r["adam_steps"]} for r in grid},
        "truncation": args.truncation,
        "batch": args.batch,
        "adam_steps": best["adam_steps"],
        "train_seconds": best["seconds"],
        "wall_seconds": wall,
        "steps": {"train": end - begin,
                  "validation": problem.split["validation"][1] - problem.split["validation"][0],
                  "test": problem.split["test"][1] - problem.split["test"][0]},
        "predictive_variance": [float(x) for x in variance],
        "validation": validation,
        "test": test,
    }

    if args.run_dir:
        os.makedirs(args.run_dir, exist_ok=True)
        resolved = copy.deepcopy(root)
        resolved["model"] = problem.model_config
        resolved["learner"] = {"type": LEARNER, "learning_rates": args.lr,
                               "selected_learning_rate": best["lr"], "epochs": args.epochs,
                               "best_epoch": best["epoch"], "truncation": args.truncation,
                               "batch": args.batch, "clip": args.clip,
                               "weight_decay": args.weight_decay,
                               "stability_margin": args.stability_margin, "seed": args.seed}
        resolved.setdefault("train", {})["run_dir"] = args.run_dir
        with open(os.path.join(args.run_dir, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(resolved, f, sort_keys=False)
        with open(os.path.join(args.run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
            f.write(json.dumps({"event": "start", "learner": LEARNER,
                                "jacobian_source": JACOBIAN_SOURCE,
                                "parameters": model.parameter_count(),
                                "steps": problem.steps}) + "\n")
            for line in lines:
                # The learning curve is the selected rate's; every rate's epochs are kept.
                if line["split"] == "epoch" or line["lr"] == best["lr"]:
                    f.write(json.dumps(line) + "\n")
            for part, metrics in (("validation", validation), ("test", test)):
                f.write(json.dumps({"split": part, "metrics": {"overall": metrics},
                                    "elapsed_s": wall}) + "\n")
        with open(os.path.join(args.run_dir, "model.yaml"), "w", encoding="utf-8") as f:
            f.write(model_yaml(problem, model, best["theta"].numpy()))
        with open(os.path.join(args.run_dir, "predictions.csv"), "w", encoding="utf-8") as f:
            f.write(predictions_csv(problem, mean, variance))

    if not args.quiet:
        t = test
        print(f"{LEARNER}: lr {best['lr']:g}, best epoch {best['epoch']}/{args.epochs}: test MSE "
              f"{t['mse']:.6g}  MAE {t['mae']:.6g}  NLL {t['nll']:.4f}  90% coverage "
              f"{t['coverage90']:.3f}  ({wall:.2f}s)", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
