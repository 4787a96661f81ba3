"""The safety net of the kernel runtime: the generated code of every
registered optimizer -- the fused C kernels' sources, the Triton kernels' sources and the eager
backend's aten ops of a steady step, at the defaults and at every torch-parity configuration --
is byte-identical to tests/data/generated_sources.json. A change of the code generators that
changes a kernel fails here, naming the optimizer, the configuration and the kernel; when the
change is meant, ``python scripts/generated_sources.py --write`` regenerates the file and its
diff shows each changed generated line (explain it in the commit that makes it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "generated_sources", ROOT / "scripts" / "generated_sources.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(script):
    return script.generate()


def test_generated_sources_are_the_stored_ones(script, generated):
    stored = script.load()
    assert script.differences(stored, generated) == []
    assert generated["sources"] == stored["sources"]  # the texts, not only their hashes


def test_the_golden_file_covers_every_optimizer_and_backend(script, generated):
    from descentlab import optim

    hashes = generated["hashes"]
    assert set(hashes) == set(optim.NAMES)
    kinds = {
        kind.split(".")[0] for configs in hashes.values() for c in configs.values() for kind in c
    }
    assert kinds == {"c", "triton", "eager"}
    assert all("eager" in c for configs in hashes.values() for c in configs.values())
    # the low-bit state formats' kernels (their C, and Triton's decode and encode) too
    lowbit = {cid for configs in hashes.values() for cid in configs if cid.startswith("state-")}
    assert lowbit == {"state-int8", "state-bfloat16"}


def test_a_changed_generated_line_is_caught(script, generated, monkeypatch):
    """One line of the fused Adam kernel changed (as a code generator's slip would) fails the
    comparison, naming the kernel."""
    from descentlab.optim import c_emitter

    builder_source = c_emitter.CKernel.source

    def slipped(self, *args, **kwargs):
        return builder_source(self, *args, **kwargs).replace("dl_fma(", "dl_fma (", 1)

    monkeypatch.setattr(c_emitter.CKernel, "source", slipped)
    diff = script.differences(script.load(), script.generate())
    assert any(line.startswith("adam [adam] c.float32:") for line in diff), diff
    assert not any("eager" in line or "triton" in line for line in diff), diff
