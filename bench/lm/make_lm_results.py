#!/usr/bin/python3
"""Tables and figures of docs/lm-results.md from the run directories of bench/lm/run_lm_results.sh.

  /usr/bin/python3 bench/lm/make_lm_results.py [--runs runs/lm_results] [--figures docs/figures]

Reads, per model size (tiny, small) and learner, <runs>/<size>/<learner>/metrics.jsonl (kwm train),
train.json (kwm train --json), eval.json (kwm eval --json: the test split, every window) and
time.txt (/usr/bin/time: user and system CPU seconds), and <runs>/continual/<learner>.jsonl
(kwm_lm_continual). Prints the markdown tables to stdout and writes
  <figures>/lm_<size>_val_vs_tokens.png, lm_<size>_val_vs_wall.png, lm_<size>_val_vs_forward.png,
  lm_continual.png.
Needs Debian's python3-matplotlib. Exit status 2 when a run directory is missing or malformed.
"""

import argparse
import json
import os
import sys

LEARNERS = ["kwm-linearized", "rls-head", "kwm-ensemble", "mezo", "adamw"]
DERIVATIVES = {  # what each learner needs to obtain its update (docs/lm-learners.md)
    "kwm-linearized": "linearized (transposed Jacobians)",
    "rls-head": "reverse-free (linear-in-parameters head)",
    "kwm-ensemble": "reverse-free (ensemble, forward passes only)",
    "mezo": "reverse-free (zeroth-order SPSA, forward passes only)",
    "adamw": "backprop (transposed Jacobians)",
}
STYLE = {
    "kwm-linearized": dict(color="tab:blue"),
    "rls-head": dict(color="tab:green"),
    "kwm-ensemble": dict(color="tab:purple"),
    "mezo": dict(color="tab:red"),
    "adamw": dict(color="tab:orange"),
}


class RunError(Exception):
    """A run directory that cannot be summarised; the message says why."""


def read_json(path):
    if not os.path.isfile(path):
        raise RunError(f"{path}: no such file (did run_lm_results.sh finish?)")
    with open(path, encoding="utf-8") as f:
        text = f.read().strip().splitlines()
    if not text:
        raise RunError(f"{path}: empty")
    try:
        return json.loads(text[-1])
    except json.JSONDecodeError as error:
        raise RunError(f"{path}: last line is not JSON ({error})") from None


def read_jsonl(path):
    if not os.path.isfile(path):
        raise RunError(f"{path}: no such file")
    lines = []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if text.strip():
                try:
                    lines.append(json.loads(text))
                except json.JSONDecodeError as error:
                    raise RunError(f"{path} line {number}: not JSON ({error})") from None
    return lines


def read_cpu_seconds(path):
    """user + system seconds from `/usr/bin/time -f '%U %S'` (the last line of the file)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        lines = [line.split() for line in f if line.strip()]
    try:
        return float(lines[-1][0]) + float(lines[-1][1])
    except (IndexError, ValueError):
        raise RunError(f"{path}: expected '<user> <system>' seconds") from None


def load_size(runs, size):
    rows = {}
    for learner in LEARNERS:
        d = os.path.join(runs, size, learner)
        if not os.path.isdir(d):
            continue
        rows[learner] = {
            "metrics": read_jsonl(os.path.join(d, "metrics.jsonl")),
            "train": read_json(os.path.join(d, "train.json")),
            "eval": read_json(os.path.join(d, "eval.json")),
            "cpu_s": read_cpu_seconds(os.path.join(d, "time.txt")),
        }
    return rows


def table(size, rows):
    out = [
        f"### {size}",
        "",
        "| learner | derivatives | tokens | wall s | CPU s | forward passes | transposed-Jacobian "
        "passes | val nll (nats/token) | unigram val nll | beats unigram | test nll | test bits/byte |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for learner, r in rows.items():
        last = r["metrics"][-1]
        t, e = r["train"], r["eval"]
        cpu = "" if r["cpu_s"] is None else f"{r['cpu_s']:.0f}"
        beats = "yes" if t["val_nll"] < t["unigram_nll"] else "**no**"
        out.append(
            f"| {learner} | {DERIVATIVES[learner]} | {t['tokens']:,} | {t['wall_s']:.0f} | {cpu} | "
            f"{last.get('forward_passes', 0):,} | {last.get('transposed_jacobian_passes', 0):,} | "
            f"{t['val_nll']:.4f} | {t['unigram_nll']:.4f} | {beats} | {e['nll']:.4f} | "
            f"{e['bits_per_byte']:.3f} |")
    out.append("")
    return out


def continual_table(runs):
    d = os.path.join(runs, "continual")
    if not os.path.isdir(d):
        return [], {}
    curves = {}
    for learner in LEARNERS:
        path = os.path.join(d, f"{learner}.jsonl")
        if os.path.isfile(path):
            curves[learner] = read_jsonl(path)
    if not curves:
        return [], {}
    start = next(iter(curves.values()))[0]
    a, b = start["book_a"], start["book_b"]
    out = [
        f"### Continual adaptation: {a} (phase A) then {b} streamed in order (phase B)",
        "",
        f"Held-out loss (nats/byte) on the last 10% of each book. Unigram references: "
        f"{a}-trained unigram on held-out {a} {start['unigram_a_on_a']:.3f}, on held-out {b} "
        f"{start['unigram_a_on_b']:.3f}; {b}-trained unigram on held-out {b} "
        f"{start['unigram_b_on_b']:.3f}.",
        "",
        f"| learner | wall s | held-out {a}: start / end of A / end of B | held-out {b}: start / "
        f"end of A / end of B |",
        "|---|---|---|---|",
    ]
    for learner, lines in curves.items():
        evals = [x for x in lines if "phase" in x]
        end_a = [x for x in evals if x["phase"] == "A"][-1]
        first, end_b = evals[0], evals[-1]
        out.append(
            f"| {learner} | {end_b['wall_s']:.0f} | {first['heldout_a_nll']:.3f} / "
            f"{end_a['heldout_a_nll']:.3f} / {end_b['heldout_a_nll']:.3f} | "
            f"{first['heldout_b_nll']:.3f} / {end_a['heldout_b_nll']:.3f} / "
            f"{end_b['heldout_b_nll']:.3f} |")
    out.append("")
    return out, curves


def plot_size(plt, size, rows, figures):
    written = []
    axes_of = {
        "tokens": ("tokens", "training tokens"),
        "wall": ("wall_s", "wall-clock seconds (shared 2-core machine)"),
        "forward": ("forward_passes", "full-model forward passes"),
    }
    for name, (key, label) in axes_of.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        unigram = None
        for learner, r in rows.items():
            points = [(m.get(key, 0), m["val_nll"]) for m in r["metrics"] if "val_nll" in m]
            if name == "forward":
                points = points[1:]  # step 0 has no pass count; a log axis cannot show 0
            unigram = r["metrics"][0].get("unigram_nll", unigram)
            ax.plot([p[0] for p in points], [p[1] for p in points], label=learner,
                    **STYLE[learner])
        if unigram is not None:
            ax.axhline(unigram, color="gray", linestyle="--", label="unigram (train counts)")
        if name == "forward":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(f"{size} GPT: validation loss vs {label.split(' (')[0]}")
        # Clip divergent spikes: the untrained model's loss (step 0) plus a margin is the top.
        start = max(r["metrics"][0]["val_nll"] for r in rows.values())
        ax.set_ylim(top=start + 0.3)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(figures, f"lm_{size}_val_vs_{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_continual(plt, curves, figures):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    start = next(iter(curves.values()))[0]
    for learner, lines in curves.items():
        evals = [x for x in lines if "phase" in x]
        tokens = [x["tokens"] for x in evals]
        axes[0].plot(tokens, [x["heldout_a_nll"] for x in evals], label=learner, **STYLE[learner])
        axes[1].plot(tokens, [x["heldout_b_nll"] for x in evals], label=learner, **STYLE[learner])
        switch = [x["tokens"] for x in evals if x["phase"] == "A"][-1]
    for ax, book, uni in ((axes[0], start["book_a"], start["unigram_a_on_a"]),
                          (axes[1], start["book_b"], start["unigram_b_on_b"])):
        ax.axvline(switch, color="black", linewidth=0.8)
        ax.axhline(uni, color="gray", linestyle="--", label=f"unigram of {book}")
        ax.set_title(f"held-out {book}")
        ax.set_xlabel(f"tokens (phase A: {start['book_a']} | phase B: {start['book_b']})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out loss (nats/byte)")
    axes[0].set_ylim(top=6.0)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(figures, "lm_continual.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/lm_results")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    try:
        lines = []
        os.makedirs(args.figures, exist_ok=True)
        others = sorted(d for d in os.listdir(args.runs)
                        if d not in ("tiny", "small", "continual")) if os.path.isdir(args.runs) else []
        for size in ["tiny", "small"] + others:
            rows = load_size(args.runs, size)
            if rows:
                lines += table(size, rows)
                for path in plot_size(plt, size, rows, args.figures):
                    print(f"wrote {path}", file=sys.stderr)
        continual, curves = continual_table(args.runs)
        lines += continual
        if curves:
            print(f"wrote {plot_continual(plt, curves, args.figures)}", file=sys.stderr)
        if not lines:
            raise RunError(f"{args.runs}: no runs found")
    except RunError as error:
        print(f"make_lm_results: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
