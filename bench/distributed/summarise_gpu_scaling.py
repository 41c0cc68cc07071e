"""Markdown tables from kwm_dekf_scaling_gpu's JSON lines and ddp_reference.py's JSON lines.

    python3 bench/distributed/summarise_gpu_scaling.py kwm_scaling.jsonl ddp.jsonl

Efficiencies: strong = t(1 GPU) / (R t(R GPUs)) at the same total blocks; weak = t(1 GPU) /
t(R GPUs) at the same blocks per GPU; DDP weak = t(1 GPU) / t(R GPUs) at the same batch per GPU.
"""
import json
import sys


def load(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def key_of(r):
    """Rows compared with each other: same mode, n, m, blocks (per GPU when weak), gather."""
    per = r["blocks"] // r["ranks"]
    return (r["mode"], r["n"], r["m"], per if r["mode"] == "weak" else r["blocks"],
            r.get("gather", "v"))


def mib(x):
    return f"{x / 2**20:,.0f} MiB"


def main():
    kwm = load(sys.argv[1])
    ddp = load(sys.argv[2]) if len(sys.argv) > 2 else []
    print("## KWM sharded DEKF update (CUDA fp32, NCCL)\n")
    print("| mode | gather | n | m | GPUs | blocks | blocks/GPU | median ms | p10-p90 ms | comm ms | "
          "efficiency | all-reduce B | gathered B | covariance / GPU | device alloc / GPU | "
          "imbalance | checksum rel. diff to 1 GPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    # Each multi-GPU row against the latest 1-GPU row of the same configuration before it (the
    # script runs 1 GPU, then G GPUs), so a configuration that runs twice pairs within each run.
    base = {}
    weak_effs = []
    for r in kwm:
        per = r["blocks"] // r["ranks"]
        if r["ranks"] == 1:
            base[key_of(r)] = r
        b = base.get(key_of(r))
        eff, diff = "-", "-"
        if b is not None:
            if r["mode"] == "strong":
                e = b["median_ms"] / (r["ranks"] * r["median_ms"])
                if b["means_abs_sum"]:
                    diff = f"{abs(r['means_abs_sum'] - b['means_abs_sum']) / b['means_abs_sum']:.1e}"
            else:
                e = b["median_ms"] / r["median_ms"]
                if r["ranks"] > 1:
                    weak_effs.append(((r["n"], r["m"], per, r["ranks"], r.get("gather", "v")), e))
            eff = f"{e:.3f}"
        print(f"| {r['mode']} | {r.get('gather', 'v')} | {r['n']} | {r['m']} | {r['ranks']} | "
              f"{r['blocks']} | {per} | "
              f"{r['median_ms']:.3f} | {r['p10_ms']:.3f}-{r['p90_ms']:.3f} | "
              f"{r['comm_median_ms']:.3f} | {eff} | {r['allreduce_bytes_per_update']} | "
              f"{r['gather_bytes_per_update']:,} | {mib(r['max_covariance_bytes_per_gpu'])} | "
              f"{mib(r['max_device_bytes_allocated'])} | {r['imbalance']:.3f} | {diff} |")
    print()
    print("## PyTorch DDP reference (GPT-2 small, AdamW, bf16 autocast)\n")
    print("| GPUs | params | batch/GPU x seq | median ms | min-max ms | tokens/s | efficiency | "
          "grad all-reduce B / step | final loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    d1 = next((r for r in ddp if r["gpus"] == 1), None)
    ddp_eff = {}
    for r in ddp:
        e = "-"
        if d1 is not None:
            ev = d1["median_ms"] / r["median_ms"]
            e = f"{ev:.3f}"
            if r["gpus"] > 1:
                ddp_eff[r["gpus"]] = ev
        print(f"| {r['gpus']} | {r['params']:,} | {r['batch_per_gpu']} x {r['seq']} | "
              f"{r['median_ms']:.2f} | {r['min_ms']:.2f}-{r['max_ms']:.2f} | "
              f"{r['tokens_per_s']:,.0f} | {e} | {r['grad_allreduce_bytes_per_step']:,} | "
              f"{r['final_loss']:.3f} |")
    print()
    if weak_effs:
        print("## Weak-scaling efficiency: KWM / DDP\n")
        print("| n | m | blocks/GPU | GPUs | gather | KWM weak eff. | DDP weak eff. | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for (n, m, per, g, how), e in weak_effs:
            de = ddp_eff.get(g)
            ratio = f"{e / de:.3f}" if de else "-"
            des = f"{de:.3f}" if de else "-"
            print(f"| {n} | {m} | {per} | {g} | {how} | {e:.3f} | {des} | {ratio} |")
    split = [r for r in kwm if "reduce_median_ms" in r]
    if split:
        print("\n## Where the communication time goes (medians of the per-update maximum over "
              "ranks)\n")
        print("| mode | gather | n | m | GPUs | median ms | all-reduce ms | gather ms | "
              "arrival skew ms | probe all-reduce ms | probe gather ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in split:
            probe = r.get("probes", 0) > 0
            pa = f"{r['probe_allreduce_ms']:.3f}" if probe else "-"
            pg = f"{r['probe_gather_ms']:.3f}" if probe else "-"
            print(f"| {r['mode']} | {r['gather']} | {r['n']} | {r['m']} | {r['ranks']} | "
                  f"{r['median_ms']:.3f} | {r['reduce_median_ms']:.3f} | "
                  f"{r['gather_median_ms']:.3f} | {r['skew_median_ms']:.3f} | {pa} | {pg} |")


if __name__ == "__main__":
    main()
