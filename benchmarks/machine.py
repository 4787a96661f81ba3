"""The machine a benchmark ran on, in one line, printed beside its numbers: the CPU's model
name, its family and model numbers (they name the generation where the name does not: a
virtual machine's "AMD EPYC" is Zen 3 at family 25 model 1, Zen 4 at model 17), the widest
vector extension it has, and its cores."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu() -> str:
    """``"AMD EPYC (family 25 model 17, AVX-512), 2 cores (x86_64)"``; on a system without
    ``/proc/cpuinfo``, what :mod:`platform` says."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or "unknown CPU"
    flags = set(info.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    about = [f"family {info['cpu family']} model {info['model']}"] if "cpu family" in info else []
    about += [vector] if vector else []
    detail = f" ({', '.join(about)})" if about else ""
    return f"{name}{detail}, {os.cpu_count()} cores ({platform.machine()})"


if __name__ == "__main__":
    print(cpu())
