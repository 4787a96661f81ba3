"""Training step time in fp32 and under bf16 autocast on this CPU: what ``--precision auto``
decides from (descentlab.engine.precision).

For each model (ResNet-20 at batch 32 on 32x32 images, and two MLPs on 40 inputs), times one
training step (forward and loss, under ``torch.autocast("cpu", torch.bfloat16)`` or not,
backward, SGD step) in fp32 and in bf16, the two arms in turn, ``--repeat`` rounds of
``--steps`` steps each, and prints the medians, their ratio, the CPU's model name, whether it
has bf16 arithmetic (``cpu_bf16``) and what ``precision="auto"`` chooses for the model:

    python benchmarks/precision.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import machine  # (benchmarks/machine.py, beside this script)
import torch
from torch import nn

from descentlab.engine import precision
from descentlab.problems import models


def cases(which: list[str]) -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor, int]]:
    out = {}
    if "resnet20" in which:
        m = models.build("resnet20", input_shape=(1, 32, 32), n_outputs=10)
        out["resnet20, batch 32"] = (m, torch.randn(32, 1, 32, 32), torch.randint(0, 10, (32,)), 3)
    if "mlp" in which:
        for hidden, batch in (((128,), 64), ((512, 512), 128)):
            m = models.build("digits_mlp", input_shape=(40,), n_outputs=10, hidden=hidden)
            name = f"MLP 40-{'-'.join(map(str, hidden))}-10, batch {batch}"
            out[name] = (m, torch.randn(batch, 40), torch.randint(0, 10, (batch,)), 40)
    return out


def step(model: nn.Module, opt: torch.optim.Optimizer, x, y, bf16: bool) -> None:
    opt.zero_grad(set_to_none=True)
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
    else:
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=9, help="rounds (median over them)")
    ap.add_argument("--models", default="resnet20,mlp")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feature = precision.cpu_bf16()
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{machine.cpu()}; bf16 arithmetic: {feature or 'none'}; torch {torch.__version__}, "
          f"{args.threads} thread(s), capability {capability}")  # fmt: skip
    print(f"{'model':34} {'params':>9} {'fp32 ms':>9} {'bf16 ms':>9} {'bf16/fp32':>9}  auto")
    for name, (model, x, y, n) in cases(args.models.split(",")).items():
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        for bf in (False, True):  # warm-up
            step(model, opt, x, y, bf)
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.repeat):
            for bf in (False, True) if r % 2 == 0 else (True, False):
                start = time.perf_counter()
                for _ in range(n):
                    step(model, opt, x, y, bf)
                times[bf].append((time.perf_counter() - start) / n)
        f, b = statistics.median(times[False]), statistics.median(times[True])
        params = sum(p.numel() for p in model.parameters())
        auto = precision.choose("auto", "cpu", params)
        print(f"{name:34} {params:>9,} {f * 1e3:>9.2f} {b * 1e3:>9.2f} {b / f:>9.2f}  {auto}")


if __name__ == "__main__":
    main()
