"""PyTorch counterpart of lm_cuda_train_bench: the same GPT (configs/lm_gpu_10m.yaml: vocab 4096,
context 256, d 256, 12 layers, 4 heads, MLP 1024 with tanh GELU, pre-LN, untied head with bias,
GPT-2 init) and batch on one GPU, in tokens per second.

Variants, each timed with CUDA events after warm-up (median of --reps):
  adamw-bf16-compiled   forward + backward + fused AdamW step under bf16 autocast, torch.compile
                        (the fast PyTorch recipe the KWM step is raced against)
  fwdbwd-bf16-compiled  the same without the optimizer step
  adamw-bf16-cudagraphs with --cudagraphs 1 only: adamw-bf16-compiled with
                        torch.compile(mode="reduce-overhead"), which replays the compiled forward
                        and backward as CUDA graphs (a stronger reference than the issue's recipe:
                        it takes the host's launch cost out of PyTorch's step)
  fwdbwd-fp32-eager     forward + backward in plain fp32 (TF32 off), eager: the same arithmetic
                        precision as the KWM fp32 pass
  mezo-fp32-eager       one MeZO step on every parameter (torch_sample_efficiency.py's: in-place
                        perturbations +eps, -2 eps, +eps from a seeded generator, two fp32
                        forward passes, the update along z; eps 1e-3, rate 1e-4), the
                        counterpart of lm_cuda_mezo_bench
Attention is F.scaled_dot_product_attention(is_causal=True) (flash/efficient kernels).
usage: python3 torch_gpt_step.py --batch 32 64 [--reps 20] [--cudagraphs 1]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, mlp)
        self.proj = nn.Linear(mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_out(y.transpose(1, 2).reshape(b, t, d))
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab=4096, ctx=256, d=256, layers=12, heads=4, mlp=1024):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads, mlp) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=True)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif "ln" not in name:
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times), min(times), max(times)


def run(batch, reps, cudagraphs=False):
    torch.manual_seed(1)
    dev = "cuda"
    ctx = 256
    idx = torch.randint(0, 4096, (batch, ctx), device=dev)
    tgt = torch.randint(0, 4096, (batch, ctx), device=dev)
    tokens = batch * ctx
    results = {"batch": batch, "tokens": tokens, "torch": torch.__version__,
               "device": torch.cuda.get_device_name(0)}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    model = GPT().to(dev)
    results["parameters"] = sum(p.numel() for p in model.parameters())
    compiled = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = compiled(idx, tgt)
        loss.backward()
        opt.step()

    def fwdbwd_bf16():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = compiled(idx, tgt)
        loss.backward()

    def fwdbwd_fp32():
        model.zero_grad(set_to_none=True)
        loss = model(idx, tgt)
        loss.backward()

    from torch_sample_efficiency import mezo_perturb  # same folder; imported here, not at the top
    mezo_params = list(model.parameters())
    mezo_steps = [0]

    @torch.no_grad()
    def mezo_step():
        mezo_steps[0] += 1
        seed, eps = mezo_steps[0], 1e-3
        mezo_perturb(mezo_params, seed, eps, dev)
        plus = model(idx, tgt)
        mezo_perturb(mezo_params, seed, -2.0 * eps, dev)
        minus = model(idx, tgt)
        mezo_perturb(mezo_params, seed, eps, dev)
        g = ((plus - minus) / (2.0 * eps)).item()
        mezo_perturb(mezo_params, seed, -1e-4 * g, dev)

    graphed = torch.compile(model, mode="reduce-overhead") if cudagraphs else None

    def train_step_graphs():
        torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = graphed(idx, tgt)
        loss.backward()
        opt.step()

    t0 = time.time()
    train_step()
    torch.cuda.synchronize()
    results["compile_s"] = time.time() - t0
    variants = [("adamw-bf16-compiled", train_step), ("fwdbwd-bf16-compiled", fwdbwd_bf16),
                ("fwdbwd-fp32-eager", fwdbwd_fp32), ("mezo-fp32-eager", mezo_step)]
    if cudagraphs:
        variants.insert(1, ("adamw-bf16-cudagraphs", train_step_graphs))
    for name, fn in variants:
        med, lo, hi = timed(fn, 3, reps)
        results[name] = {"ms": 1e3 * med, "min_ms": 1e3 * lo, "max_ms": 1e3 * hi,
                         "tokens_per_s": tokens / med}
        print(f"batch {batch}: {name}: {1e3 * med:.3f} ms (min {1e3 * lo:.3f}, max {1e3 * hi:.3f}),"
              f" {tokens / med:.0f} tokens/s", flush=True)
    print("RESULT torch " + json.dumps(results), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[32])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cudagraphs", type=int, default=0)
    args = ap.parse_args()
    for batch in args.batch:
        run(batch, args.reps, args.cudagraphs != 0)


if __name__ == "__main__":
    main()
