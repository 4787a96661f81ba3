"""The playground's HTTP API through Starlette's test client: every mode, every bound,
malformed input, the security headers; numbers against independent references."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient

from descentlab import optim
from descentlab.playground import compute
from descentlab.playground.app import CSP, create_app, is_loopback
from descentlab.problems import landscapes as L


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def _run(client, **over):
    body = {
        "landscape": "parabola",
        "starts": [[4.0]],
        "steps": 5,
        "optimizers": [{"name": "sgd", "lr": 0.2}],
    }
    body.update(over)
    return client.post("/api/run", json=body)


def test_page_static_files_and_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and "descentlab playground" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-eval" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.js").status_code == 200
    # only the fixed list of files: no path reaches the file system
    for name in ("../app.py", "..%2F__init__.py", "compute.py", "%2Fetc%2Fpasswd"):
        assert client.get(f"/static/{name}").status_code == 404
    # another Host header (DNS rebinding) is refused
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_meta_lists_landscapes_optimizers_and_limits(client):
    m = client.get("/api/meta").json()
    names = [x["name"] for x in m["landscapes"]]
    assert "rosenbrock" in names and "quadratic" in names and "noisy_quadratic" not in names
    assert {o["name"] for o in m["optimizers"]} >= {"sgd", "adam", "rmsprop"}
    adam = next(o for o in m["optimizers"] if o["name"] == "adam")
    assert adam["params"] == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}
    assert m["limits"]["steps"] == compute.LIMITS["steps"]


@pytest.mark.parametrize("name", optim.NAMES)
def test_meta_offers_every_named_optimizer_only_numeric_sliders_and_it_runs(client, name):
    # the page formats every slider value as a number (a None lr or a (None, 1e-3) eps
    # stopped it from starting); each offered value must also be accepted back by /api/run
    o = next(o for o in client.get("/api/meta").json()["optimizers"] if o["name"] == name)
    assert isinstance(o["params"].get("lr"), float), o
    for key, value in o["params"].items():
        values = value if key == "betas" else [value]
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), o
    out = _run(client, optimizers=[{"name": name, **o["params"]}])
    assert out.status_code == 200, out.text


def test_run_1d_gradient_descent_matches_the_lecture_recurrence(client):
    # seed 001: x_{k+1} = x_k - lr (2 x_k - 4), lr 0.2 converges, lr 1 bounces 4, 0, 4, ...
    out = _run(client, optimizers=[{"name": "sgd", "lr": 0.2}, {"name": "sgd", "lr": 1.0}])
    assert out.status_code == 200
    runs = out.json()["runs"]
    x, ref = 4.0, []
    for _ in range(6):
        ref.append(x)
        x = x - 0.2 * (2 * x - 4)
    assert [p[0] for p in runs[0]["paths"][0]] == pytest.approx(ref, rel=1e-12)
    assert [p[0] for p in runs[1]["paths"][0]] == [4.0, 0.0, 4.0, 0.0, 4.0, 0.0]
    assert runs[0]["losses"][0][0] == pytest.approx(6.0)  # f(4) = 16 - 16 + 6
    assert out.json()["f_min"] == 2.0


def test_run_2d_many_optimizers_and_starts_equal_direct_runs(client):
    from descentlab.problems import trajectories as T

    starts = [[-1.2, 1.0], [0.5, 2.0]]
    opts = [
        {"name": "adam", "lr": 0.02, "betas": [0.8, 0.99], "eps": 1e-6},
        {"name": "sgd", "lr": 1e-3, "momentum": 0.9},
        {"rule": "chain(scale_by_rms(alpha=0.9), trace(momentum=0.5), scale_by_lr())",
         "lr": 0.01},
    ]  # fmt: skip
    out = client.post(
        "/api/run",
        json={"landscape": "rosenbrock", "starts": starts, "steps": 50, "optimizers": opts},
    )
    assert out.status_code == 200, out.text
    runs = out.json()["runs"]
    ref = T.run(
        "rosenbrock",
        "adam",
        torch.tensor(starts, dtype=torch.float64),
        50,
        lr=0.02,
        hyper={"betas": (0.8, 0.99), "eps": 1e-6},
        kernel=False,
    )
    assert runs[0]["paths"] == ref.paths.tolist()
    assert len(runs[2]["paths"]) == 2 and len(runs[2]["paths"][0]) == 51
    assert runs[2]["label"].startswith("chain(")


def test_quadratic_kappa_and_surface(client):
    s = client.post("/api/surface", json={"landscape": "quadratic", "kappa": 100.0, "n": 40})
    assert s.status_code == 200
    z = torch.tensor(s.json()["z"])
    assert z.shape == (40, 40) and torch.isfinite(z).all()
    # GD with step 2/(L + mu) contracts by (kappa - 1)/(kappa + 1) per step along the axes
    out = client.post(
        "/api/run",
        json={
            "landscape": "quadratic",
            "kappa": 100.0,
            "starts": [[1.0, 0.0]],
            "steps": 3,
            "optimizers": [{"name": "sgd", "lr": 2 / 1.01}],
        },
    ).json()
    xs = [p[0] for p in out["runs"][0]["paths"][0]]
    assert xs[3] == pytest.approx((99 / 101) ** 3, rel=1e-12)  # mu = 0.01 lies along x
    one = client.post("/api/surface", json={"landscape": "xsinx"}).json()
    assert one["dim"] == 1
    assert one["f"][10] == pytest.approx(one["x"][10] * math.sin(one["x"][10]), rel=1e-12)


def test_lr_map_both_modes_equal_single_runs(client):
    body = {
        "landscape": "xsinx",
        "optimizer": {"name": "sgd"},
        "steps": 40,
        "n_lr": 5,
        "n_y": 4,
        "lr_range": [0.01, 1.0],
        "y_range": [1.0, 3.0],
    }
    m = client.post("/api/map", json=body).json()
    assert len(m["final_loss"]) == 4 and len(m["final_loss"][0]) == 5
    lr, x0 = m["lr"][3], m["y"][2]
    one = _run(client, landscape="xsinx", starts=[[x0]], steps=40,
               optimizers=[{"name": "sgd", "lr": lr}]).json()  # fmt: skip
    assert m["final_loss"][2][3] == pytest.approx(one["runs"][0]["losses"][0][-1], rel=1e-12)
    mm = client.post(
        "/api/map",
        json={"landscape": "rosenbrock", "optimizer": {"name": "sgd"}, "mode": "lr_momentum",
              "steps": 30, "n_lr": 6, "n_y": 3, "lr_range": [1e-4, 0.01]},
    ).json()  # fmt: skip
    assert mm["y_name"] == "momentum" and mm["y"][0] == 0.0 and len(mm["final_loss"]) == 3
    # a diverged run is null (drawn blank), not a misleading number
    big = client.post("/api/map", json={**body, "landscape": "cubic", "lr_range": [0.01, 5.0],
                                        "y_range": [-1.0, 1.0]}).json()  # fmt: skip
    assert any(v is None for row in big["final_loss"] for v in row)


BAD = [
    ({"steps": 0}, "steps"),
    ({"steps": 1001}, "steps must be between 1 and 1000"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"starts": [[0.0]] * 17}, "at most 16 starts"),
    ({"starts": []}, "starts must be a non-empty list"),
    ({"starts": [[1.0, 2.0]]}, r"starts\[0\] must be a list of 1 numbers"),
    ({"starts": [[1e9]]}, r"starts\[0\]"),
    ({"starts": [["nan"]]}, "finite number"),
    ({"landscape": "nope"}, "landscape must be one of"),
    ({"landscape": "noisy_quadratic"}, "landscape must be one of"),
    ({"optimizers": []}, "optimizers must be a non-empty list"),
    ({"optimizers": [{"name": "sgd"}] * 9}, "at most 8 optimizers"),
    ({"optimizers": [{"name": "no_such_optimizer"}]}, "name must be one of"),
    ({"optimizers": [{"name": "sgd", "lr": -1}]}, r"lr must be in"),
    ({"optimizers": [{"name": "sgd", "lr": 101}]}, r"lr must be in"),
    ({"optimizers": [{"name": "adam", "momentum": 0.9}]}, "adam takes no 'momentum'"),
    ({"optimizers": [{"name": "adam", "betas": [0.9]}]}, "betas must be a pair"),
    ({"optimizers": [{"name": "adam", "eps": -1}]}, r"optimizers\[0\]\.eps must be a number >= 0"),
    ({"optimizers": [{"name": "sgd", "evil": 1}]}, "unknown field"),
    ({"optimizers": [{"rule": "x" * 301}]}, "at most 300"),
    ({"optimizers": [{"rule": "__import__('os').system('true')"}]}, "arguments must be"),
    ({"optimizers": [{"rule": "open('/etc/passwd')"}]}, "unknown update rule 'open'"),
    ({"optimizers": [{"rule": "chain(" * 120 + ")" * 120}]}, "optimizers"),
    ({"kappa": 10.0, "extra": 1}, "unknown field"),
]


@pytest.mark.parametrize("over,match", BAD)
def test_every_bound_is_a_4xx_with_a_message(client, over, match):
    r = _run(client, **over)
    assert r.status_code == 422, r.text
    import re

    assert re.search(match, r.json()["error"]), r.json()["error"]


def test_bounds_of_the_other_endpoints(client):
    assert (
        client.post("/api/surface", json={"landscape": "quadratic", "kappa": 1e5}).status_code
        == 422
    )
    assert client.post("/api/surface", json={"landscape": "bowl", "n": 10_000}).status_code == 422
    for xr in ([1.0], [2.0, 1.0], [0.0, 1e9]):
        r = client.post("/api/surface", json={"landscape": "parabola", "x_range": xr})
        assert r.status_code == 422 and "x_range" in r.json()["error"], r.text
    r = client.post("/api/surface", json={"landscape": "bowl", "x_range": [0.0, 1.0]})
    assert r.status_code == 422 and "1-D landscapes only" in r.json()["error"]
    one = client.post("/api/surface", json={"landscape": "parabola", "x_range": [-10.0, 14.0]})
    assert one.json()["x"][0] == -10.0 and one.json()["x"][-1] == 14.0
    base = {"landscape": "bowl", "optimizer": {"name": "sgd"}}
    for over in ({"n_lr": 65}, {"n_y": 1}, {"steps": 501}, {"mode": "x"},
                 {"lr_range": [1.0, 0.1]}, {"optimizer": {"name": "adam"}, "mode": "lr_momentum"},
                 {"y_range": [1.0]}):  # fmt: skip
        r = client.post("/api/map", json={**base, **over})
        assert r.status_code == 422, (over, r.text)
        assert r.json()["error"]


def test_malformed_and_oversized_bodies_are_4xx_not_500(client):
    for body in (b"{", b"not json", b"\xff\xfe", b'{"landscape": }'):
        r = client.post("/api/run", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    as_json = {"content-type": "application/json"}
    for body in (b"[]", b"3", b'"x"', b"null"):
        r = client.post("/api/run", content=body, headers=as_json)
        assert r.status_code == 422 and "JSON object" in r.json()["error"]
    big = b'{"landscape": "' + b"a" * (compute.LIMITS["body_bytes"] + 10) + b'"}'
    r = client.post("/api/run", content=big, headers=as_json)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert client.get("/api/run").status_code == 405


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_cli_refuses_a_bad_port_and_warns_off_loopback(monkeypatch, capsys):
    from descentlab.playground import app

    with pytest.raises(ValueError, match="port"):
        app.serve(port=70000, open_browser=False, warm=False)
    ran = {}

    class FakeServer:
        def __init__(self, config):
            ran["config"] = config

        def run(self, sockets):  # uvicorn's order: start (listen), then serve
            ran["host"] = sockets[0].getsockname()[0]
            asyncio.run(self.startup(sockets))

        async def startup(self, sockets):
            self.started = True

    import uvicorn

    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    app.serve("0.0.0.0", 0, open_browser=False, warm=False)
    err, out = capsys.readouterr().err, capsys.readouterr
    assert "WARNING" in err and "0.0.0.0" in err
    assert ran["host"] == "0.0.0.0"
    app.serve(open_browser=False, warm=False)
    printed = capsys.readouterr().out
    assert "http://127.0.0.1:" in printed and "stopped" in printed
    assert L.NAMES  # the landscapes module stays importable next to the app
    del out


def test_the_lr_map_offers_only_what_it_can_run():
    """The map runs its 2,304 starts as one stacked step; Muon, Adafactor, Shampoo and SOAP
    cannot be stacked (each start needs its own step), so meta does not offer them for the map
    and a request for one is refused in one line (it failed with all 2,304 rates in it)."""
    from descentlab.playground import compute

    meta = {o["name"]: o["map"] for o in compute.meta()["optimizers"]}
    assert meta["adam"] and meta["momentum"]
    assert not any(meta[n] for n in ("muon", "adafactor", "shampoo", "soap"))
    with pytest.raises(compute.RequestError) as err:
        compute.lr_map({"landscape": "rosenbrock", "optimizer": {"name": "muon"}})
    msg = str(err.value)
    assert "the map cannot run" in msg and "\n" not in msg and len(msg) < 300


def test_betas_are_checked_by_the_optimizers_declared_checks(client):
    """Adan's three betas are offered and accepted; each optimizer's betas are refused by its
    own declared checks (their words), not by a pair-shaped rule of the playground's."""
    o = next(o for o in client.get("/api/meta").json()["optimizers"] if o["name"] == "adan")
    assert o["params"]["betas"] == [0.98, 0.92, 0.99]
    assert (
        _run(client, optimizers=[{"name": "adan", "betas": [0.9, 0.9, 0.999]}]).status_code == 200
    )
    bad = _run(client, optimizers=[{"name": "adan", "betas": [0.9, 0.9, 1.0]}])
    assert (
        bad.status_code == 422 and "betas[2] must be a number in [0.0, 1.0)" in bad.json()["error"]
    )
    bad = _run(client, optimizers=[{"name": "adam", "betas": [0.9, 0.99, 0.9]}])
    assert bad.status_code == 422 and "betas must be a pair" in bad.json()["error"]
    bad = _run(client, optimizers=[{"name": "adam", "betas": [0.9, "x"]}])
    assert bad.status_code == 422 and "betas[1] must be a finite number" in bad.json()["error"]


#: a slider's value and what the optimizer's declared checks say of it (None: accepted), in
#: their words, one line naming the field and the value: named optimizers and rule expressions
DECLARED = [
    ({"name": "sgd", "momentum": 0.999}, None),
    (
        {"name": "sgd", "momentum": 1.0},
        r"^optimizers\[0\]: Invalid momentum value: 1\.0 \(momentum must be a number in "
        r"\[0\.0, 1\.0\), got 1\.0\)$",
    ),
    ({"name": "rmsprop", "momentum": -0.1}, r"^optimizers\[0\]: Invalid momentum value: -0\.1"),
    (
        {"name": "muon", "momentum": 1.5},
        r"^optimizers\[0\]\.momentum must be a number in \[0\.0, 1\.0\), got 1\.5$",
    ),
    (
        {"name": "nesterov", "momentum": 0.0},
        r"^optimizers\[0\]: nesterov=True requires momentum > 0, got momentum=0\.0$",
    ),
    (
        {"name": "momentum", "momentum": "0.9"},
        r"^optimizers\[0\]\.momentum must be a finite number, got '0\.9'$",
    ),
    ({"name": "adam", "eps": 0.0}, None),  # eps >= 0: the playground's own (0, 1] is gone
    ({"name": "adam", "eps": 2.0}, None),
    (
        {"name": "adam", "eps": -1e-8},
        r"^optimizers\[0\]\.eps must be a number >= 0\.0, got -1e-08$",
    ),
    ({"name": "muon", "eps": -1.0}, r"^optimizers\[0\]\.eps must be a number >= 0\.0, got -1\.0$"),
    ({"name": "adam", "eps": None}, r"^optimizers\[0\]\.eps must be a finite number, got None$"),
    (
        {"name": "adam", "betas": [0.9, 1.0]},
        r"^optimizers\[0\]: Invalid beta parameter at index 1: 1\.0 \(betas\[1\] must be",
    ),
    (
        {"name": "adan", "betas": [0.9, 0.9, 1.0]},
        r"^optimizers\[0\]\.betas\[2\] must be a number in \[0\.0, 1\.0\), got 1\.0$",
    ),
    ({"rule": "chain(trace(momentum=0.5), scale_by_lr())", "momentum": 0.99}, None),
    (
        {"rule": "chain(trace(momentum=0.5), scale_by_lr())", "momentum": 1.0},
        r"^optimizers\[0\]: Invalid momentum value: 1\.0",
    ),
    (
        {"rule": "chain(scale_by_adam(), scale_by_lr())", "eps": -1.0},
        r"^optimizers\[0\]\.eps must be a number >= 0\.0, got -1\.0$",
    ),
]


@pytest.mark.parametrize("spec,error", DECLARED)
def test_momentum_eps_and_betas_are_checked_by_the_declared_checks_only(client, spec, error):
    """The playground has no ranges of its own for these: a value the optimizer accepts runs
    (momentum 0.999, eps 0 or 2), one it refuses is a 422 in the checks' words."""
    r = _run(client, optimizers=[{"lr": 0.01, **spec}])
    if error is None:
        assert r.status_code == 200, r.text
        return
    import re

    msg = r.json()["error"]
    assert r.status_code == 422 and "\n" not in msg and re.search(error, msg), msg


@pytest.mark.parametrize("depth", [17, 500, 30_000])
def test_deeply_nested_json_is_a_400_with_one_line(client, depth):
    """json's parser recurses once per level: 30,000 levels (within the body limit) was a
    RecursionError and HTTP 500."""
    body = b"[" * depth + b"]" * depth
    r = client.post("/api/run", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested more than 16 levels" in r.json()["error"]
