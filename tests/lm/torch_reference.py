#!/usr/bin/python3
"""The KWM GPT in PyTorch (fp64): reads the weights and batch the C++ test wrote, writes back the
logits, the summed next-token loss, d loss / d parameter for every tensor and d loss / d z for
every linear layer's output z (the tied head included). Used by tests/lm/torch_equivalence_test.

    torch_reference.py DIR     # DIR holds manifest.json and params/<name>.f64

Binary files are raw little-endian float64 in column-major order of the C++ shape (rows x cols),
which is row-major order of the transposed shape: a d x N activation is the (B*T, d) tensor.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F


def read_f64(path, rows, cols):
    with open(path, "rb") as f:
        data = f.read()
    values = struct.unpack("<%dd" % (rows * cols), data)
    # column-major rows x cols == row-major cols x rows
    t = torch.tensor(values, dtype=torch.float64).reshape(cols, rows).T.contiguous()
    return t.reshape(rows) if cols == 1 else t


def write_f64(path, tensor):
    """Writes tensor, seen as the C++ rows x cols matrix, column-major (= row-major of tensor.T)."""
    t = tensor.detach()
    if t.dim() == 2:
        t = t.T
    values = t.contiguous().reshape(-1).tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%dd" % len(values), *values))


def forward(p, cfg, tokens, z):
    """Pre-LN GPT-2 forward; records each linear layer's output in z (with retain_grad)."""
    B, T = tokens.shape
    d, H, eps = cfg["d_model"], cfg["n_heads"], cfg["layer_norm_eps"]
    hd = d // H

    def linear(name, a, weight, bias):
        out = F.linear(a, weight, bias)
        out.retain_grad()
        z[name] = out
        return out

    x = p["token_embedding"][tokens] + p["position_embedding"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layers"]):
        b = "blocks.%d." % i
        h = F.layer_norm(x, (d,), p[b + "ln1.gain"], p[b + "ln1.bias"], eps)
        qkv = linear(b + "qkv", h, p[b + "qkv.weight"], p[b + "qkv.bias"])
        q, k, v = qkv.split(d, dim=2)
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        context = (att @ v).transpose(1, 2).contiguous().view(B, T, d)
        x = x + linear(b + "attn_out", context, p[b + "attn_out.weight"], p[b + "attn_out.bias"])
        h2 = F.layer_norm(x, (d,), p[b + "ln2.gain"], p[b + "ln2.bias"], eps)
        f = linear(b + "fc", h2, p[b + "fc.weight"], p[b + "fc.bias"])
        x = x + linear(b + "proj", F.gelu(f, approximate="tanh"), p[b + "proj.weight"],
                       p[b + "proj.bias"])
    hf = F.layer_norm(x, (d,), p["ln_f.gain"], p["ln_f.bias"], eps)
    head_weight = p["token_embedding"] if cfg["tied_head"] else p["head.weight"]
    return linear("head", hf, head_weight, p.get("head.bias"))


def main(directory):
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    cfg = manifest["config"]
    p = {}
    for t in manifest["tensors"]:
        p[t["name"]] = read_f64(os.path.join(directory, "params", t["name"] + ".f64"),
                                t["rows"], t["cols"]).requires_grad_(True)
    B, T = manifest["batch"], manifest["length"]
    tokens = torch.tensor(manifest["inputs"], dtype=torch.long).view(B, T)
    targets = torch.tensor(manifest["targets"], dtype=torch.long).view(B * T)

    z = {}
    logits = forward(p, cfg, tokens, z)
    loss = F.cross_entropy(logits.view(B * T, -1), targets, reduction="sum")
    loss.backward()

    out = os.path.join(directory, "torch")
    os.makedirs(os.path.join(out, "grad"), exist_ok=True)
    os.makedirs(os.path.join(out, "zgrad"), exist_ok=True)
    write_f64(os.path.join(out, "logits.f64"), logits.view(B * T, -1).T)
    write_f64(os.path.join(out, "loss.f64"), loss.view(1))
    for name, tensor in p.items():
        write_f64(os.path.join(out, "grad", name + ".f64"), tensor.grad)
    for name in manifest["linear_sites"]:
        write_f64(os.path.join(out, "zgrad", name + ".f64"), z[name].grad.view(B * T, -1).T)
    print("torch_reference: loss %.12f over %d tokens (torch %s)" % (loss.item(), B * T,
                                                                     torch.__version__))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torch_reference.py DIR")
    main(sys.argv[1])
