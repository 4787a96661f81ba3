"""Which precision a run trains in: what the CPU can do decides ``precision="auto"``.

bf16 autocast is fast only where the CPU multiplies bfloat16 in hardware (:data:`BF16_FLAGS`);
elsewhere, and for small models on any CPU, a step is slower than in fp32. So ``"auto"``
chooses bf16 for a run trained alone on a CPU with bf16 arithmetic (:func:`cpu_bf16`) and a
model of at least :data:`AUTO_BF16_MIN_PARAMS` parameters, fp32 otherwise, and says once what
it chose. The measurements behind it: docs/data-and-models.md ("bf16 depends on the CPU").

Example:
    >>> choose("fp32", "cpu", 10**6)
    'fp32'
    >>> choose("auto", "cpu", 1_000)  # a small model: fp32 on any CPU
    'fp32'
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from descentlab._announce import once

__all__ = ["AUTO_BF16_MIN_PARAMS", "BF16_FLAGS", "announce", "choose", "cpu_bf16", "reason"]

#: ``precision="auto"`` chooses bf16 for models of at least this many parameters (on a CPU
#: with bf16 arithmetic).
AUTO_BF16_MIN_PARAMS: int = 100_000

#: /proc/cpuinfo flags that mean bfloat16 arithmetic in hardware (x86: ``flags``; Arm:
#: ``Features``).
BF16_FLAGS: tuple[str, ...] = ("amx_bf16", "avx512_bf16", "bf16")


@functools.cache
def cpu_bf16(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU feature that gives this machine bfloat16 arithmetic (``"amx_bf16"``,
    ``"avx512_bf16"`` or Arm's ``"bf16"``), or None where it has none or it cannot be told
    (no ``/proc/cpuinfo``: not Linux).

    Example:
        >>> cpu_bf16("/no/such/file") is None
        True
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
            break  # every core lists the same
    return next((f for f in BF16_FLAGS if f in flags), None)


def reason(precision: str, device: str | torch.device, n_params: int) -> str:
    """One line: what :func:`choose` picks for ``precision`` and why.

    Example:
        >>> reason("auto", "cpu", 1_000)[:52]
        "precision 'auto' chose fp32: the model's 1,000 param"
    """
    kind = torch.device(device).type
    chosen = choose(precision, device, n_params)
    if precision != "auto":
        if precision == "bf16" and kind == "cpu" and cpu_bf16() is None:
            return (
                "precision 'bf16' on a CPU without bf16 arithmetic (none of "
                f"{', '.join(BF16_FLAGS)} among its flags): autocast emulates it and a step "
                "is slower than in fp32 here (measured 1.47x on ResNet-20 on an Intel Ice Lake "
                "Xeon); precision 'auto' chooses fp32 on this CPU"
            )
        return f"precision {precision!r} as given"
    if kind != "cpu":
        return f"precision 'auto' chose fp32 on {kind} (bf16 is chosen only on a CPU)"
    if n_params < AUTO_BF16_MIN_PARAMS:
        return (
            f"precision 'auto' chose fp32: the model's {n_params:,} parameters are fewer than "
            f"{AUTO_BF16_MIN_PARAMS:,} (bf16 autocast's casts would cost more than they save)"
        )
    feature = cpu_bf16()
    if feature is None:
        return (
            "precision 'auto' chose fp32: this CPU has no bf16 arithmetic (none of "
            f"{', '.join(BF16_FLAGS)} among its flags), where bf16 autocast would be slower "
            "than fp32 (1.47x a ResNet-20 step on an Intel Ice Lake Xeon)"
        )
    return (
        f"precision 'auto' chose {chosen}: this CPU has bf16 arithmetic ({feature}) and the "
        f"model has {n_params:,} parameters (bf16 autocast: 0.58x fp32's ResNet-20 step on "
        "an AMD Zen 4)"
    )


def choose(precision: str, device: str | torch.device, n_params: int) -> str:
    """The precision a run trains in: ``precision`` itself unless it is ``"auto"``, which is
    ``"bf16"`` on a CPU with bf16 arithmetic (:func:`cpu_bf16`) for a model of at least
    :data:`AUTO_BF16_MIN_PARAMS` parameters and ``"fp32"`` otherwise."""
    if precision != "auto":
        return precision
    if torch.device(device).type != "cpu" or n_params < AUTO_BF16_MIN_PARAMS:
        return "fp32"
    return "bf16" if cpu_bf16() is not None else "fp32"


def announce(precision: str, device: str | torch.device, n_params: int) -> str:
    """:func:`choose`, saying once per process (a ``RuntimeWarning``) what ``"auto"`` chose
    for a model large enough to matter, or that an explicit ``"bf16"`` is slower on this
    CPU."""
    chosen = choose(precision, device, n_params)
    kind = torch.device(device).type
    worth = (precision == "auto" and kind == "cpu" and n_params >= AUTO_BF16_MIN_PARAMS) or (
        precision == "bf16" and kind == "cpu" and cpu_bf16() is None
    )
    if worth:  # one line per choice, not per model size
        line = reason(precision, device, n_params)
        once(("precision", precision, chosen), f"descentlab: {line}", stacklevel=3)
    return chosen
