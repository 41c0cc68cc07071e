"""Figures and tables of issue 7's sample-efficiency runs (bench/lm_cuda/run_sample_efficiency.sh):
validation loss against training tokens, wall seconds and forward passes for every run in the
archive, the final numbers, and the forward passes each run needed to reach target losses, with
the ensemble-versus-MeZO ratio where both reached a target.

Inputs: the archive $OUT/sample_efficiency.tar.gz (or the folder it was unpacked into): its
manifest.jsonl names each run (kwm metrics.jsonl or the PyTorch JSONL) with its learner, device,
rank count and exit status.

Forward passes are counted per global batch ("batch passes"), so that runs on different rank
counts compare: kwm's metrics.jsonl sums every rank's passes, each over that rank's share of the
batch, except kwm-ensemble's members, which each run over the whole (gathered) batch. So:
  kwm-ensemble  batch passes = forward_passes - (ranks - 1) * step   (members + one prequential)
  any other     batch passes = forward_passes / ranks
PyTorch AdamW counts 1 per step, MeZO 2 per step.

Wall seconds: PyTorch's clock excludes validation and torch.compile's warm-up; kwm's wall_s (its
metrics.jsonl) runs from after the step-0 validation and includes the later validations.

A target is reached at the first validation at or below it (resolution: the run's validation
interval); a run already at or below it at step 0 is marked so and left out of the ratios.
Targets are numbers, or "unigram", "unigram-0.1" (relative to the unigram loss of the validation
tokens, which every run logs) or "start-0.05" (relative to the median step-0 validation loss).

usage: python3 plot_sample_efficiency.py ARCHIVE_OR_DIR [--targets unigram start-0.05 4.5]
           [--figures docs/figures] [--prefix lm_gpu_10m] [--table table.md]
"""
import argparse
import json
import math
import os
import sys
import tarfile
import tempfile


def load_runs(root):
    manifest = os.path.join(root, "manifest.jsonl")
    if not os.path.exists(manifest):
        sys.exit(f"{root}: no manifest.jsonl (not the sample-efficiency archive?)")
    runs = []
    for line in open(manifest):
        if not line.strip():
            continue
        entry = json.loads(line)
        entry["rows"], entry["start"] = [], {}
        path = os.path.join(root, entry["metrics"]) if entry.get("metrics") else ""
        if path and os.path.exists(path):
            for raw in open(path):
                if not raw.strip():
                    continue
                row = json.loads(raw)
                if row.get("event") == "start":
                    entry["start"] = row
                elif "val_nll" in row and "step" in row:
                    entry["rows"].append(row)
        runs.append(entry)
    return runs


def batch_passes(entry, row):
    passes = row.get("forward_passes", 0)
    ranks = max(1, int(entry.get("ranks") or 1))
    if entry["source"] == "kwm" and entry["learner"] == "kwm-ensemble":
        return passes - (ranks - 1) * row["step"]
    return passes / ranks


def unigram_of(runs):
    for entry in runs:
        for row in entry["rows"]:
            if "unigram_nll" in row:
                return row["unigram_nll"]
        if "unigram_nll" in entry["start"]:
            return entry["start"]["unigram_nll"]
    return None


def start_of(runs):
    """The median step-0 validation loss over the runs (they share the head-bias start)."""
    starts = sorted(e["rows"][0]["val_nll"] for e in runs
                    if e["rows"] and e["rows"][0]["step"] == 0)
    return starts[len(starts) // 2] if starts else None


def parse_target(text, unigram, start):
    for name, base in (("unigram", unigram), ("start", start)):
        if text.startswith(name):
            if base is None:
                sys.exit(f"target {text}: no run logged the {name} loss")
            rest = text[len(name):]
            return base + (float(rest) if rest else 0.0)
    return float(text)


def device_of(entry):
    """PyTorch runs name their device in their start line (cpu in a dry run); kwm's manifest."""
    device = entry["start"].get("device", entry["device"])
    return "cpu" if device == "cpu" else entry["device"]


def label(entry):
    where = {"kwm": "kwm", "torch": "PyTorch"}[entry["source"]]
    ranks = int(entry.get("ranks") or 1)
    device = device_of(entry) + (f" x{ranks}" if ranks > 1 else "")
    return f"{entry['name']} ({where}, {device})"


def reached(entry, target):
    """The first validation at or below the target, or None; "start" when step 0 already is."""
    for row in entry["rows"]:
        if row["val_nll"] <= target:
            return "start" if row["step"] == 0 else row
    return None


def fmt_int(x):
    return f"{int(round(x)):,}"


def tables(runs, targets, unigram):
    out = ["| run | learner | where | status | steps | tokens | wall s | batch forward passes | "
           "val nll step 0 | final val nll | best val nll |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in runs:
        where = ("kwm" if e["source"] == "kwm" else "PyTorch") + " " + device_of(e)
        if int(e.get("ranks") or 1) > 1:
            where += f" x{e['ranks']} ranks"
        status = "ok" if e.get("status") == 0 else (
            "time limit" if e.get("status") == 124 else
            f"exit {e.get('status')}" if e.get("status") is not None else "not run")
        if e.get("reason"):
            status += f": {e['reason']}"
        if not e["rows"]:
            out.append(f"| {e['name']} | {e['learner']} | {where} | {status} | | | | | | | |")
            continue
        first, last = e["rows"][0], e["rows"][-1]
        best = min(r["val_nll"] for r in e["rows"])
        out.append(f"| {e['name']} | {e['learner']} | {where} | {status} | {last['step']} | "
                   f"{fmt_int(last['tokens'])} | {last.get('wall_s', 0.0):.1f} | "
                   f"{fmt_int(batch_passes(e, last))} | {first['val_nll']:.4f} | "
                   f"{last['val_nll']:.4f} | {best:.4f} |")
    out.append("")
    out.append("Unigram validation loss: " + (f"{unigram:.4f} nats/token." if unigram else "n/a.")
               + " Targets: " + ", ".join(f"{n} = {v:.4f}" for n, v in targets) + ".")
    out.append("")
    head = "| run | " + " | ".join(f"to reach {name} = {value:.4f}: batch passes (tokens, wall s)"
                                   for name, value in targets) + " |"
    out.append(head)
    out.append("|---|" + "---|" * len(targets))
    for e in runs:
        if not e["rows"]:
            continue
        cells = []
        for _, value in targets:
            row = reached(e, value)
            cells.append("not reached" if row is None else "at the start (step 0)"
                         if row == "start" else
                         f"{fmt_int(batch_passes(e, row))} ({fmt_int(row['tokens'])}, "
                         f"{row.get('wall_s', 0.0):.1f})")
        out.append(f"| {e['name']} | " + " | ".join(cells) + " |")
    out.append("")
    ensembles = [e for e in runs if e["learner"] == "kwm-ensemble" and e["rows"]]
    mezos = [e for e in runs if e["learner"] == "mezo" and e["rows"]]
    lines = []
    for name, value in targets:
        for ens in ensembles:
            er = reached(ens, value)
            for mz in mezos:
                mr = reached(mz, value)
                if er is None or mr is None or "start" in (er, mr):
                    why = []
                    for who, r in (("the ensemble", er), ("MeZO", mr)):
                        if r is None:
                            why.append(f"{who} did not reach it")
                        elif r == "start":
                            why.append(f"{who} was at or below it at step 0")
                    lines.append(f"- {name} ({value:.4f}): {ens['name']} vs {mz['name']}: "
                                 f"not compared ({'; '.join(why)})")
                    continue
                ratio = batch_passes(mz, mr) / max(1e-12, batch_passes(ens, er))
                lines.append(f"- {name} ({value:.4f}): {mz['name']} needed "
                             f"{fmt_int(batch_passes(mz, mr))} batch forward passes, {ens['name']} "
                             f"{fmt_int(batch_passes(ens, er))}: **{ratio:.2f}x** "
                             f"({'ensemble fewer' if ratio > 1 else 'MeZO fewer or equal'}; "
                             f"aim >= 2)")
    if lines:
        out.append("Ensemble versus MeZO (forward passes to the target, at the first validation "
                   "at or below it):")
        out.append("")
        out += lines
    else:
        out.append("Ensemble versus MeZO: no ensemble or no MeZO run with validation lines.")
    return "\n".join(out) + "\n"


def figures(runs, targets, unigram, folder, prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes = (("tokens", "training tokens", "tokens", False),
            ("wall", "wall seconds (kwm: incl. validation; PyTorch: training only)", "wall_s",
             False),
            ("forward", "forward passes over a batch", None, True))
    written = []
    for suffix, xlabel, key, logx in axes:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for e in runs:
            if not e["rows"]:
                continue
            xs = [batch_passes(e, r) if key is None else r.get(key, 0.0) for r in e["rows"]]
            ys = [r["val_nll"] for r in e["rows"]]
            if logx:
                pairs = [(x, y) for x, y in zip(xs, ys) if x > 0]
                xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            style = "-" if e["source"] == "kwm" else "--"
            ax.plot(xs, ys, style, marker="o", markersize=3, label=label(e))
        if unigram is not None:
            ax.axhline(unigram, color="grey", linewidth=0.8, linestyle=":", label="unigram")
        for name, value in targets:
            if name != "unigram":  # the unigram line is drawn above
                ax.axhline(value, color="black", linewidth=0.6, linestyle="-.",
                           label=f"target {name}")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation nll (nats/token)")
        finite = [r["val_nll"] for e in runs for r in e["rows"] if math.isfinite(r["val_nll"])]
        if finite:
            top = min(max(finite), (unigram or max(finite)) + 2.5)
            ax.set_ylim(min(finite) - 0.1, top + 0.1)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(folder, f"{prefix}_val_vs_{suffix}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="sample_efficiency.tar.gz or the folder it was unpacked into")
    ap.add_argument("--targets", nargs="+", default=["unigram", "start-0.05", "unigram-0.1"],
                    help="numbers, or unigram[-X] / start[-X]: relative to the unigram loss or "
                         "to the median step-0 validation loss of the runs")
    ap.add_argument("--figures", default="docs/figures", help="folder of the PNGs")
    ap.add_argument("--prefix", default="lm_gpu_10m_sample_efficiency")
    ap.add_argument("--table", help="also write the markdown tables to this file")
    args = ap.parse_args(argv)
    root = args.source
    if os.path.isfile(root):
        unpacked = tempfile.mkdtemp(prefix="kwm-sample-efficiency-")
        with tarfile.open(root) as tar:
            tar.extractall(unpacked)
        root = unpacked
    runs = load_runs(root)
    unigram, start = unigram_of(runs), start_of(runs)
    targets = [(t, parse_target(t, unigram, start)) for t in args.targets]
    text = tables(runs, targets, unigram)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    os.makedirs(args.figures, exist_ok=True)
    for path in figures(runs, targets, unigram, args.figures, args.prefix):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
