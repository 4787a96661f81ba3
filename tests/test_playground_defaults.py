"""What the playground serves as defaults, and what it refuses, through its HTTP API:
every optimizer's default from its record, Goh's optimal momentum on the quadratic (checked
against the spectral radius of the heavy-ball iteration, and against the run itself), the
records' colours, chains that would mislead, and work the client no longer waits for."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient

from descentlab import optim
from descentlab.playground import compute
from descentlab.playground.app import create_app
from descentlab.problems import landscapes as L


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def meta(client):
    return client.get("/api/meta").json()


def _heavy_ball_radius(lr: float, beta: float, eigenvalues: list[float]) -> float:
    """The worst spectral radius over the eigenvalues of x_{k+1} = x_k - lr h x_k +
    beta (x_k - x_{k-1}) (Polyak's heavy ball; torch's momentum form at a constant lr)."""
    worst = 0.0
    for h in eigenvalues:
        m = np.array([[1 + beta - lr * h, -beta], [1.0, 0.0]])
        worst = max(worst, float(np.abs(np.linalg.eigvals(m)).max()))
    return worst


def test_every_optimizer_default_is_its_record_on_every_landscape(meta):
    lo, hi = meta["limits"]["lr"]
    for land in meta["landscapes"]:
        d = land["defaults"]
        f = L.get(land["name"], **({"kappa": d["kappa"]} if "kappa" in d else {}))
        assert set(d["optimizers"]) == set(optim.NAMES)
        for name, o in d["optimizers"].items():
            want = optim.record(name).lr_on(f)
            if land["name"] == "quadratic" and name == "momentum":
                continue  # Goh's optimum, below
            if land["name"] in ("rosenbrock", "double_well") and name in ("momentum", "nesterov"):
                want = optim.record("sgd").lr_on(f)  # momentum's lesson: GD's step + velocity
            assert o["lr"] == pytest.approx(want, rel=1e-12), (land["name"], name)
            assert lo <= o["lr"] <= hi, (land["name"], name, o["lr"])
        assert d["on"] and set(d["on"]) <= set(optim.NAMES)
    # the ones the page once opened at SGD's rate
    rb = next(x for x in meta["landscapes"] if x["name"] == "rosenbrock")["defaults"]
    for name in ("lion", "adamax", "adafactor"):
        assert rb["optimizers"][name]["lr"] != rb["optimizers"]["sgd"]["lr"]


def test_colours_are_the_records_and_distinct(meta):
    colours = {o["name"]: o["color"] for o in meta["optimizers"]}
    assert colours == {n: optim.record(n).color for n in optim.NAMES}
    assert len(set(c.lower() for c in colours.values())) == len(optim.NAMES)
    assert meta["chain_color"].lower() not in {c.lower() for c in colours.values()}


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_quadratic_marks_goh_optimum_and_it_is_optimal(client, kappa):
    s = client.post("/api/surface", json={"landscape": "quadratic", "kappa": kappa, "n": 10})
    d = s.json()["defaults"]
    marks = d["marks"]
    mu, L_ = 1.0 / kappa, 1.0
    gd, hb_lr, hb_beta = marks["sgd"]["lr"], marks["momentum"]["lr"], marks["momentum"]["momentum"]
    # GD: the rate (k-1)/(k+1) at 2/(mu+L), and no other lr does better
    eig = [mu, L_]
    rate_gd = max(abs(1 - gd["value"] * h) for h in eig)
    assert rate_gd == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-12)
    for lr in np.linspace(0.01, 2.0, 400):
        assert max(abs(1 - lr * h) for h in eig) >= rate_gd - 1e-12
    # heavy ball: radius (sqrt k - 1)/(sqrt k + 1) at Goh's (lr, beta), none better on a grid
    r = _heavy_ball_radius(hb_lr["value"], hb_beta["value"], eig)
    assert r == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1), rel=1e-6)
    best = min(
        _heavy_ball_radius(a, b, eig)
        for a in np.linspace(0.05, 4.0, 80)
        for b in np.linspace(0.0, 0.99, 100)
    )
    assert best >= r - 1e-3
    # the defaults are the marks; the text names the source
    assert d["optimizers"]["momentum"]["lr"] == hb_lr["value"]
    assert d["optimizers"]["momentum"]["momentum"] == hb_beta["value"]
    assert d["optimizers"]["sgd"]["lr"] == gd["value"]
    assert "Goh" in hb_lr["label"] and "Goh" in hb_beta["label"]


def test_quadratic_defaults_run_at_the_accelerated_rate(client, meta):
    q = next(x for x in meta["landscapes"] if x["name"] == "quadratic")
    kappa = q["defaults"]["kappa"]
    o = q["defaults"]["optimizers"]
    steps = 120
    out = client.post(
        "/api/run",
        json={"landscape": "quadratic", "kappa": kappa, "starts": [q["start"]], "steps": steps,
              "optimizers": [{"name": "sgd", "lr": o["sgd"]["lr"]},
                             {"name": "momentum", "lr": o["momentum"]["lr"],
                              "momentum": o["momentum"]["momentum"]}]},
    ).json()  # fmt: skip
    gd, hb = (r["losses"][0] for r in out["runs"])
    rho_gd = (kappa - 1) / (kappa + 1)
    rho_hb = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    # f ~ rate^(2t): measured per-step rates of the loss over the last half of the run
    half = steps // 2
    meas_gd = (gd[steps] / gd[half]) ** (1 / (2 * (steps - half)))
    meas_hb = (hb[steps] / hb[half]) ** (1 / (2 * (steps - half)))
    assert meas_gd == pytest.approx(rho_gd, rel=1e-3)
    assert meas_hb == pytest.approx(rho_hb, rel=0.05)  # a Jordan block: t rho^t
    assert hb[steps] < 1e-6 * gd[steps]


def _opening_run(client, meta, name: str) -> dict:
    """The landscape's opening view as the page requests it: its defaults, its start."""
    land = next(x for x in meta["landscapes"] if x["name"] == name)
    d = land["defaults"]
    specs = [{"name": n, **d["optimizers"][n]} for n in d["on"]]
    out = client.post(
        "/api/run",
        json={"landscape": name, "starts": [land["start"]], "steps": d["steps"],
              "optimizers": specs},
    )  # fmt: skip
    assert out.status_code == 200, out.text
    return {n: r for n, r in zip(d["on"], out.json()["runs"], strict=True)} | {"land": land}


def test_the_opening_views_show_momentums_lesson(client, meta):
    """Rosenbrock (the page's first view) shows momentum visibly faster than
    gradient descent, and in the double well gradient descent stays in the shallow minimum
    while momentum rolls over the barrier (what the landscape's description promises)."""
    rb = _opening_run(client, meta, "rosenbrock")
    f_min = rb["land"]["minimum"]
    gap = {n: rb[n]["losses"][0][-1] - f_min for n in ("sgd", "momentum", "nesterov")}
    assert gap["momentum"] < 0.02 * gap["sgd"] and gap["nesterov"] < 0.02 * gap["sgd"], gap

    dw = _opening_run(client, meta, "double_well")
    assert set(dw) - {"land"} == {"sgd", "momentum"}
    points = {p["kind"]: p["x"][0] for p in dw["land"]["points"]}
    barrier, shallow, deep = (
        points["local maximum"],
        points["local minimum"],
        points["global minimum"],
    )
    (sgd_end,) = dw["sgd"]["paths"][0][-1]
    (momentum_end,) = dw["momentum"]["paths"][0][-1]
    assert sgd_end == pytest.approx(shallow, abs=1e-2) and sgd_end > barrier
    assert momentum_end == pytest.approx(deep, abs=1e-2) and momentum_end < barrier
    assert "gradient descent's lr" in dw["land"]["defaults"]["notes"]["momentum"]


def test_every_served_default_runs(client, meta):
    q = next(x for x in meta["landscapes"] if x["name"] == "ravine")  # adadelta's lr 20 there
    specs = [{"name": n, **p} for n, p in q["defaults"]["optimizers"].items()]
    for i in range(0, len(specs), compute.LIMITS["optimizers"]):
        out = client.post(
            "/api/run",
            json={"landscape": "ravine", "starts": [q["start"]], "steps": 3,
                  "optimizers": specs[i : i + compute.LIMITS["optimizers"]]},
        )  # fmt: skip
        assert out.status_code == 200, out.text


REFUSED = [
    ("chain(trace(momentum=0.5))", "uphill"),
    ("chain(scale_by_rms(alpha=0.9))", "uphill"),
    ("chain(maximize(maximize=True), scale_by_lr())", "uphill"),
    ("chain(sam_ascent(), scale_by_lr())", "'sam'"),
    ("chain(sam_ascent(rho=0.5), trace(momentum=0.9), scale_by_lr())", "sam_ascent"),
]


@pytest.mark.parametrize("rule,match", REFUSED)
def test_misleading_chains_are_refused(client, rule, match):
    r = client.post(
        "/api/run",
        json={"landscape": "rosenbrock", "starts": [[-1.2, 1.0]], "steps": 5,
              "optimizers": [{"rule": rule, "lr": 0.001}]},
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert match in r.json()["error"] and "optimizers[0].rule" in r.json()["error"]


def test_a_chain_that_descends_still_runs(client):
    for rule in ("chain(trace(momentum=0.5), scale_by_lr())", "chain(scale_by_lr())"):
        r = client.post(
            "/api/run",
            json={"landscape": "rosenbrock", "starts": [[-1.2, 1.0], [1.0, 1.0]], "steps": 5,
                  "optimizers": [{"rule": rule, "lr": 0.001}]},
        )  # fmt: skip
        assert r.status_code == 200, r.text  # (1, 1) is the minimum: no gradient, no verdict


def test_a_request_whose_client_left_is_not_computed(monkeypatch):
    """The client aborts while the request waits for the computation lock: the server gives
    up the work instead of running it for no one."""
    calls = []
    real = compute.T.run
    monkeypatch.setattr(compute.T, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    app = create_app()
    body = json.dumps(
        {"landscape": "parabola", "starts": [[4.0]], "steps": 5,
         "optimizers": [{"name": "sgd", "lr": 0.2}]}
    ).encode()  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": "/api/run", "raw_path": b"/api/run",
        "query_string": b"", "headers": [(b"host", b"testserver"),
                                         (b"content-type", b"application/json")],
        "http_version": "1.1", "scheme": "http", "server": ("testserver", 80),
        "client": ("127.0.0.1", 1), "root_path": "",
    }  # fmt: skip
    assert compute._lock.acquire(timeout=5)  # another computation holds the machine
    released = threading.Timer(1.0, compute._lock.release)
    released.start()
    try:
        asyncio.run(app(scope, receive, send))
    finally:
        released.join()
    assert calls == []
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499
    # and the same request from a client that waits is computed
    with TestClient(app) as c:
        r = c.post("/api/run", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200
    assert calls == [1]
