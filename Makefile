# Two commands a newcomer needs: `make demo` and `make test`. Each creates .venv by itself.
# `make check` is the developer's fast tier: lint and the in-process tests, in minutes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test check arith lint format bench clean chromium docs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m descentlab.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

# Python caches each module's compiled bytecode beside it (its default): an environment that
# turns that off (PYTHONDONTWRITEBYTECODE) makes every test process compile descentlab and the
# tests again (pytest's assertion rewrite included): 9.2 -> 6.2 CPU s to collect the
# in-process tier once the cache is written (2026-11-29, AMD EPYC Zen 5).
unexport PYTHONDONTWRITEBYTECODE

# Two workers: CI has 2 cores; tests pin torch to one thread each (conftest.py). A worker that
# runs out of tests takes some of the other's (`--dist worksteal`): a few tests take a minute
# (the FSDP2 tables), and handed out in fixed shares they left one worker idle at the end.
# pytest's testpaths (pyproject.toml) are tests/ and src/: every `>>>` example in src/ runs as a
# doctest.
# Then the tests marked `arith` (outcomes that follow from float arithmetic: training to a
# target, iterating to a verdict) again under two more of torch's CPU kernels: its portable
# code (`default`, the arithmetic of a CPU without AVX2) and AVX2's, so that an outcome that
# holds on this CPU only fails here, not on another machine.
# The files that hold them are named (tests/test_makefile_arith.py checks the list), so that
# only they are collected.
ARITH_CAPABILITIES ?= default avx2
# pytest-xdist workers (2: CI has 2 cores; `make test TEST_WORKERS=N` on a larger machine)
TEST_WORKERS ?= 2
# Each tier's pytest prints its 20 slowest tests (setup, call and teardown each; those of a
# second or more), so that a run in CI names where its minutes went.
DURATIONS := --durations=20 --durations-min=1.0
ARITH_TESTS := tests/test_experiments.py tests/test_lecture_claims.py tests/test_trajectories.py \
	tests/test_landscapes.py tests/test_verdict_stats.py tests/test_book_teaching.py \
	tests/test_multiply_add.py tests/test_scale.py

test: lint chromium
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(DURATIONS)
	@$(MAKE) --no-print-directory arith

# The in-process tier: lint and every test not marked `process` (a test that starts a process --
# a command, the CLI as a command, multiprocessing, torch.distributed's ranks, Ray, a browser --
# is marked so, and one that starts a process unmarked fails: tests/_process_guard.py). The
# arith reruns and the browser are `make test`'s.
check: lint
	DESCENTLAB_PROCESS_GUARD=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not process" $(DURATIONS)

# The arith reruns alone (after the suite: `make test`). A capability that is the one the suite
# just ran under (this CPU's own, `torch.backends.cpu.get_cpu_capability()`) is not run again.
arith: $(STAMP)
	@ran=$$($(PY) -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())"); \
	for cap in $(ARITH_CAPABILITIES); do \
		if [ "$$cap" = "$$ran" ]; then \
			echo "make: ATEN_CPU_CAPABILITY=$$cap is the one the suite ran under: not again"; \
			continue; \
		fi; \
		echo "make: the arith-marked tests under ATEN_CPU_CAPABILITY=$$cap"; \
		ATEN_CPU_CAPABILITY=$$cap $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m arith -p no:cacheprovider $(DURATIONS) \
			$(ARITH_TESTS) || exit 1; \
	done

# The playground's browser test drives Debian's chromium through Playwright (never
# `playwright install`): installed here when missing and possible, else the test skips.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing Debian's chromium for the playground's browser test"; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "make: could not install chromium (apt-get install chromium failed); the browser test will skip"; \
	else \
		echo "make: NOTE: chromium is missing and cannot be installed here (needs root and apt-get);"; \
		echo "make:       tests/test_playground_browser.py will skip. Install it: sudo apt-get install chromium"; \
	fi

# The documentation site in site/: the guides (docs/), the lecture book (its quick build, kept in
# build/docs-book/ and reused while its code is unchanged) and the API reference (mkdocs.yml),
# then every internal link of the built pages checked, the book refused where it shows a ✘ and
# the API reference where a raw Sphinx role or :math: string is left in it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	$(PY) scripts/site_links.py site
	$(PY) scripts/book_marks.py site/book
	$(PY) scripts/site_text.py site

bench: $(STAMP)
	$(PY) benchmarks/step.py
	$(PY) benchmarks/trajectories.py
	$(PY) benchmarks/multirun.py
	$(PY) benchmarks/playground.py

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .ruff_cache
