"""precision="auto": bf16 autocast where the CPU has bf16 arithmetic and the model is large
enough, fp32 otherwise; an explicit bf16 on a CPU without it is said to be slower."""

from __future__ import annotations

import warnings

import pytest

from descentlab import _announce
from descentlab.engine import precision as P
from descentlab.engine.config import RunConfig
from descentlab.engine.run import train

BIG = P.AUTO_BF16_MIN_PARAMS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n", "avx512_bf16"),
        ("flags\t\t: fpu avx512f amx_tile amx_bf16 avx512_bf16\n", "amx_bf16"),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", None),  # Ice Lake: no bf16
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", "bf16"),  # Arm
        ("Features\t: fp asimd\n", None),
        ("", None),
    ],
)
def test_cpu_bf16_reads_the_flags(tmp_path, text, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert P.cpu_bf16(str(path)) == expected


@pytest.mark.parametrize(
    ("precision", "device", "n_params", "feature", "chosen"),
    [
        ("auto", "cpu", BIG, "avx512_bf16", "bf16"),
        ("auto", "cpu", BIG, "amx_bf16", "bf16"),
        ("auto", "cpu", BIG - 1, "avx512_bf16", "fp32"),  # small: autocast's casts cost more
        ("auto", "cpu", BIG, None, "fp32"),  # no bf16 arithmetic: slower
        ("auto", "cuda", BIG, "avx512_bf16", "fp32"),
        ("bf16", "cpu", 10, None, "bf16"),  # as given
        ("fp32", "cpu", BIG, "avx512_bf16", "fp32"),
        ("fp16", "cuda", BIG, None, "fp16"),
    ],
)
def test_choose(monkeypatch, precision, device, n_params, feature, chosen):
    monkeypatch.setattr(P, "cpu_bf16", lambda: feature)
    assert P.choose(precision, device, n_params) == chosen


@pytest.mark.parametrize(
    ("precision", "n_params", "feature", "line"),
    [
        ("auto", BIG, "avx512_bf16", "precision 'auto' chose bf16: this CPU has bf16 arithmetic "
         "(avx512_bf16)"),
        ("auto", BIG, None, "precision 'auto' chose fp32: this CPU has no bf16 arithmetic"),
        ("bf16", 10, None, "precision 'bf16' on a CPU without bf16 arithmetic"),
        ("auto", 10, None, None),  # a small model: fp32 on any CPU, nothing to say
        ("bf16", BIG, "avx512_bf16", None),
        ("fp32", BIG, None, None),
    ],
)  # fmt: skip
def test_announce_says_it_once(monkeypatch, precision, n_params, feature, line):
    monkeypatch.setattr(P, "cpu_bf16", lambda: feature)
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            P.announce(precision, "cpu", n_params)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if line is None:
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith(f"descentlab: {line}")
        assert "\n" not in said[0]


def test_bad_precision_is_named_in_one_line():
    with pytest.raises(ValueError, match=r"precision.*'bf17'") as err:
        RunConfig(problem="moons", model="mlp", steps=2, precision="bf17").validate()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("feature", "expected"), [("avx512_bf16", "bf16"), (None, "fp32")])
def test_a_run_trains_in_what_auto_chose(monkeypatch, feature, expected):
    import descentlab.engine.run as R

    monkeypatch.setattr(P, "cpu_bf16", lambda: feature)
    monkeypatch.setattr(P, "AUTO_BF16_MIN_PARAMS", 1)  # the small model counts as large
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    seen = []
    real = R._autocast
    monkeypatch.setattr(R, "_autocast", lambda chosen, device: seen.append(chosen) or real(
        chosen, device))  # fmt: skip
    cfg = RunConfig(problem="moons", problem_options={"n_samples": 64}, model="mlp",
                    model_options={"hidden": 8}, optimizer="sgd", batch_size=16, steps=3,
                    evaluate_test=False, precision="auto")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(cfg, progress=False)
    assert result.status == "completed" and seen == [expected]
