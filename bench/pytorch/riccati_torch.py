"""The straightforward PyTorch version of the dense-block Riccati step (ALGORITHMS.md section 2),
timed with CUDA events at the sizes of bench/gpu/riccati_gpu_bench.cu, for comparison:

    U = P H^T;  S = H U + R;  L = cholesky(S);  K = U S^-1 (cholesky_solve);  P -= K U^T

usage: python3 riccati_torch.py [--json torch.json] [--kwm kwm.json --md compare.md] [--quick]
With --kwm, also writes the side-by-side table (KWM fused CUDA backend vs PyTorch).
"""
import argparse
import json
import math
import os

import torch


def median_ms(body, prepare=lambda: None, warmup=3, reps=20):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for i in range(warmup + reps):
        prepare()
        start.record()
        body()
        stop.record()
        stop.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def covariance(n, gen):
    e = (torch.rand(n, n, device="cuda", generator=gen) * 2 - 1) * (0.5 / math.sqrt(n))
    return 0.5 * (e + e.T) + torch.eye(n, device="cuda")


def dense_step(n, m, reps, gen):
    p0 = covariance(n, gen)
    p = torch.empty_like(p0)
    h = (torch.rand(m, n, device="cuda", generator=gen) * 2 - 1) / math.sqrt(n)
    r = torch.eye(m, device="cuda")
    state = {}

    def step():
        u = p @ h.T
        s = h @ u + r
        chol = torch.linalg.cholesky(s)
        k = torch.cholesky_solve(u.T, chol).T
        p.sub_(k @ u.T)
        state["k"], state["u"] = k, u

    step_ms = median_ms(step, lambda: p.copy_(p0), reps=reps)
    down_ms = median_ms(lambda: p.sub_(state["k"] @ state["u"].T), lambda: p.copy_(p0), reps=reps)
    return step_ms, down_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--kwm", default="")
    ap.add_argument("--md", default="")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False  # plain fp32, as the CUDA backend
    gen = torch.Generator(device="cuda").manual_seed(0)
    dev = torch.cuda.get_device_name()
    print(f"torch {torch.__version__}, {dev}, allow_tf32={torch.backends.cuda.matmul.allow_tf32}")

    x = torch.rand(1 << 28, device="cuda", generator=gen)
    y = torch.empty_like(x)
    copy_ms = median_ms(lambda: y.copy_(x))
    copy_gbs = 2 * x.numel() * 4 / (copy_ms * 1e-3) / 1e9
    del x, y
    a = torch.rand(8192, 8192, device="cuda", generator=gen)
    b = torch.rand(8192, 8192, device="cuda", generator=gen)
    mm_ms = median_ms(lambda: a @ b, reps=10)
    sgemm = 2 * 8192**3 / (mm_ms * 1e-3) / 1e9
    del a, b
    print(f"torch ceilings: copy {copy_gbs:.0f} GB/s, fp32 matmul {sgemm:.0f} GFLOP/s")

    reps = 5 if args.quick else 20
    ns = [1024, 8192] if args.quick else [1024, 2048, 4096, 8192]
    ms = [1, 64] if args.quick else [1, 4, 16, 64, 256]
    rows = []
    for n in ns:
        for m in ms:
            step_ms, down_ms = dense_step(n, m, reps, gen)
            rows.append({"n": n, "m": m, "step_ms": step_ms, "downdate_ms": down_ms})
            print(f"n={n:5d} m={m:4d}  step {step_ms:8.4f} ms  downdate {down_ms:8.4f} ms")
    out = {"device": dev, "torch": torch.__version__, "copy_gbs": copy_gbs,
           "sgemm_gflops": sgemm, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)

    if args.kwm and os.path.exists(args.kwm):
        with open(args.kwm) as f:
            kwm = json.load(f)
        by = {(r["kernel"], r["n"], r["m"]): r["ms"] for r in kwm["rows"] if r["bench"] == "dense_step"}
        lines = ["| n | m | KWM step ms | torch step ms | step speed-up | KWM downdate ms | "
                 "torch downdate ms | downdate speed-up |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            ks = by.get(("whole step", r["n"], r["m"]))
            kd = by.get(("downdate (backend automatic)", r["n"], r["m"]))
            if ks is None or kd is None:
                continue
            lines.append(f"| {r['n']} | {r['m']} | {ks:.4f} | {r['step_ms']:.4f} | "
                         f"{r['step_ms'] / ks:.2f}x | {kd:.4f} | {r['downdate_ms']:.4f} | "
                         f"{r['downdate_ms'] / kd:.2f}x |")
        table = "\n".join(lines) + "\n"
        print(table)
        if args.md:
            with open(args.md, "w") as f:
                f.write(table)


if __name__ == "__main__":
    main()
