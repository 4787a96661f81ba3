"""The generated code of every registered optimizer, as the golden file of
tests/test_generated_sources.py: the fused C kernels' sources (float32 and float64), the
Triton kernels' sources (float32) and the eager backend's aten op sequence of a steady step,
at the default options and at every torch-parity configuration of the registry (the options
the tests use).

    python scripts/generated_sources.py           # compare with the stored file
    python scripts/generated_sources.py --write   # regenerate it (review its diff)

The file holds, per optimizer and configuration, one SHA-256 per source (what the test
compares: a changed line names the kernel) and, under ``"sources"``, each text once (keyed by
its hash; the paragraphs the kernels share stored once), so ``git diff`` shows the changed
generated lines. The C sources are those without software prefetch (chosen per CPU:
:func:`descentlab.optim.fused.software_prefetch`) and with fused multiply-adds (chosen by
torch's CPU capability: :func:`descentlab.optim.c_emitter.torch_fuses_multiply_add`), so the
file is the same on every machine.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from descentlab import optim
from descentlab.optim import gpu
from descentlab.optim.hyper import NOT_HYPER
from descentlab.optim.triton_emitter import Unsupported

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "generated_sources.json"
SIZES = (5, 600, 3, 1100)
C_DTYPES = (torch.float32, torch.float64)


#: the low-bit state formats (descentlab.optim.lowbit) an optimizer's kernels are generated
#: with too, where it takes them
STATE_DTYPES = ("int8", "bfloat16")


def configs() -> list[tuple[str, str, dict[str, Any]]]:
    """(optimizer, configuration id, keyword arguments): the defaults, the registry's
    torch-parity configurations, then each low-bit state format the optimizer takes."""
    out = []
    for record in optim.records():
        out.append((record.name, "default", {}))
        out += [(record.name, c.id, dict(c.kwargs)) for c in record.parity]
        for fmt in STATE_DTYPES:
            if _takes_state(record.name, fmt):
                out.append((record.name, f"state-{fmt}", {"state_dtype": fmt}))
    return out


def _takes_state(name: str, fmt: str) -> bool:
    if "state_dtype" not in inspect.signature(optim.get(name)).parameters:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _make(name, {"state_dtype": fmt})
    except ValueError:  # the optimizer's rules make their state themselves: refused
        return False
    return True


def _lowbit(opt: Any) -> bool:
    """The optimizer keeps low-bit state (its kernels take float32 parameters only)."""
    return any(getattr(r, "state_format", None) is not None for r in opt.rule.rules)


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    ps = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in SIZES[:-1]]
    ps.append(torch.nn.Parameter(torch.randn(20, 55, generator=g)))  # a matrix (Muon, Shampoo)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g)
    return ps


def _make(name: str, kwargs: dict[str, Any], **extra: Any) -> Any:
    cls = optim.get(name)
    accepted = inspect.signature(cls).parameters
    return cls(_params(), **kwargs, **{k: v for k, v in extra.items() if k in accepted})


def _hyper(opt: Any) -> dict[str, Any]:
    return {k: v for k, v in opt.param_groups[0].items() if k not in NOT_HYPER}


def c_sources(opt: Any) -> dict[str, str]:
    """The fused C kernel's source per dtype (none where the chain has no fused form)."""
    builder = opt._fused.builder(opt, _hyper(opt))
    if builder is None:
        return {}
    dtypes = C_DTYPES[:1] if _lowbit(opt) else C_DTYPES
    return {
        str(dt).removeprefix("torch."): builder.source(dt, prefetch=False, fused_multiply_add=True)
        for dt in dtypes
    }


def triton_sources(opt: Any) -> dict[str, str]:
    """The Triton kernels' sources (the chain's kernel, and a blockwise format's kernel of its
    small tensors) for float32 parameters; none where the chain has no Triton program."""
    try:
        texts = gpu.kernel_sources(opt, _hyper(opt), torch.float32)
    except Unsupported:
        return {}
    return {f"float32.{k}": s for k, s in enumerate(texts)}


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def eager_ops(name: str, kwargs: dict[str, Any]) -> str:
    """The aten ops of the eager backend's third step (a steady one), one a line."""
    opt = _make(name, kwargs, fused=False)
    closure = _closure(opt) if name == "sam" else None
    with torch.no_grad():
        for _ in range(2):
            opt.step(closure)
    mode = _Ops()
    with torch.no_grad(), mode:
        opt.step(closure)
    return "\n".join(mode.ops) + "\n"


def _closure(opt: Any) -> Callable[[], torch.Tensor]:
    params = opt.param_groups[0]["params"]

    def closure() -> torch.Tensor:
        with torch.enable_grad():
            loss = sum((p * p).sum() for p in params)
            for p in params:
                p.grad = None
            loss.backward()
        return loss

    return closure


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate() -> dict[str, Any]:
    """Every optimizer's and configuration's sources: ``{"hashes": {opt: {config: {kind:
    hash}}}, "sources": {hash: text}}``."""
    hashes: dict[str, dict[str, dict[str, str]]] = {}
    sources: dict[str, str] = {}
    for name, cid, kwargs in configs():
        with warnings.catch_warnings():  # the chains without a fused form say so
            warnings.simplefilter("ignore", RuntimeWarning)
            opt = _make(name, kwargs)
        texts = {f"c.{k}": s for k, s in c_sources(opt).items()}
        texts |= {f"triton.{k}": s for k, s in triton_sources(opt).items()}
        texts["eager"] = eager_ops(name, kwargs)
        entry = hashes.setdefault(name, {}).setdefault(cid, {})
        for kind, text in texts.items():
            h = _digest(text)
            entry[kind] = h
            sources[h] = text
    return {"hashes": hashes, "sources": dict(sorted(sources.items()))}


def dump(data: dict[str, Any]) -> str:
    """The golden file's text: the hashes; each source as the list of its paragraphs (split at
    blank lines), each paragraph stored once as a list of its lines (the kernels share their
    preludes), so a changed generated line is one changed line of the diff."""
    blocks: dict[str, list[str]] = {}
    sources = {}
    for h, text in data["sources"].items():
        keys = []
        for block in text.split("\n\n"):
            k = _digest(block)
            blocks[k] = block.split("\n")
            keys.append(k)
        sources[h] = keys
    out = {"hashes": data["hashes"], "sources": sources, "blocks": blocks}
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


def load(path: Path = GOLDEN) -> dict[str, Any]:
    raw = json.loads(path.read_text())
    blocks = {k: "\n".join(lines) for k, lines in raw["blocks"].items()}
    return {
        "hashes": raw["hashes"],
        "sources": {h: "\n\n".join(blocks[k] for k in keys) for h, keys in raw["sources"].items()},
    }


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per source that differs, is new or is gone."""
    out = []
    names = sorted(set(old["hashes"]) | set(new["hashes"]))
    for name in names:
        a, b = old["hashes"].get(name, {}), new["hashes"].get(name, {})
        for cid in sorted(set(a) | set(b)):
            x, y = a.get(cid, {}), b.get(cid, {})
            for kind in sorted(set(x) | set(y)):
                if x.get(kind) != y.get(kind):
                    out.append(f"{name} [{cid}] {kind}: {x.get(kind)} -> {y.get(kind)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the golden file")
    args = parser.parse_args(argv)
    new = generate()
    if args.write:
        GOLDEN.write_text(dump(new))
        print(f"wrote {GOLDEN} ({len(new['sources'])} sources)")
        return 0
    diff = differences(load(), new)
    print("\n".join(diff) if diff else "generated sources unchanged")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
