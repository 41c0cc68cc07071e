"""PyTorch DDP counterpart of kwm's data-parallel GPU training (issue 7, weak scaling): the GPT of
torch_gpt_step.py (configs/lm_gpu_10m.yaml's shape, imported from there), one process per GPU,
DistributedDataParallel over NCCL, the same per-GPU batch on every rank, and the fast recipe of
torch_gpt_step.py: forward + backward + fused AdamW step under bf16 autocast, torch.compile.

Each rank times --reps steps with CUDA events after --warmup untimed ones (the first of which
compiles); the step time is the slowest rank's median, and tokens/s = ranks * batch * context /
that time. Also reported: each rank's torch.cuda.max_memory_allocated (the caching allocator's
peak, not the CUDA context or allocator slack) and the gradient all-reduce payload per step
(parameters x 4 bytes: DDP sums the fp32 gradients).

Launch with torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous), or let the script
spawn the processes itself (torch.multiprocessing) with --ranks:
  torchrun --standalone --nproc_per_node 2 bench/lm_cuda/torch_ddp_step.py --batch 32
  python3 bench/lm_cuda/torch_ddp_step.py --ranks 2 --batch 32
--device cpu (gloo, fp32, eager, plain AdamW) with --tiny checks the script on a machine without a
GPU; its timings mean nothing.
Prints one line "RESULT torch-ddp {json}" from rank 0.
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt_step import GPT  # noqa: E402  (the model of the single-GPU benchmark)

if not hasattr(F, "scaled_dot_product_attention"):
    # torch < 2.0 (no fused attention; only where the CPU check runs): the plain causal softmax.
    def _causal_attention(q, k, v, is_causal=True):
        t = q.shape[-2]
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        return scores.masked_fill(mask, float("-inf")).softmax(-1) @ v

    F.scaled_dot_product_attention = _causal_attention

FULL = dict(vocab=4096, ctx=256, d=256, layers=12, heads=4, mlp=1024)
TINY = dict(vocab=64, ctx=16, d=16, layers=1, heads=2, mlp=32)


def step_times(step, warmup, reps, cuda):
    for _ in range(warmup):
        step()
    times = []
    if cuda:
        torch.cuda.synchronize()
        for _ in range(reps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    return times


def worker(rank, ranks, local_rank, args):
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=ranks)
    dev = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    shape = TINY if args.tiny else FULL
    torch.manual_seed(1)  # the same start on every rank (DDP broadcasts rank 0's anyway)
    model = GPT(**shape).to(dev)
    parameters = sum(p.numel() for p in model.parameters())
    ddp = DDP(model, device_ids=[local_rank] if cuda else None)
    compiled = torch.compile(ddp) if cuda and hasattr(torch, "compile") else ddp
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    generator = torch.Generator(device=dev).manual_seed(100 + rank)  # each rank its own data
    idx = torch.randint(0, shape["vocab"], (args.batch, shape["ctx"]), device=dev,
                        generator=generator)
    tgt = torch.randint(0, shape["vocab"], (args.batch, shape["ctx"]), device=dev,
                        generator=generator)

    def step():
        opt.zero_grad(set_to_none=True)
        if cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = compiled(idx, tgt)
        else:
            loss = compiled(idx, tgt)
        loss.backward()
        opt.step()

    t0 = time.time()
    step()  # compiles on the GPU
    if cuda:
        torch.cuda.synchronize()
    first_s = time.time() - t0
    times = step_times(step, args.warmup, args.reps, cuda)
    median = statistics.median(times)
    gathered = torch.tensor([median, min(times), max(times), first_s,
                             torch.cuda.max_memory_allocated(dev) if cuda else 0.0],
                            dtype=torch.float64, device=dev)
    table = [torch.zeros_like(gathered) for _ in range(ranks)]
    dist.all_gather(table, gathered)
    if rank == 0:
        rows = [t.tolist() for t in table]
        slowest = max(r[0] for r in rows)
        tokens = ranks * args.batch * shape["ctx"]
        result = {
            "ranks": ranks, "batch_per_rank": args.batch, "context": shape["ctx"],
            "tokens_per_step": tokens, "parameters": parameters,
            "recipe": "adamw-bf16-compiled-ddp" if cuda else "adamw-fp32-eager-ddp-gloo",
            "median_ms_by_rank": [1e3 * r[0] for r in rows],
            "min_ms_by_rank": [1e3 * r[1] for r in rows],
            "max_ms_by_rank": [1e3 * r[2] for r in rows],
            "step_ms": 1e3 * slowest, "tokens_per_s": tokens / slowest,
            "first_step_s": max(r[3] for r in rows),
            "max_memory_allocated_mib_by_rank": [r[4] / 2**20 for r in rows],
            "allreduce_payload_bytes_per_rank": 4 * parameters,
            "reps": args.reps, "warmup": args.warmup, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        }
        print(f"{ranks} rank(s) x batch {args.batch} x {shape['ctx']}: {1e3 * slowest:.3f} ms a "
              f"step (slowest rank's median), {tokens / slowest:.0f} tokens/s", flush=True)
        print("RESULT torch-ddp " + json.dumps(result), flush=True)
    dist.destroy_process_group()


def spawned(local_rank, ranks, args):
    worker(local_rank, ranks, local_rank, args)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32, help="sequences per rank")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--ranks", type=int, default=1, help="processes to spawn without torchrun")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a tiny model (the CPU check)")
    args = ap.parse_args()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
               int(os.environ.get("LOCAL_RANK", "0")), args)
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    mp.spawn(spawned, args=(args.ranks, args), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
