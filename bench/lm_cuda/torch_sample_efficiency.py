"""Sample-efficiency baselines for issue 7: AdamW and MeZO in PyTorch on exactly the token streams
`kwm train` uses (exported by `kwm tokens --config CONFIG --out DIR`), scored exactly as kwm scores
validation, so their curves can be put beside kwm's metrics.jsonl.

Model: the GPT of bench/lm_cuda/torch_gpt_step.py (imported, not copied): pre-LN, tanh GELU,
untied head with bias, dims from DIR/tokens.json (the config kwm resolved) unless given here. Its
parameters are then initialised as kwm's GptParameters::init does (N(0, init_std) for matrices,
attn_out and proj weights scaled by 1/sqrt(2 n_layers), biases zero, layer-norm gains one), and,
with head_bias_init unigram (the config's train.head_bias_init unless --head-bias-init), the head
bias starts at the centred log add-one unigram of the training tokens (lm::unigram_log_prior).

Batches: kwm's text::TokenLoader reproduced: random sampling draws window starts
counter_random(seed, k) % (N - T) with SplitMix64's finaliser (k counts the draws), sequential
sampling takes windows k*T in order and drops the remainder of an epoch. When DIR holds
loader_batches.int32 (the first batches kwm train draws) and the batch, length, seed and sampling
are the config's, the first batches are checked against it before training.

Validation: launch/lm/lm_evaluation.cpp's score_tokens: T = min(length, n-1) windows, available =
(n-1) // T, windows = clamp(ceil(eval_tokens / T), 1, available) (all when eval_tokens is 0),
window k starts at (k * available // windows) * T; inputs tokens[s:s+T], targets tokens[s+1:s+T+1];
the mean NLL over every scored token. Scored in fp32 (TF32 off) or fp64 (--eval-dtype).

Optimizers (one forward pass per step for adamw plus its backward; two for mezo, no backward):
  adamw  torch.optim.AdamW (fused on CUDA), betas (0.9, 0.95), weight decay on matrices only,
         gradient clipping, bf16 autocast (or fp32), optional torch.compile; learning rate: linear
         warmup over --warmup-steps, then cosine to --min-lr-ratio * lr at the last step of the
         budget, or constant (--schedule).
  mezo   MeZO (Malladi et al. 2023): per step one direction z ~ N(0, I) over the trained
         parameters, regenerated from the step's seed (never stored); L+ = L(theta + eps z),
         L- = L(theta - eps z) on the same batch, g = (L+ - L-) / (2 eps), theta <- theta - lr g z
         (after restoring theta). Forward in fp32 or bf16 autocast (--precision), no backward.
         --mezo-params all (MeZO's choice) or head (ln_f and the head, as kwm's `head` subspace).

Output (--out FILE.jsonl): a start line (settings), then at step 0 and every --eval-every steps:
step, tokens, forward_passes, backward_passes, wall_s (training only: the clock runs between
evaluations, synchronised with the device, torch.compile's warm-up excluded and reported as
compile_s), train_nll (mean loss of the steps since the last line, before each update), val_nll,
val_bpb; and an end line.

usage:
  python3 torch_sample_efficiency.py --tokens-dir DIR --optimizer adamw --out adamw.jsonl
      [--batch 32] [--token-budget 3000000] [--eval-every 30] [--eval-tokens 2048] [--lr 1e-3]
      [--compile] [--seed 1] [--max-seconds 120]
  python3 torch_sample_efficiency.py --tokens-dir DIR --score-h5 RUN/model.h5 --eval-dtype fp64
      (scores a kwm model.h5 on the validation windows: the check of the scoring and the model)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _causal_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """F.scaled_dot_product_attention for torch < 2.0 (CPU checks only): softmax(QK^T/sqrt(hd))V."""
    if attn_mask is not None or dropout_p != 0.0:
        raise NotImplementedError("only the causal, mask-free form is needed here")
    s = (q @ k.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(q.size(-1)))
    if is_causal:
        t = q.size(-2)
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


if not hasattr(F, "scaled_dot_product_attention"):
    F.scaled_dot_product_attention = _causal_attention

from torch_gpt_step import GPT  # noqa: E402  (after the attention shim: the model uses it)

# ---------------------------------------------------------------- the exported tokens


def load_tokens(tokens_dir):
    with open(os.path.join(tokens_dir, "tokens.json")) as f:
        meta = json.load(f)
    if meta.get("format") != "kwm-tokens":
        sys.exit(f"{tokens_dir}/tokens.json: not written by kwm tokens")
    splits = {}
    for name, info in meta["splits"].items():
        path = os.path.join(tokens_dir, info["file"])
        data = np.fromfile(path, dtype="<i4")
        if data.size != info["tokens"]:
            sys.exit(f"{path}: {data.size} tokens, tokens.json says {info['tokens']}")
        splits[name] = data
    return meta, splits


# ---------------------------------------------------------------- kwm's TokenLoader

MASK64 = (1 << 64) - 1


def _mix64(z):  # SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class TokenLoader:
    """core/text/token_loader.cpp on one rank: window starts of each global batch."""

    def __init__(self, n_tokens, batch, length, sampling, seed):
        self.n, self.batch, self.length, self.sampling = n_tokens, batch, length, sampling
        self.windows = (n_tokens - 1) // length if n_tokens > 0 else 0
        if self.windows < batch:
            sys.exit(f"{n_tokens} training tokens make {self.windows} windows of {length}+1 "
                     f"tokens, fewer than the batch of {batch}")
        self.position = self.epoch = self.draws = 0
        with np.errstate(over="ignore"):
            self.seed_mix = _mix64(np.array([seed & MASK64], dtype=np.uint64))[0]

    def next_starts(self):
        if self.position + self.batch > self.windows:
            self.epoch += 1
            self.position = 0
        rows = np.arange(self.batch, dtype=np.uint64)
        if self.sampling == "sequential":
            starts = (self.position + rows.astype(np.int64)) * self.length
        else:
            k = np.uint64(self.draws) + rows
            with np.errstate(over="ignore"):
                r = _mix64(self.seed_mix + (k + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
            starts = (r % np.uint64(self.n - self.length)).astype(np.int64)
            self.draws += self.batch
        self.position += self.batch
        return starts


def check_loader(meta, splits, tokens_dir, args):
    """The first batches against loader_batches.int32 (what kwm train's loader drew)."""
    info, train = meta.get("loader_batches"), meta["train"]
    if not info or info["batches"] == 0:
        return "no loader_batches.int32 to check against"
    same = (args.batch == train["batch"] and args.length == train["length"]
            and args.seed == train["seed"] and args.sampling == train["sampling"])
    if not same:
        return "not checked: batch, length, seed or sampling differ from the config's"
    drawn = np.fromfile(os.path.join(tokens_dir, info["file"]), dtype="<i4")
    drawn = drawn.reshape(info["batches"], info["batch"], info["length"])
    loader = TokenLoader(len(splits["train"]), args.batch, args.length, args.sampling, args.seed)
    offsets = np.arange(args.length)
    for b in range(info["batches"]):
        ours = splits["train"][loader.next_starts()[:, None] + offsets]
        if not np.array_equal(ours, drawn[b]):
            sys.exit(f"batch {b + 1}: this sampler's windows differ from kwm train's "
                     f"({tokens_dir}/{info['file']})")
    return f"the first {info['batches']} batches equal kwm train's"


# ---------------------------------------------------------------- kwm's held-out scoring


def score_windows(n, length, max_tokens):
    """Window starts of launch/lm/lm_evaluation.cpp score_windows (one rank)."""
    if n < 2:
        sys.exit("a held-out split needs at least 2 tokens")
    t = min(length, n - 1)
    available = (n - 1) // t
    windows = available
    if max_tokens > 0:
        windows = min(max(-(-max_tokens // t), 1), available)
    return t, [(k * available // windows) * t for k in range(windows)]


def summed_nll(model, inputs, targets):
    """Summed next-token NLL in the model's own dtype. Composes the GPT's modules as its forward
    does, without the forward's cast of the logits to fp32 (which would round an fp64 score)."""
    x = model.tok(inputs) + model.pos(torch.arange(inputs.shape[1], device=inputs.device))
    for block in model.blocks:
        x = block(x)
    logits = model.head(model.ln_f(x))
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                           reduction="sum")


@torch.no_grad()
def score(model, tokens, length, max_tokens, device, windows_per_batch=64):
    """Mean NLL (nats per token) over score_tokens' windows in the model's own dtype; the
    per-batch sums are accumulated in float64."""
    t, starts = score_windows(len(tokens), length, max_tokens)
    stream = torch.as_tensor(tokens, dtype=torch.long, device=device)
    offsets = torch.arange(t + 1, device=device)
    total, count = 0.0, 0
    for at in range(0, len(starts), windows_per_batch):
        s = torch.as_tensor(starts[at:at + windows_per_batch], device=device)
        w = stream[s[:, None] + offsets]
        total += float(summed_nll(model, w[:, :-1], w[:, 1:]))
        count += w[:, 1:].numel()
    return total / count, count


# ---------------------------------------------------------------- the model as kwm builds it


def kwm_init(model, layers, init_std, seed):
    """GptParameters::init's rules (not its random stream): N(0, init_std) matrices, residual
    projections (attn_out, proj) scaled by 1/sqrt(2 layers), biases zero, layer-norm gains one."""
    gen = torch.Generator().manual_seed(seed)
    residual = 1.0 / math.sqrt(2.0 * layers)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                scale = residual if name.endswith(("attn_out.weight", "proj.weight")) else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * (init_std * scale))


def kwm_tensor_names(layers):
    """(kwm flatten() name, torch parameter name) in flatten() order (untied head with bias):
    the names agree except a layer norm's gain, which nn.LayerNorm calls weight."""
    norm = lambda name: [(name + ".gain", name + ".weight"), (name + ".bias", name + ".bias")]
    linear = lambda name: [(name + ".weight", name + ".weight"), (name + ".bias", name + ".bias")]
    names = [("token_embedding", "tok.weight"), ("position_embedding", "pos.weight")]
    for i in range(layers):
        b = f"blocks.{i}."
        names += norm(b + "ln1") + linear(b + "qkv") + linear(b + "attn_out")
        names += norm(b + "ln2") + linear(b + "fc") + linear(b + "proj")
    return names + norm("ln_f") + linear("head")


def load_kwm_h5(model, path, layers):
    """theta of a kwm model.h5 (flatten() order, Eigen column-major tensors) into the model."""
    import h5py
    with h5py.File(path, "r") as f:
        theta = np.asarray(f["theta"][...], dtype=np.float64).reshape(-1)
    params = dict(model.named_parameters())
    at = 0
    with torch.no_grad():
        for _, tname in kwm_tensor_names(layers):
            p = params[tname]
            size = p.numel()
            seg = theta[at:at + size]
            if p.dim() == 2:  # rows x cols stored column-major
                seg = seg.reshape(p.shape[1], p.shape[0]).T
            p.copy_(torch.as_tensor(np.ascontiguousarray(seg), dtype=p.dtype).reshape(p.shape))
            at += size
    if at != theta.size:
        sys.exit(f"{path}: theta has {theta.size} values, this model {at}")


def unigram_log_prior(train, vocab):
    """lm::unigram_log_prior: centred log add-one unigram of the training tokens."""
    counts = np.bincount(train, minlength=vocab).astype(np.float64)
    log_p = np.log((counts + 1.0) / (len(train) + vocab))
    return log_p - log_p.mean()


# ---------------------------------------------------------------- training


def learning_rate(args, step, total_steps):
    """Rate of update `step` (1, 2, ...): linear warmup, then constant or cosine to the floor."""
    if args.warmup_steps > 0 and step <= args.warmup_steps:
        return args.lr * step / args.warmup_steps
    if args.schedule == "constant":
        return args.lr
    span = max(1, total_steps - args.warmup_steps)
    progress = min(1.0, (step - args.warmup_steps) / span)
    floor = args.lr * args.min_lr_ratio
    return floor + 0.5 * (args.lr - floor) * (1.0 + math.cos(math.pi * progress))


def mezo_parameters(model, which):
    if which == "all":
        return [p for _, p in model.named_parameters()]
    return [p for n, p in model.named_parameters() if n.startswith(("ln_f.", "head."))]


def mezo_perturb(params, seed, scale, device):
    """theta += scale * z with z ~ N(0, I) regenerated from `seed` (MeZO's memory trick)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    for p in params:
        z = torch.randn(p.shape, generator=gen, device=device, dtype=p.dtype)
        p.data.add_(z, alpha=scale)


def mezo_step_seed(seed, step):
    return (seed * 1_000_003 + step) & ((1 << 63) - 1)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens-dir", required=True, help="directory written by kwm tokens")
    ap.add_argument("--optimizer", choices=["adamw", "mezo"], default="adamw")
    ap.add_argument("--out", help="JSONL file of the curve (required unless --score-h5)")
    ap.add_argument("--context-from-config", action=argparse.BooleanOptionalAction, default=True,
                    help="model dims from tokens.json (the config kwm resolved; default) or "
                         "from --vocab/--context/--d-model/--layers/--heads/--mlp")
    for flag in ("vocab", "context", "d-model", "layers", "heads", "mlp"):
        ap.add_argument("--" + flag, type=int)
    ap.add_argument("--batch", type=int, help="sequences per step (default: train.batch)")
    ap.add_argument("--length", type=int, help="tokens per sequence (default: train.length)")
    ap.add_argument("--token-budget", type=int, help="training tokens (default: train.tokens)")
    ap.add_argument("--eval-every", type=int,
                    help="steps between validations (default: train.eval_every; 0: about 20)")
    ap.add_argument("--eval-tokens", type=int,
                    help="validation tokens (default: train.eval_tokens)")
    ap.add_argument("--eval-dtype", choices=["fp32", "fp64"], default="fp32")
    ap.add_argument("--seed", type=int,
                    help="init, batch order, MeZO directions (default: train.seed)")
    ap.add_argument("--sampling", choices=["random", "sequential"], help="default: train.sampling")
    ap.add_argument("--head-bias-init", choices=["zero", "unigram"],
                    help="default: train.head_bias_init")
    ap.add_argument("--lr", type=float, help="peak learning rate (adamw 1e-3, mezo 1e-4)")
    ap.add_argument("--schedule", choices=["cosine", "constant"],
                    help="adamw default cosine, mezo constant")
    ap.add_argument("--warmup-steps", type=int, help="adamw default: 5%% of the steps; mezo 0")
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine floor / peak")
    ap.add_argument("--weight-decay", type=float, help="adamw default 0.1 (matrices); mezo 0")
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--grad-clip", type=float, default=1.0, help="adamw; 0: none")
    ap.add_argument("--precision", choices=["bf16", "fp32"],
                    help="training forward: adamw default bf16 autocast, mezo fp32")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    ap.add_argument("--mezo-eps", type=float, default=1e-3)
    ap.add_argument("--mezo-params", choices=["all", "head"], default="all")
    ap.add_argument("--max-seconds", type=float, default=0.0,
                    help="stop once the training clock passes this (0: no limit)")
    ap.add_argument("--device", help="cuda when available, else cpu")
    ap.add_argument("--score-h5", help="score a kwm model.h5 on validation and exit")
    return ap.parse_args(argv)


def resolve(args, meta):
    """Fill every unset option from tokens.json (the config kwm train would run)."""
    train, model = meta["train"], meta["model"]
    if args.context_from_config:
        dims = {"vocab": model["vocab_size"], "context": model["context"],
                "d_model": model["d_model"], "layers": model["n_layers"],
                "heads": model["n_heads"], "mlp": model["d_mlp"]}
        for key, value in dims.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        if model["tied_head"] or not model["head_bias"]:
            sys.exit("the config's GPT has a tied head or no head bias; torch_gpt_step.GPT is "
                     "untied with a head bias (set model.tied_head: false, head_bias: true)")
        args.init_std = model["init_std"]
        if model["layer_norm_eps"] != 1e-5:
            sys.exit("model.layer_norm_eps must be 1e-5 (nn.LayerNorm's default)")
    else:
        missing = [k for k in ("vocab", "context", "d_model", "layers", "heads", "mlp")
                   if getattr(args, k) is None]
        if missing:
            sys.exit("--no-context-from-config needs --"
                     + ", --".join(m.replace("_", "-") for m in missing))
        args.init_std = 0.02
    if args.vocab < meta["tokenizer"]["vocab_size"]:
        sys.exit(f"--vocab {args.vocab} is below the tokenizer's {meta['tokenizer']['vocab_size']}")
    for key in ("batch", "length", "seed", "sampling", "head_bias_init", "eval_tokens"):
        if getattr(args, key) is None:
            setattr(args, key, train[key])
    if args.token_budget is None:
        args.token_budget = train["tokens"]
    if args.length > args.context:
        sys.exit(f"--length {args.length} exceeds the context {args.context}")
    args.total_steps = max(1, args.token_budget // (args.batch * args.length))
    if args.eval_every is None:
        args.eval_every = train["eval_every"]
    if args.eval_every <= 0:  # kwm train: about 20 evaluations per run
        args.eval_every = max(1, args.total_steps // 20)
    adamw = args.optimizer == "adamw"
    defaults = {"lr": 1e-3 if adamw else 1e-4, "schedule": "cosine" if adamw else "constant",
                "warmup_steps": max(1, args.total_steps // 20) if adamw else 0,
                "weight_decay": 0.1 if adamw else 0.0, "precision": "bf16" if adamw else "fp32"}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"


def build_model(args, meta, splits):
    torch.manual_seed(args.seed)
    model = GPT(vocab=args.vocab, ctx=args.context, d=args.d_model, layers=args.layers,
                heads=args.heads, mlp=args.mlp)
    kwm_init(model, args.layers, args.init_std, args.seed)
    if args.head_bias_init == "unigram":
        prior = unigram_log_prior(splits["train"], args.vocab)
        with torch.no_grad():
            model.head.bias.add_(torch.as_tensor(prior, dtype=model.head.bias.dtype))
    return model


def main(argv=None):
    args = parse_args(argv)
    meta, splits = load_tokens(args.tokens_dir)
    resolve(args, meta)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    val = splits["validation"]
    val_bpt = meta["splits"]["validation"]["bytes_per_token"]
    eval_dtype = torch.float64 if args.eval_dtype == "fp64" else torch.float32

    if args.score_h5:
        model = build_model(args, meta, splits).to(dtype=eval_dtype)  # fp64 before loading
        load_kwm_h5(model, args.score_h5, args.layers)
        model = model.to(device=dev).eval()
        nll, count = score(model, val, args.length, args.eval_tokens, dev)
        print(json.dumps({"h5": args.score_h5, "val_nll": nll,
                          "val_bpb": nll / math.log(2) / val_bpt,
                          "tokens": count, "eval_tokens": args.eval_tokens, "length": args.length,
                          "eval_dtype": args.eval_dtype}))
        return
    if not args.out:
        sys.exit("--out is required (the JSONL curve)")
    loader_check = check_loader(meta, splits, args.tokens_dir, args)

    model = build_model(args, meta, splits).to(dev)
    eval_model = model  # evaluated in fp32 (or fp64 on a copy) without autocast or compile
    if args.compile and not hasattr(torch, "compile"):
        sys.exit(f"--compile needs torch >= 2.0; this is {torch.__version__}")
    forward = torch.compile(model) if args.compile else model
    if args.precision == "bf16":
        autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = lambda: torch.autocast(dev.type, enabled=False)  # noqa: E731
    train_stream = torch.as_tensor(splits["train"], dtype=torch.long, device=dev)
    offsets = torch.arange(args.length + 1, device=dev)
    loader = TokenLoader(len(splits["train"]), args.batch, args.length, args.sampling, args.seed)

    def next_batch():
        w = train_stream[torch.as_tensor(loader.next_starts(), device=dev)[:, None] + offsets]
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    if args.optimizer == "adamw":
        decay = [p for p in model.parameters() if p.dim() >= 2]
        other = [p for p in model.parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": args.weight_decay},
                  {"params": other, "weight_decay": 0.0}]
        try:
            opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2), eps=1e-8,
                                    fused=dev.type == "cuda")
        except (TypeError, RuntimeError):
            opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2), eps=1e-8)
        trained = list(model.parameters())
    else:
        trained = mezo_parameters(model, args.mezo_params)
        for p in model.parameters():
            p.requires_grad_(False)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # torch.compile's warm-up: forward (+ backward for adamw) on the first batch without a step,
    # so the parameters and the batch order are untouched; its time is reported, not counted.
    compile_s = 0.0
    if args.compile:
        t0 = time.perf_counter()
        probe = TokenLoader(len(splits["train"]), args.batch, args.length, args.sampling, args.seed)
        w = train_stream[torch.as_tensor(probe.next_starts(), device=dev)[:, None] + offsets]
        w = (w[:, :-1].contiguous(), w[:, 1:].contiguous())
        for _ in range(2):
            if args.optimizer == "adamw":
                with autocast():
                    loss = forward(*w)
                loss.backward()
                model.zero_grad(set_to_none=True)
            else:
                with torch.no_grad(), autocast():
                    forward(*w)
        sync()
        compile_s = time.perf_counter() - t0

    def validate():
        if eval_dtype == torch.float64:
            copy = GPT(vocab=args.vocab, ctx=args.context, d=args.d_model, layers=args.layers,
                       heads=args.heads, mlp=args.mlp).to(dev, torch.float64)
            copy.load_state_dict(model.state_dict())
            return score(copy.eval(), val, args.length, args.eval_tokens, dev)[0]
        eval_model.eval()
        nll = score(eval_model, val, args.length, args.eval_tokens, dev)[0]
        eval_model.train()
        return nll

    out = open(args.out, "w")

    def log(line):
        out.write(json.dumps(line) + "\n")
        out.flush()

    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    log({"event": "start", "optimizer": args.optimizer, "settings": settings,
         "parameters": sum(p.numel() for p in model.parameters()),
         "trained_parameters": sum(p.numel() for p in trained), "torch": torch.__version__,
         "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
         "tokens_dir": os.path.abspath(args.tokens_dir), "tokenizer": meta["tokenizer"],
         "config": meta["config"], "config_fnv1a64": meta["config_fnv1a64"],
         "unigram_nll": meta["unigram_validation_nll"], "loader_check": loader_check,
         "compile_s": compile_s})
    v0 = validate()
    log({"step": 0, "tokens": 0, "forward_passes": 0, "backward_passes": 0, "wall_s": 0.0,
         "val_nll": v0, "val_bpb": v0 / math.log(2) / val_bpt,
         "unigram_nll": meta["unigram_validation_nll"]})
    print(f"{args.optimizer}: {args.total_steps} steps of {args.batch} x {args.length}, "
          f"validation {v0:.4f} at step 0 (unigram {meta['unigram_validation_nll']:.4f}); "
          f"{loader_check}", flush=True)

    wall = 0.0
    tokens = forward_passes = backward_passes = 0
    losses = []  # device scalars of the window, read at the evaluation (no per-step sync)
    step = 0
    sync()
    started = time.perf_counter()
    while step < args.total_steps:
        x, y = next_batch()
        step += 1
        lr = learning_rate(args, step, args.total_steps)
        if args.optimizer == "adamw":
            for group in opt.param_groups:
                group["lr"] = lr
            with autocast():
                loss = forward(x, y)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trained, args.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            forward_passes += 1
            backward_passes += 1
        else:
            seed = mezo_step_seed(args.seed, step)
            eps = args.mezo_eps
            with torch.no_grad():
                mezo_perturb(trained, seed, eps, dev)
                with autocast():
                    plus = forward(x, y).float()
                mezo_perturb(trained, seed, -2.0 * eps, dev)
                with autocast():
                    minus = forward(x, y).float()
                mezo_perturb(trained, seed, eps, dev)  # back to theta
                g = (plus - minus) / (2.0 * eps)
                if args.weight_decay > 0:
                    for p in trained:
                        p.mul_(1.0 - lr * args.weight_decay)
                # theta <- theta - lr g z: the same z once more, scaled by the device scalar g.
                gen = torch.Generator(device=dev)
                gen.manual_seed(seed)
                for p in trained:
                    z = torch.randn(p.shape, generator=gen, device=dev, dtype=p.dtype)
                    p.add_(z * (-lr * g))
            losses.append(0.5 * (plus + minus))
            forward_passes += 2
        tokens += x.numel()
        last = step == args.total_steps
        elapsed = wall + time.perf_counter() - started
        out_of_time = args.max_seconds > 0 and elapsed > args.max_seconds
        if step % args.eval_every == 0 or last or out_of_time:
            sync()
            wall += time.perf_counter() - started
            window = torch.stack(losses).double()
            window_loss, window_tokens = float(window.sum()) * x.numel(), len(losses) * x.numel()
            losses = []
            v = validate()
            if not math.isfinite(v):
                log({"event": "diverged", "step": step, "val_nll": v})
            log({"step": step, "tokens": tokens, "forward_passes": forward_passes,
                 "backward_passes": backward_passes, "wall_s": wall,
                 "train_nll": window_loss / window_tokens, "val_nll": v,
                 "val_bpb": v / math.log(2) / val_bpt, "lr": lr})
            print(f"step {step}/{args.total_steps}: {tokens} tokens, {wall:.2f} s, "
                  f"train {window_loss / window_tokens:.4f}, validation {v:.4f}", flush=True)
            if out_of_time or not math.isfinite(v):
                break
            sync()
            started = time.perf_counter()
    log({"event": "end", "steps": step, "tokens": tokens, "wall_s": wall,
         "tokens_per_s": tokens / wall if wall > 0 else None,
         "stopped": "max_seconds" if step < args.total_steps else "budget"})
    out.close()


if __name__ == "__main__":
    main()
