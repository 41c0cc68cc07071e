#!/usr/bin/env python3
"""Per-kernel device time of one profiled program, from Nsight Compute's CSV.

ncu --csv --metrics gpu__time_duration.sum runs each kernel alone (serialised), so the sums are
kernel time without overlap or launch gaps: where the time goes, not the step's wall time.
usage: kernel_table.py ncu.csv STEPS   (STEPS: how many steps the profiled launches cover)
"""
import csv
import sys
from collections import defaultdict


def main() -> None:
    path, steps = sys.argv[1], int(sys.argv[2])
    total = defaultdict(float)
    launches = defaultdict(int)
    with open(path, newline="") as f:
        rows = [line for line in f if line.startswith('"')]  # ncu prints its own lines first
    for row in csv.DictReader(rows):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "ns")
        scale = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0,
                 "msecond": 1.0}.get(unit, 1e-6)
        name = row["Kernel Name"][:90]
        total[name] += value * scale
        launches[name] += 1
    grand = sum(total.values())
    print(f"| kernel | launches per step | ms per step | share |")
    print("|---|---|---|---|")
    for name, ms in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"| `{name}` | {launches[name] / steps:.1f} | {ms / steps:.3f} | "
              f"{100 * ms / grand:.1f}% |")
    print(f"| all kernels | {sum(launches.values()) / steps:.1f} | {grand / steps:.3f} | 100% |")


if __name__ == "__main__":
    main()
