"""PyTorch DDP reference for the weak-scaling aim of issue 4: a GPT-2-small-sized decoder
(12 layers, d 768, 12 heads, vocabulary 50257, context 1024; about 124M parameters) trained with
AdamW under bf16 autocast, one process per GPU over NCCL, a fixed per-GPU batch (weak scaling).

    torchrun --standalone --nproc_per_node=N bench/distributed/ddp_reference.py \
        [--batch 8] [--seq 1024] [--steps 30] [--warmup 10] [--json FILE]

Random tokens (timing only, not a training run). Each step is timed with torch.cuda.synchronize
and perf_counter around forward, backward (DDP's bucketed gradient all-reduce overlaps it) and
the optimizer step; the step's time is the slowest rank's (all-reduce MAX of the step times,
outside the timed region); the median over --steps after --warmup is reported by rank 0 as one
JSON line (also appended to --json). Weak-scaling efficiency = median(1 GPU) / median(N GPUs).
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab=50257, ctx=1024, d=768, layers=12, heads=12):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied, as GPT-2
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8, help="sequences per GPU")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    local = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local)
    dev = torch.device("cuda", local)
    dist.init_process_group("nccl", device_id=dev)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)

    model = GPT(ctx=args.seq, d=args.d, layers=args.layers, heads=args.heads).to(dev)
    params = sum(p.numel() for p in model.parameters())
    ddp = DDP(model, device_ids=[local])
    opt = torch.optim.AdamW(ddp.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    gen = torch.Generator(device=dev).manual_seed(1 + rank)

    def step():
        idx = torch.randint(0, 50257, (args.batch, args.seq + 1), device=dev, generator=gen)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = ddp(idx[:, :-1])
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]),
                                   idx[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    loss = None
    for _ in range(args.steps):
        dist.barrier()
        torch.cuda.synchronize()
        t = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    tt = torch.tensor(times, device=dev, dtype=torch.float64)
    dist.all_reduce(tt, op=dist.ReduceOp.MAX)
    times = tt.tolist()
    if rank == 0:
        med = statistics.median(times)
        tokens = args.batch * args.seq * world
        row = {
            "framework": "pytorch-ddp", "torch": torch.__version__, "gpus": world,
            "gpu": torch.cuda.get_device_name(dev), "params": params,
            "batch_per_gpu": args.batch, "seq": args.seq, "layers": args.layers, "d": args.d,
            "precision": "bf16 autocast, fp32 master weights, fused AdamW",
            "steps": args.steps, "warmup": args.warmup,
            "median_ms": 1e3 * med, "min_ms": 1e3 * min(times), "max_ms": 1e3 * max(times),
            "tokens_per_s": tokens / med,
            "grad_allreduce_bytes_per_step": 4 * params,  # fp32 gradients, DDP's default
            "final_loss": float(loss.item()), "loss_finite": math.isfinite(float(loss.item())),
        }
        line = json.dumps(row)
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
