#!/usr/bin/python3
"""Turn kwm_cpu_bench --benchmark_format=json output into the markdown table of docs/performance.md.

Each kernel's FLOP/s is divided by the GEMM ceiling of its precision and its bytes/s by the DRAM
memcpy ceiling, both measured in the same run. The larger of the two ratios is the fraction of
the roofline min(peak FLOP/s, intensity x bandwidth) the kernel reaches, and names what bounds it.
Times and rates are over CPU time (see main.cpp). Usage:

    summarise.py run.json [--native native_ceiling.json] > table.md
    summarise.py after.json --before before.json > comparison.md

With --before, the output is instead a before/after table of the benchmarks both runs hold: CPU
times, the speed-up, and each run's fraction of its nearer roof (each against its own ceilings).
"""
import argparse
import json
import re
import sys

UNIT_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
DRAM_COPY = "ceiling_memcpy/bytes/MiB:1024"


def load_runs(path):
    with open(path) as handle:
        report = json.load(handle)
    runs = {}
    medians = {}
    for run in report["benchmarks"]:
        name = re.sub(r"/min_time:[0-9.]+", "", run.get("run_name", run["name"]))
        if run.get("error_occurred"):
            runs[name] = dict(run, error=run.get("error_message", "error"))
        elif run.get("run_type") == "aggregate":
            if run.get("aggregate_name") == "median":
                medians[name] = run
        else:
            runs.setdefault(name, run)  # first repetition unless a median exists
    runs.update(medians)
    return report.get("context", {}), runs


def milliseconds(run):
    return run["cpu_time"] * UNIT_TO_MS[run.get("time_unit", "ns")]


def fmt_time(ms):
    if ms >= 1000.0:
        return f"{ms / 1000.0:.2f} s"
    if ms >= 1.0:
        return f"{ms:.1f} ms"
    return f"{ms * 1000.0:.1f} us"


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def ceilings(runs):
    gemm = {}
    for precision in ("fp64", "fp32"):
        for name, run in runs.items():
            if name.startswith(f"ceiling_gemm/{precision}/") and "FLOP/s" in run:
                gemm[precision] = run["FLOP/s"]
    copy = runs.get(DRAM_COPY, {}).get("bytes_per_second")
    return gemm, copy


def ceiling_rows(label, runs):
    rows = []
    for name, run in runs.items():
        if not name.startswith("ceiling_"):
            continue
        gflops = run.get("FLOP/s", 0.0) / 1e9 or None
        gbytes = run.get("bytes_per_second", 0.0) / 1e9 or None
        rows.append(f"| {label} | {name} | {fmt_time(milliseconds(run))} | {fmt(gbytes)} | "
                    f"{fmt(gflops)} |")
    return rows


def roof_fraction(run, precision, gemm, copy):
    """The larger of FLOP/s / GEMM and bytes/s / memcpy, and which roof that is."""
    flop_ratio = run.get("FLOP/s", 0.0) / gemm[precision] if precision in gemm else None
    byte_ratio = run.get("bytes_per_second", 0.0) / copy if copy else None
    if flop_ratio is None or byte_ratio is None:
        return None, "-"
    if flop_ratio >= byte_ratio:
        return flop_ratio, "compute"
    return byte_ratio, "memory"


def comparison(before_path, after_path):
    _, before = load_runs(before_path)
    after_context, after = load_runs(after_path)
    before_gemm, before_copy = ceilings(before)
    after_gemm, after_copy = ceilings(after)
    out = [f"- after: date {after_context.get('date', '?')}, load average at start "
           f"{after_context.get('load_average_at_start', '?')}", ""]
    out.append("| ceiling | before | after |")
    out.append("|---|---:|---:|")
    for name, run in after.items():
        if name.startswith("ceiling_") and name in before:
            unit = "GFLOP/s" if "FLOP/s" in run else "GB/s"
            key = "FLOP/s" if "FLOP/s" in run else "bytes_per_second"
            out.append(f"| {name} | {before[name].get(key, 0.0) / 1e9:.1f} {unit} | "
                       f"{run.get(key, 0.0) / 1e9:.1f} {unit} |")
    out.append("")
    out.append("| kernel | precision | shape | before | after | speed-up | before: of roof | "
               "after: of roof | bound |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    for name, run in after.items():
        if name.startswith("ceiling_") or name not in before:
            continue
        if "error" in run or "error" in before[name]:
            out.append(f"| {name} | | | error | | | | | |")
            continue
        kernel, precision, shape = (name.split("/", 2) + ["", ""])[:3]
        t_before, t_after = milliseconds(before[name]), milliseconds(run)
        f_before, _ = roof_fraction(before[name], precision, before_gemm, before_copy)
        f_after, bound = roof_fraction(run, precision, after_gemm, after_copy)
        out.append(f"| {kernel} | {precision} | {shape.replace('/', ', ')} | "
                   f"{fmt_time(t_before)} | {fmt_time(t_after)} | {t_before / t_after:.2f}x | "
                   f"{fmt(f_before, 2)} | {fmt(f_after, 2)} | {bound} |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="kwm_cpu_bench JSON output")
    parser.add_argument("--native", help="kwm_cpu_ceiling_native JSON output (optional)")
    parser.add_argument("--before", help="an earlier run's JSON: print a before/after table")
    args = parser.parse_args()
    if args.before:
        print("\n".join(comparison(args.before, args.run)))
        return

    context, runs = load_runs(args.run)
    gemm, copy = ceilings(runs)
    if not gemm or copy is None:
        print("summarise.py: no ceiling_gemm or " + DRAM_COPY + " in this run, so some ratios "
              "are '-'; include 'ceiling' in --benchmark_filter", file=sys.stderr)

    out = []
    out.append(f"- date: {context.get('date', '?')}, host: {context.get('host_name', '?')}, "
               f"{context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz")
    out.append(f"- build: {context.get('kwm_build', '?')}, Eigen {context.get('eigen_version', '?')}"
               f" with {context.get('eigen_simd', '?')}, Eigen threads: "
               f"{context.get('eigen_threads', '?')}")
    out.append(f"- load average at start: {context.get('load_average_at_start', '?')}")
    out.append("")
    out.append("| build | ceiling | time | GB/s | GFLOP/s |")
    out.append("|---|---|---:|---:|---:|")
    out.extend(ceiling_rows("kernels' flags", runs))
    if args.native:
        native_context, native_runs = load_runs(args.native)
        out.extend(ceiling_rows(f"-march=native ({native_context.get('eigen_simd', '?')})",
                                native_runs))
    out.append("")
    out.append("| kernel | precision | shape | time | GB/s | GFLOP/s | FLOP/s / GEMM | "
               "B/s / memcpy | bound |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    for name, run in runs.items():
        if name.startswith("ceiling_"):
            continue
        kernel, precision, shape = (name.split("/", 2) + ["", ""])[:3]
        if "error" in run:
            out.append(f"| {kernel} | {precision} | {shape} | error: {run['error']} | | | | | |")
            continue
        flops = run.get("FLOP/s", 0.0)
        bytes_rate = run.get("bytes_per_second", 0.0)
        flop_ratio = flops / gemm[precision] if precision in gemm else None
        byte_ratio = bytes_rate / copy if copy else None
        if flop_ratio is None or byte_ratio is None:
            bound = "-"
        else:  # the larger ratio is the nearer roof: intensity above or below machine balance
            bound = "compute" if flop_ratio >= byte_ratio else "memory"
        out.append(f"| {kernel} | {precision} | {shape.replace('/', ', ')} | "
                   f"{fmt_time(milliseconds(run))} | {bytes_rate / 1e9:.1f} | {flops / 1e9:.1f} | "
                   f"{fmt(flop_ratio, 2)} | {fmt(byte_ratio, 2)} | {bound} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
