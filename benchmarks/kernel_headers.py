"""The generated kernels' compile with their declared C library functions against the same
sources including <math.h>, <stdint.h>, <stdlib.h> and <string.h>: every stored C kernel
(tests/data/generated_sources.json) compiled both ways for each instruction set, its
disassembly compared, the compiler's CPU seconds summed (both ways interleaved, source by
source).

    PYTHONPATH=src python benchmarks/kernel_headers.py
    PYTHONPATH=src python benchmarks/kernel_headers.py --march=-march=native

Prints one line per instruction set: the kernels with identical machine code, and the compile
CPU with the headers, with the declarations, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
from pathlib import Path

from machine import cpu  # (benchmarks/machine.py, beside this script)

from descentlab import _native
from descentlab.optim import c_emitter

ROOT = Path(__file__).resolve().parents[1]
HEADERS = "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n"
END = "#define INFINITY (__builtin_inff())\n"
MARCHES = (
    "-march=native",
    "-march=x86-64-v2",
    "-march=x86-64-v3",
    "-march=sapphirerapids",
    "-march=x86-64-v4 -mprefer-vector-width=256",
)


def declared() -> str:
    text = c_emitter._PRELUDE
    start = text.index("#include <stddef.h>")
    return text[start : text.index(END) + len(END)]


def sources() -> list[str]:
    d = json.loads((ROOT / "tests/data/generated_sources.json").read_text())
    blocks = d["blocks"]
    texts = ("\n".join("\n".join(blocks[b]) for b in used) for used in d["sources"].values())
    return [t for t in texts if declared() in t]


def build(source: str, flags: list[str], folder: Path) -> tuple[str, float]:
    """The library's disassembly (its file names left out) and the compiler's CPU seconds."""
    src, lib = folder / "k.cpp", folder / "k.so"
    src.write_text(source)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([_native.compiler(), *flags, str(src), "-o", str(lib), "-lm"], check=True,
                   capture_output=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    dis = subprocess.run(["objdump", "-d", "--no-addresses", str(lib)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return "\n".join(dis.splitlines()[2:]), cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--march", action="append", help="instruction sets (default: five)")
    args = parser.parse_args()
    texts = sources()
    print(f"{cpu()}; {_native.compiler()}; {len(texts)} stored C kernels")
    with tempfile.TemporaryDirectory() as tmp:
        for march in args.march or MARCHES:
            flags = [f for f in _native._flags() if not f.startswith("-march")] + march.split()
            same, with_headers, with_declared = 0, 0.0, 0.0
            for text in texts:
                a, ca = build(text.replace(declared(), HEADERS), flags, Path(tmp))
                b, cb = build(text, flags, Path(tmp))
                same += a == b
                with_headers, with_declared = with_headers + ca, with_declared + cb
            print(f"{march}: {same} of {len(texts)} identical machine code; compile CPU "
                  f"{with_headers:.1f} s with the headers, {with_declared:.1f} s declared "
                  f"({with_declared / with_headers:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
