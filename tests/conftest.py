# Threads, the figure backend and quiet progress are set for every test in ../conftest.py.
import pytest
import torch

from descentlab.experiments.compare import sequential as _sequential

_LIBRARY_GROWTH = _sequential.GROWTH


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


# The suite's many small comparisons keep the verdict's first look only (their runs are
# counted, and a 2-seed comparison would otherwise grow to 16 test seeds): ``max_seeds``
# defaults to ``seeds`` here (module-scoped fixtures included). Tests of the sequential design
# itself are marked ``sequential_seeds`` and get the library's default (8 x seeds).
_sequential.GROWTH = 1


@pytest.fixture(autouse=True)
def _library_looks_where_asked(request, monkeypatch):
    if request.node.get_closest_marker("sequential_seeds") is not None:
        monkeypatch.setattr(_sequential, "GROWTH", _LIBRARY_GROWTH)
    yield


#: the test that ran last in this process (named when SIGINT is found ignored after it)
_LAST_TEST = ["(none)"]


@pytest.fixture(autouse=True)
def _signal_handlers_kept(request):
    """Every test leaves SIGINT's and SIGTERM's handlers as it found them: a handler left
    changed (SIGINT ignored) is inherited by every later test of the process and by the
    commands they start, which then cannot be interrupted (found by the whole suite: three
    later tests of one worker process failed as if Ctrl-C did nothing). SIGINT found ignored
    before a test is put back to Python's default: pytest-xdist starts its worker processes
    with SIGINT ignored, and the commands the tests start would inherit it (measured: the
    first test of each worker found it so); found later, it is a leak and is named."""
    import signal
    import threading
    import warnings

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        where = (
            "this test process started with it ignored (pytest-xdist starts its workers so)"
            if _LAST_TEST[0] == "(none)"
            else f"the test before it in this process: {_LAST_TEST[0]}"
        )
        if _LAST_TEST[0] != "(none)":  # a worker's start is expected; a test's leak is not
            warnings.warn(
                f"SIGINT was ignored before {request.node.nodeid} ({where}); put back to "
                "Python's default",
                stacklevel=1,
            )
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _LAST_TEST[0] = request.node.nodeid
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    after = {s: signal.getsignal(s) for s in before}
    changed = [s.name for s in before if after[s] is not before[s]]
    for s in before:
        signal.signal(s, before[s])
    # Ray's driver installs its own SIGTERM handler (ray.init, ray.cluster_utils): not ours
    ray_term = getattr(after[signal.SIGTERM], "__qualname__", "").endswith("sigterm_handler")
    if ray_term and "SIGTERM" in changed:
        changed.remove("SIGTERM")
    assert not changed, f"the test left the handler of {', '.join(changed)} changed"
