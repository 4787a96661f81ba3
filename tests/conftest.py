# Threads, the figure backend and quiet progress are set for every test in ../conftest.py.
import functools
import os

import pytest
import torch
from _process_guard import install as _install_process_guard
from _process_guard import pytest_runtest_makereport, pytest_runtest_protocol  # noqa: F401

from descentlab.engine import multirun as _multirun
from descentlab.experiments.compare import sequential as _sequential

#: the library's measure of the cores nobody is using (engine.multirun), as unmarked tests see it
_NO_IDLE_CORES = functools.wraps(_multirun._idle_cores)(lambda window=0.2: 0.0)


@pytest.fixture(autouse=True)
def _the_library_starts_no_processes_of_its_own_accord(request, monkeypatch):
    """A test not marked ``process`` sees a machine with no idle core: ``train_many`` and the
    comparisons it runs start worker processes of their own accord only on two idle cores
    (``engine.multirun._use_processes``), so an unmarked test that trained several runs
    started them when it ran alone on a quiet machine and not inside the busy tier (found: a
    stacked-runs test that failed alone). The measure also slept 0.2 s each time (83 times
    in the in-process tier). Its own tests reach it as ``__wrapped__``."""
    if request.node.get_closest_marker("process") is None:
        monkeypatch.setattr(_multirun, "_idle_cores", _NO_IDLE_CORES)
    yield


# A test that starts a process is marked ``process`` (``make check`` runs the others); an
# unmarked one that starts one fails with one line saying so (tests/_process_guard.py).
_install_process_guard()

_LIBRARY_GROWTH = _sequential.GROWTH


@pytest.fixture(scope="session", autouse=True)
def _a_folder_the_workers_share(tmp_path_factory):
    """``$DESCENTLAB_TEST_SHARED``: a folder every pytest-xdist worker of this run shares (the
    parent of its basetemp, as pytest-xdist documents), where a table computed once per run
    is kept; pytest removes it with its old basetemps."""
    base = tmp_path_factory.getbasetemp()
    os.environ["DESCENTLAB_TEST_SHARED"] = str(
        base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    )


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
    # a stop one test's command noted (descentlab._usercode.note_interrupt) is not the next
    # test's: left, the next in-process command that fails reads as "interrupted by SIGINT"
    from descentlab import _usercode

    _usercode._state["interrupted"] = False
    _usercode._state.pop("signal", None)
    after = {s: signal.getsignal(s) for s in before}
    changed = [s.name for s in before if after[s] is not before[s]]
    for s in before:
        signal.signal(s, before[s])
    # Ray's driver installs its own SIGTERM handler (ray.init, ray.cluster_utils): not ours
    ray_term = getattr(after[signal.SIGTERM], "__qualname__", "").endswith("sigterm_handler")
    if ray_term and "SIGTERM" in changed:
        changed.remove("SIGTERM")
    assert not changed, f"the test left the handler of {', '.join(changed)} changed"


# Tests of the Triton kernels (run by Triton's interpreter where no GPU is visible) that compare
# them bit for bit with the eager backend's torch ops on the same device. The interpreter fuses
# a multiply-add as a GPU does; torch's CPU kernels without vector instructions
# (ATEN_CPU_CAPABILITY=default) round it twice, so on the CPU the comparison holds only where
# torch runs its AVX2/AVX-512 kernels (``make test`` runs these tests there; on a GPU, eager is
# torch's CUDA, which fuses).
_TRITON_BIT_FOR_BIT = {
    "test_the_steady_gpu_step_is_the_eager_form_bit_for_bit",
    "test_triton_step_is_the_eager_form_bit_for_bit",
    "test_one_launch_per_group_over_tensors_of_odd_sizes",
    "test_triton_low_bit_state_is_the_eager_form_bit_for_bit",
    "test_complex_parameters_step_as_pairs_of_reals",
    "test_any_chain_of_element_local_rules_is_one_launch_of_its_eager_form",
    "test_amsgrad_takes_the_triton_step_bit_for_bit",
    "test_a_scheduled_value_is_a_kernel_argument_not_a_table",
    "test_a_prefix_that_is_not_element_local_runs_with_torch_ops_then_one_launch",
    "test_a_prefix_runs_once_over_the_group_before_the_low_bit_launches",
    # against the fused C kernel, which rounds as the process's torch does
    "test_triton_16bit_storage_matches_the_fused_cpu_kernel",
    "test_triton_int8_state_is_the_cpu_fused_int8_path",
}


@pytest.fixture(autouse=True)
def _triton_interpreter_against_eager_that_rounds_twice(request):
    if (
        request.node.module.__name__.endswith("test_gpu_triton")
        and getattr(request.node, "originalname", "") in _TRITON_BIT_FOR_BIT
        and not torch.cuda.is_available()
    ):
        from descentlab.optim.c_emitter import torch_fuses_multiply_add

        if not torch_fuses_multiply_add():
            pytest.skip(
                "torch runs its default CPU kernels (a multiply-add rounded twice); the "
                "interpreted Triton kernel fuses it as a GPU does"
            )
    yield
