"""The generated kernels declare the C library functions they call instead of including
<math.h>, <stdlib.h> and <string.h> (in C++ those bring thousands of lines of overloads: half
of a kernel's compile). The declarations must give the machine code the headers give: each
stored kernel kind compiled both ways, its disassembly compared; a wrong declaration is seen."""

import json
import pathlib
import shutil
import subprocess

import pytest

from descentlab import _native
from descentlab.optim import c_emitter

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADERS = "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n"
END = "#define INFINITY (__builtin_inff())\n"

# (the compiler and objdump are started here, not through the library: the process tier)
pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        _native.compiler() is None or shutil.which("objdump") is None,
        reason="needs a C++ compiler and objdump",
    ),
]


def _declared() -> str:
    """The prelude's block of declarations, from its first include to INFINITY."""
    text = c_emitter._PRELUDE
    start = text.index("#include <stddef.h>")
    return text[start : text.index(END) + len(END)]


def _stored(optimizer: str, case: str, kind: str) -> str:
    d = json.loads((ROOT / "tests/data/generated_sources.json").read_text())
    blocks = d["sources"][d["hashes"][optimizer][case][kind]]
    return "\n".join("\n".join(d["blocks"][b]) for b in blocks)


def _machine_code(source: str, folder: pathlib.Path, name: str) -> str:
    src, lib = folder / f"{name}.cpp", folder / f"{name}.so"
    src.write_text(source)
    cmd = [_native.compiler(), *_native._flags(), str(src), "-o", str(lib), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    dis = subprocess.run(["objdump", "-d", "--no-addresses", str(lib)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return "\n".join(dis.splitlines()[2:])  # (its first lines name the file)


# a float32 and a float64 kernel with roots and multiply-adds, one of 8-bit state (lowbit's
# quantization: fabsf, malloc), one of bfloat16 storage, a momentum kernel (32-byte stream)
KERNELS = [
    ("adam", "default", "c.float32"),
    ("adam", "default", "c.float64"),
    ("adamw", "state-int8", "c.float32"),
    ("adamw", "state-bfloat16", "c.float32"),
    ("sgd", "sgd-momentum", "c.float32"),
]


@pytest.mark.parametrize("kernel", KERNELS, ids=["-".join(k) for k in KERNELS])
def test_the_declared_functions_give_the_machine_code_the_headers_give(kernel, tmp_path):
    source = _stored(*kernel)
    assert _declared() in source and "#include <math.h>" not in source
    declared = _machine_code(source, tmp_path, "declared")
    included = _machine_code(source.replace(_declared(), HEADERS), tmp_path, "included")
    assert declared == included and "ret" in declared


@pytest.mark.parametrize(
    "right, wrong",
    [("double sqrt(double);", "float sqrt(double);"),
     ("double fma(double, double, double);", "double fma(double, double, float);")],
)  # fmt: skip
def test_a_wrong_declaration_gives_other_machine_code(right, wrong, tmp_path):
    source = _stored("adam", "default", "c.float64")
    assert right in _declared()
    included = _machine_code(source.replace(_declared(), HEADERS), tmp_path, "included")
    assert _machine_code(source.replace(right, wrong), tmp_path, "broken") != included
