"""A tiny GPT's training step on a CUDA device with descentlab's AdamW against torch's fused
AdamW: the loop a Hugging Face ``Trainer`` runs (forward under bfloat16 autocast, the loss,
``backward``, ``optimizer.step()``, ``zero_grad(set_to_none=True)``).

Two copies of the same model (same initialization, same batches) train side by side, one per
optimizer; the arms are timed round-robin, one step each in turn (the order alternating), with
CUDA events around the whole step and around ``optimizer.step()`` alone; medians over
``--repeat`` steps after ``--warmup``. Also printed: the kernels one optimizer step launches
(torch profiler) and the largest difference of the two arms' losses (the same training to
float rounding: a check that both trained the same model).

    python benchmarks/gpu_gpt.py                       # 6 layers, d 512, ~25M parameters
    python benchmarks/gpu_gpt.py --layers 12 --width 768 --json gpt.jsonl

Without a CUDA device it stops with one line before any work; ``--device cpu`` runs it end to
end on the CPU (a check of the script: the CPU's kernels, not a GPU measurement).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from gpu_step import launches as _profiled
from torch import nn

from descentlab import optim

#: where the model trains (the tests run this module on the CPU with tiny sizes)
DEVICE = torch.device("cuda")


class Block(nn.Module):
    """A pre-norm transformer block: causal self-attention and a 4x MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    """GPT-2's shape at a small size: token and position embeddings, blocks, a final norm,
    the output layer tied to the token embedding."""

    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T


def _timer():
    if DEVICE.type == "cuda":
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e
    return time.perf_counter()


def _ms(a, b) -> float:
    if DEVICE.type == "cuda":
        b.synchronize()
        return a.elapsed_time(b)
    return 1e3 * (b - a)


def _launches(fn) -> int:
    """Kernels one call of ``fn`` launches (the step benchmark's count)."""
    return _profiled(fn)[0] if DEVICE.type == "cuda" else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train both arms side by side; returns the medians and checks (see the module notes)."""
    torch.manual_seed(0)
    model = TinyGPT(args.vocab, args.context, args.width, args.layers, args.heads).to(DEVICE)
    n_params = sum(p.numel() for p in model.parameters())
    models = {"descentlab AdamW": model, "torch AdamW fused": copy.deepcopy(model)}
    kw = dict(lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    opts = {
        "descentlab AdamW": optim.AdamW(models["descentlab AdamW"].parameters(), **kw),
        "torch AdamW fused": torch.optim.AdamW(
            models["torch AdamW fused"].parameters(), **kw, fused=True
        ),
    }
    g = torch.Generator(device=DEVICE).manual_seed(1)
    data = torch.randint(
        0, args.vocab, (8, args.batch, args.context + 1), device=DEVICE, generator=g
    )
    losses: dict[str, list[float]] = {k: [] for k in models}
    step_ms: dict[str, list[float]] = {k: [] for k in models}
    opt_ms: dict[str, list[float]] = {k: [] for k in models}

    def step(arm: str, i: int) -> tuple[float, float, torch.Tensor]:
        m, opt = models[arm], opts[arm]
        batch = data[i % len(data)]
        t0 = _timer()
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            logits = m(batch[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        loss.backward()
        t1 = _timer()
        opt.step()
        t2 = _timer()
        opt.zero_grad(set_to_none=True)
        t3 = _timer()
        return _ms(t0, t3), _ms(t1, t2), loss.detach()

    arms = list(models)
    for i in range(args.warmup + args.repeat):
        order = arms if i % 2 == 0 else arms[::-1]
        for arm in order:
            total, in_opt, loss = step(arm, i)
            losses[arm].append(float(loss))
            if i >= args.warmup:
                step_ms[arm].append(total)
                opt_ms[arm].append(in_opt)
    launches = {}
    for arm in arms:  # one more step each, its optimizer step under the profiler
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            logits = models[arm](data[0][:, :-1])
        F.cross_entropy(logits.float().flatten(0, 1), data[0][:, 1:].flatten()).backward()
        launches[arm] = _launches(opts[arm].step)
        opts[arm].zero_grad(set_to_none=True)
    med = {arm: statistics.median(v) for arm, v in step_ms.items()}
    med_opt = {arm: statistics.median(v) for arm, v in opt_ms.items()}
    dl, ref = arms
    return {
        "benchmark": "tiny-gpt",
        "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else str(DEVICE),
        "params": n_params,
        "shape": dict(
            layers=args.layers,
            width=args.width,
            heads=args.heads,
            context=args.context,
            batch=args.batch,
            vocab=args.vocab,
        ),
        "step_ms": med,
        "optimizer_step_ms": med_opt,
        "tokens_per_s": {arm: args.batch * args.context / (ms / 1e3) for arm, ms in med.items()},
        "step_ratio": med[dl] / med[ref],
        "optimizer_ratio": med_opt[dl] / med_opt[ref],
        "launches": launches,
        "max_loss_difference": max(
            abs(a - b) for a, b in zip(losses[dl], losses[ref], strict=True)
        ),
        "samples": args.repeat,
    }


def report(r: dict[str, Any]) -> str:
    dl, ref = list(r["step_ms"])
    return (
        f"tiny GPT, {r['params'] / 1e6:.1f}M parameters ({r['shape']}), {r['device']}, "
        f"median of {r['samples']} steps\n"
        f"  training step: {dl} {r['step_ms'][dl]:.2f} ms, {ref} {r['step_ms'][ref]:.2f} ms, "
        f"ratio {r['step_ratio']:.2f}x; tokens/s {r['tokens_per_s'][dl]:,.0f} and "
        f"{r['tokens_per_s'][ref]:,.0f}\n"
        f"  optimizer step: {dl} {r['optimizer_step_ms'][dl]:.3f} ms ({r['launches'][dl]} "
        f"kernels), {ref} {r['optimizer_step_ms'][ref]:.3f} ms ({r['launches'][ref]} kernels), "
        f"ratio {r['optimizer_ratio']:.2f}x\n"
        f"  largest loss difference between the arms: {r['max_loss_difference']:.2e}"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--json", metavar="PATH", help="append the result as one JSON line")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_gpt.py: no CUDA device here (torch.cuda.is_available() is False)")
    r = run(args)
    print(report(r), flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
