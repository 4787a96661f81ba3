"""The calibration tests' true pseudo-medians (``benchmarks/calibration.py``,
``_World.pseudo_median``: 3,000 simulated seeds each, half of the tests' CPU), simulated once
and kept in ``tests/data/verdict_truths.json``, keyed by what each is made from
(``_World.truth_key``: the scenario, the generator's state its world was drawn from, the
pair). A key the table lacks is simulated as before; ``test_the_table_of_true_pseudo_
medians_is_what_the_harness_simulates`` replays the first comparisons of each scenario
without the table and fails on a missing or different entry, so a changed harness cannot
keep a stale table.

Rewrite the table (every tier's calls, simulated)::

    .venv/bin/python tests/_verdict_truths.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TABLE = Path(__file__).resolve().parent / "data" / "verdict_truths.json"
_OFF = "DESCENTLAB_VERDICT_TRUTHS_OFF"


def calibration() -> ModuleType:
    """``benchmarks/calibration.py`` as the module ``calibration`` (loaded once), its
    :data:`KNOWN` holding the table (none while the table is rewritten)."""
    if "calibration" not in sys.modules:
        path = ROOT / "benchmarks" / "calibration.py"
        spec = importlib.util.spec_from_file_location("calibration", path)
        sys.modules["calibration"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["calibration"])
    module = sys.modules["calibration"]
    if not module.KNOWN and not os.environ.get(_OFF):
        module.KNOWN.update(table())
    return module


def table() -> dict[str, float]:
    return json.loads(TABLE.read_text())


def main() -> int:
    import pytest

    os.environ[_OFF] = "1"
    tests = ROOT / "tests" / "test_verdict_calibration.py"
    args = ["-q", "-n", "0", "-p", "no:cacheprovider", "-m", "", "-k", "not table", str(tests)]
    if code := pytest.main(args):
        return int(code)
    computed = sys.modules["calibration"].COMPUTED
    TABLE.write_text(json.dumps(dict(sorted(computed.items())), indent=0) + "\n")
    print(f"{len(computed)} true pseudo-medians written to {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
