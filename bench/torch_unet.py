#!/usr/bin/env python3
"""PyTorch reference timings for cinediff's DDPM U-Net (src/nn/unet.rs).

Run by hand, not in CI. It needs torch and numpy, kept outside the repository, e.g.:

    python3 -m venv /work/torchenv && /work/torchenv/bin/pip install torch numpy
    /work/torchenv/bin/python bench/torch_unet.py [--config unet.json] [--threads 2]
        [--repeats 20] [--warmup 3] [--params-only]

The network is built layer for layer as the Rust one (same convolutions, same single qkv 1x1
convolution in attention, same explicit softmax(QᵀK/√C)V), so the two do the same arithmetic.
All timings run on the CPU in float32. Output: one JSON object on stdout with the parameter count
and the median wall time in milliseconds of

  forward_b1_ms     forward pass, batch 1, under torch.no_grad()
  forward_b8_ms     forward pass, batch 8, under torch.no_grad()
  vjp_b1_ms         forward + gradient of sum(output * v) w.r.t. the input only (v fixed), batch 1
  train_step_b16_ms batch 16: noising at random timesteps, forward, MSE to the noise, backward,
                    AdamW step (zero_grad included)
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "in_channels": 2,
    "image_size": 64,
    "base_channels": 32,
    "channel_mults": [1, 2, 2],
    "blocks_per_level": 2,
    "attention_resolutions": [16],
    "dropout": 0.0,
    "groups": 8,
}

NUM_TIMESTEPS = 1000


def sinusoidal_embedding(timesteps, dim):
    """[sin(t·f_i), cos(t·f_i)] with f_i = exp(-ln(1e4)·i/(dim/2)), computed in float64 as in Rust."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * i / half)
    angles = timesteps.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(torch.float32)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5, affine=True)
        self.conv1 = conv3x3(cin, cout)
        self.time_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv3x3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, kernel_size=1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = x if self.skip is None else self.skip(x)
        return skip + h


class AttnBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5, affine=True)
        self.qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1)
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x):
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3 * c, h * w)
        q = qkv[:, :c].transpose(1, 2)  # [n, hw, c]
        k = qkv[:, c:2 * c]  # [n, c, hw]
        v = qkv[:, 2 * c:].transpose(1, 2)  # [n, hw, c]
        weights = torch.softmax(torch.bmm(q, k) * (1.0 / math.sqrt(c)), dim=2)
        out = torch.bmm(weights, v).transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj(out)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        base = cfg["base_channels"]
        temb = 4 * base
        groups = cfg["groups"]
        dropout = cfg["dropout"]
        attn_res = set(cfg["attention_resolutions"])
        mults = cfg["channel_mults"]
        bpl = cfg["blocks_per_level"]

        self.time_dim = base
        self.time_mlp1 = nn.Linear(base, temb)
        self.time_mlp2 = nn.Linear(temb, temb)
        self.conv_in = conv3x3(cfg["in_channels"], base)

        # Down path: each stage is (kind, modules); every stage pushes one skip.
        self.down = nn.ModuleList()
        self.down_kinds = []
        skip_channels = [base]
        ch = base
        res = cfg["image_size"]
        for i, m in enumerate(mults):
            cout = base * m
            for _ in range(bpl):
                block = ResBlock(ch, cout, temb, groups, dropout)
                attn = AttnBlock(cout, groups) if res in attn_res else None
                self.down.append(nn.ModuleList([block] + ([attn] if attn is not None else [])))
                self.down_kinds.append("block")
                ch = cout
                skip_channels.append(ch)
            if i + 1 < len(mults):
                self.down.append(conv3x3(ch, ch, stride=2))
                self.down_kinds.append("down")
                res //= 2
                skip_channels.append(ch)

        self.mid_block1 = ResBlock(ch, ch, temb, groups, dropout)
        self.mid_attn = AttnBlock(ch, groups)
        self.mid_block2 = ResBlock(ch, ch, temb, groups, dropout)

        self.up = nn.ModuleList()
        self.up_kinds = []
        for i in reversed(range(len(mults))):
            cout = base * mults[i]
            for _ in range(bpl + 1):
                skip = skip_channels.pop()
                block = ResBlock(ch + skip, cout, temb, groups, dropout)
                attn = AttnBlock(cout, groups) if res in attn_res else None
                self.up.append(nn.ModuleList([block] + ([attn] if attn is not None else [])))
                self.up_kinds.append("block")
                ch = cout
            if i > 0:
                self.up.append(Upsample(ch))
                self.up_kinds.append("up")
                res *= 2
        assert not skip_channels, "skip bookkeeping"

        self.norm_out = nn.GroupNorm(groups, ch, eps=1e-5, affine=True)
        self.conv_out = conv3x3(ch, cfg["in_channels"])

    def forward(self, x, timesteps):
        temb = sinusoidal_embedding(timesteps, self.time_dim).to(device=x.device, dtype=x.dtype)
        temb = self.time_mlp2(F.silu(self.time_mlp1(temb)))
        h = self.conv_in(x)
        skips = [h]
        for kind, stage in zip(self.down_kinds, self.down):
            if kind == "block":
                h = stage[0](h, temb)
                if len(stage) > 1:
                    h = stage[1](h)
            else:
                h = stage(h)
            skips.append(h)
        h = self.mid_block1(h, temb)
        h = self.mid_attn(h)
        h = self.mid_block2(h, temb)
        for kind, stage in zip(self.up_kinds, self.up):
            if kind == "block":
                h = stage[0](torch.cat([h, skips.pop()], dim=1), temb)
                if len(stage) > 1:
                    h = stage[1](h)
            else:
                h = stage(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def load_config(path):
    if path is None:
        return dict(DEFAULT_CONFIG)
    with open(path) as f:
        cfg = json.load(f)
    missing = [k for k in DEFAULT_CONFIG if k not in cfg]
    if missing:
        sys.exit(f"config {path}: missing keys {missing}")
    extra = [k for k in cfg if k not in DEFAULT_CONFIG]
    if extra:
        print(f"config {path}: ignoring unknown keys {extra}", file=sys.stderr)
    return {k: cfg[k] for k in DEFAULT_CONFIG}


def validate(cfg):
    levels = len(cfg["channel_mults"])
    if levels == 0:
        sys.exit("channel_mults must not be empty")
    if cfg["base_channels"] % 2 != 0:
        sys.exit("base_channels must be even")
    if cfg["image_size"] % (1 << (levels - 1)) != 0:
        sys.exit(f"image_size must be divisible by {1 << (levels - 1)}")
    for m in cfg["channel_mults"]:
        if (cfg["base_channels"] * m) % cfg["groups"] != 0:
            sys.exit("every level's channel count must be divisible by groups")
    if cfg["blocks_per_level"] < 1:
        sys.exit("blocks_per_level must be >= 1")


def median_ms(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="U-Net config JSON (the Rust UNetConfig); defaults built in")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs before each measurement (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params-only", action="store_true", help="print the parameter count and exit")
    args = ap.parse_args()
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("--repeats and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = load_config(args.config)
    validate(cfg)
    model = UNet(cfg)
    params = sum(p.numel() for p in model.parameters())
    result = {"config": cfg, "parameters": params}
    if args.params_only:
        print(json.dumps(result))
        return

    c, s = cfg["in_channels"], cfg["image_size"]
    gen = torch.Generator().manual_seed(args.seed + 1)

    # Forward passes, no grad, eval mode (dropout off).
    model.eval()
    x1 = torch.randn(1, c, s, s, generator=gen)
    t1 = torch.tensor([500])
    x8 = torch.randn(8, c, s, s, generator=gen)
    t8 = torch.randint(0, NUM_TIMESTEPS, (8,), generator=gen)

    def fwd1():
        with torch.no_grad():
            model(x1, t1)

    def fwd8():
        with torch.no_grad():
            model(x8, t8)

    result["forward_b1_ms"] = median_ms(fwd1, args.repeats, args.warmup)
    result["forward_b8_ms"] = median_ms(fwd8, args.repeats, args.warmup)

    # VJP: d/dx sum(model(x, t) * v) for a fixed v; only the input gradient is asked for.
    v1 = torch.randn(1, c, s, s, generator=gen)

    def vjp():
        x = x1.clone().requires_grad_(True)
        out = model(x, t1)
        (g,) = torch.autograd.grad((out * v1).sum(), x)
        return g

    result["vjp_b1_ms"] = median_ms(vjp, args.repeats, args.warmup)

    # Training step: DDPM noising (linear betas 1e-4..0.02) at random timesteps, ε-MSE, AdamW.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    betas = torch.linspace(1e-4, 0.02, NUM_TIMESTEPS, dtype=torch.float64)
    alpha_bar = torch.cumprod(1.0 - betas, dim=0).to(torch.float32)
    x0 = torch.randn(16, c, s, s, generator=gen).clamp_(-1.0, 1.0)

    def train_step():
        t = torch.randint(0, NUM_TIMESTEPS, (16,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        ab = alpha_bar[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(xt, t), noise)
        loss.backward()
        opt.step()
        return loss.item()

    result["train_step_b16_ms"] = median_ms(train_step, args.repeats, args.warmup)

    result.update({
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "torch": torch.__version__,
    })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
