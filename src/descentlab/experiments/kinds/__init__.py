"""The kinds of trial a comparison compares optimizers on, each an implementation of one
protocol (:class:`TrialKind`): the engine's run (:mod:`~descentlab.experiments.kinds.engine`)
and your own training code (an objective: :mod:`~descentlab.experiments.kinds.code`). The
comparison asks its kind what it needs of a trial -- train it (and continue it), whether its
trials stack in one vectorized pass, prune in that pass or shard across ``--nproc``, what its
metric is called and where its data come from -- and asks nothing else about it.

A kind is registered with the forms of a spec's ``objective`` record it trains, each with its
command-line flag and help (:func:`register`; the engine's run is the kind of a spec with
none): a new kind is its own module and one :func:`register` call, in this package or in a
package of its own that names the module in the ``descentlab.kinds`` entry-point group
(docs/kinds.md).
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["FLAGS", "FORMS", "Flag", "TrialKind", "forms", "kind_named", "kind_of", "register"]


@dataclasses.dataclass(frozen=True)
class Flag:
    """How ``descentlab compare`` takes one form of a kind: the option ``flag`` with its
    ``help``, ``docs`` page and ``metavar``; ``said``: how messages name it (default: the flag);
    ``metric``: the form's code logs several metrics, ``--metric`` names the one read."""

    flag: str
    help: str = ""
    said: str = ""
    metric: bool = False
    docs: str = "docs/kinds.md"
    metavar: str = "FILE.py:FN"


#: Each form of training code a spec's ``objective`` record names, with the flag that gives it
#: (``"objective"``: a function ``fn(run)``), as the kinds registered them.
FORMS: dict[str, str] = {}
#: Each form's command-line flag and help, as the kinds registered them.
FLAGS: dict[str, Flag] = {}
_MODULES: dict[str | None, str] = {None: "descentlab.experiments.kinds.engine"}
_PLUGINS: list[bool] = []  # (the entry points' kinds, once registered: [True])


def register(module: str, forms: Mapping[str, Flag | str]) -> None:
    """A kind of trial: ``module`` (imported at first use) holds it as ``KIND``; ``forms``:
    the forms of a spec's ``objective`` record it trains, with the flag of each (a
    :class:`Flag`, or the option alone)."""
    flags = {form: Flag(f) if isinstance(f, str) else f for form, f in forms.items()}
    FORMS.update({form: f.said or f.flag for form, f in flags.items()})
    FLAGS.update(flags)
    _MODULES.update(dict.fromkeys(forms, module))


def forms() -> dict[str, Flag]:
    """Every registered form with its flag: this package's kinds and those named in the
    ``descentlab.kinds`` entry-point group (each a module that calls :func:`register`)."""
    if not _PLUGINS:
        _PLUGINS.append(True)
        for module in plugged():
            importlib.import_module(module)
    return FLAGS


def plugged(group: str = "descentlab.kinds") -> list[str]:
    """The modules the installed distributions name in the entry-point ``group``, read from
    their ``entry_points.txt`` (``importlib.metadata`` reads every one's metadata: ~40 ms)."""
    import glob
    import sys

    found: list[str] = []
    for folder in dict.fromkeys(sys.path):
        pattern = os.path.join(glob.escape(folder or "."), "*-info", "entry_points.txt")
        for path in sorted(glob.glob(pattern)):
            with open(path, encoding="utf-8", errors="replace") as fh:
                section = ""
                for line in map(str.strip, fh):
                    section = line.strip("[] ") if line.startswith("[") else section
                    if section == group and "=" in line and not line.startswith("["):
                        found.append(line.split("=", 1)[1].split(":")[0].strip())
    return found


def kind_of(spec: Any, code: Any = None) -> TrialKind:
    """The kind of ``spec``'s trials (a :class:`~descentlab.experiments.compare.CompareSpec`
    or its plan): the one registered for its ``objective``'s form, the engine's run without
    one; ``code``: a function given in Python (a function's kind where the spec names none)."""
    record = getattr(getattr(spec, "spec", spec), "objective", None)
    return kind_named({"form": "function"} if record is None and code is not None else record)


def kind_named(record: Any) -> TrialKind:
    """The kind a spec's ``objective`` record names (None: the engine's run)."""
    form = record.get("form") or "" if isinstance(record, Mapping) else record and ""
    if not (form is None or (isinstance(form, str) and form in forms())):
        raise ValueError(f"objective must be a dict with form one of {list(FORMS)}, got {record!r}")
    return importlib.import_module(_MODULES[form]).KIND


class TrialKind(abc.ABC):
    """What a comparison needs of a kind of trial (the engine's run by default).

    Attributes:
        stacks: trials that differ only in hyperparameters or seed train together in one
            vectorized pass.
        prunes_in_pass: a first tuning round's pruned runs leave those passes at the rungs.
        shards: a trial trains across ``--nproc`` processes, its model sharded.
        own_metric: the trial's metric is its own (named by its code, its range its own);
            else the engine's accuracy or loss, with its chance level.
        own_problem: its code is the problem and the model (not a dataset's name, nor a
            model with a size: no suite of problems, no scale study).
        precision: the command line's default ``--precision``.
        alone: what a comparison says once where its trials cannot stack.
        paired: how the verdict pairs the test values beside the seeds, in the protocol's
            words.
        fails_when: what makes a trial a failed one, in the protocol's words (the console's
            verdict, the report's protocol and tables say it as the kind does).
    """

    stacks = prunes_in_pass = shards = False
    own_metric = own_problem = False
    precision = "auto"
    paired = "test example"
    fails_when = "diverged, at chance or training loss rose"
    alone = "descentlab: the trials train one at a time (their kind does not stack them)"

    def check(self, spec: Any) -> None:  # noqa: B027  (a kind refuses nothing unless it says)
        """The spec's settings the kind refuses, refused (ValueError); none by default."""

    def resolve(self, plan: Any, given: Any, data: bool, workers: int) -> tuple[Any, Any, bool]:
        """``(plan, kind, data)``: the plan with what the spec records of the trials' code, the
        kind ready to train ``given`` (the code given in Python, or None), and whether
        descentlab gives the trials their data."""
        return plan, self, data

    def owns_data(self, spec: Any) -> bool:
        """The trials train on data of their own (none of descentlab's)."""
        return False

    def from_command_line(self, record: dict[str, Any], metric: str | None) -> dict[str, Any]:
        """The spec's ``objective`` record the command line gives (``{"form", "ref",
        "data"}``), with ``--metric`` (None: not given) where the form takes one."""
        if metric is not None:
            flag = FLAGS[record["form"]].flag
            raise ValueError(f"--metric {metric}: {flag} takes no --metric")
        return record

    def name_earlier(self, run_dir: Any, spec: Any) -> dict[str, str] | None:
        """Say which comparison beside ``run_dir`` ran the same thing with other files; the
        files the comparison records (None: none)."""
        from descentlab.experiments.earlier import name_earlier_problem

        return name_earlier_problem(run_dir, spec.problem) or None

    @abc.abstractmethod
    def train(self, store: Any, source: Any, trial: Any, checkpoint_every: Any, after: Any,
              nproc: int, resume: int | None = None, restart: bool = False) -> Any:  # fmt: skip
        """One trial trained here against ``store``, recorded as a run of
        ``trial.record_config()`` with its metrics, status and summary: the run's ``run_id``,
        ``status`` and ``summary`` (and its ``model``, where the execution records a refit's
        per-example test outcomes from it; the execution adds a monitored trial's
        ``monitor/*`` records after it returns). ``resume``: the id of the trial's interrupted
        run in ``store``, to be continued from its last checkpoint (with ``restart``: from step
        0 as the same run, its checkpoint having failed verification); the caller finds it,
        writes the resume (:meth:`resume_step`) and handles a bad checkpoint
        (:func:`~descentlab.experiments.resume.continued`), once for every kind."""

    def resume_step(self, store: Any, trial: Any, run_id: int, restart: bool) -> int:
        """The step of the checkpoint :meth:`train` continues ``trial``'s stopped run
        ``run_id`` from (-1: from step 0, every metric it logged gone); ``restart``: its
        checkpoint failed verification, the run starts over. The execution cuts the run's
        metrics back to it and writes the resume before :meth:`train` (a kind writes no
        resume records). CheckpointError: the checkpoint fails its verification. By default
        a kind keeps no checkpoint of its own: the run starts over as the same run."""
        return -1

    def metric_said(self, own: Any, engine: Any) -> Any:
        """What the comparison says of the metric: ``own`` (said of the metric by its own
        name, where it is the trial's own) or ``engine`` (of the engine's accuracy or loss)."""
        return own if self.own_metric else engine

    def check_nproc(self, nproc: int) -> None:
        """Refuse in one line ``--nproc`` above 1 where a trial cannot shard."""
        if nproc > 1 and not self.shards:
            raise ValueError("--nproc shards the engine's model: an objective trains its own")

    def stacked(self, vectorize: bool) -> bool:
        """Whether the trials train stacked in vectorized passes where the comparison asks
        ``vectorize``: a kind whose trials do not stack says so once (:attr:`alone`)."""
        if vectorize and not self.stacks:  # (a loop of its own: said once, with the cost)
            import warnings

            warnings.warn(self.alone, RuntimeWarning, stacklevel=3)
        return vectorize and self.stacks

    def check_suite(self) -> None:
        """Refuse in one line a suite of built-in problems where the code is the problem."""
        if self.own_problem:
            raise ValueError(
                "--problems compares on built-in problems: an objective is one problem"
            )

    def metric_name(self, spec: Any, provenance: Mapping[str, Any]) -> str | None:
        """The metric's own name (None: the engine's accuracy or loss)."""
        return None

    def metric_bounds(self, provenance: Mapping[str, Any]) -> tuple[float, float] | None:
        """The range a run's metric takes, as its record says (None: the engine's)."""
        return None

    def direction(self, spec: Any) -> tuple[bool | None, str | None] | None:
        """``(maximize, name)`` of an own metric as the spec says it (None where its trials
        tell: :meth:`learned`)."""
        return None

    def learned(self, store: Any, outcome: Any) -> tuple[bool | None, str | None]:
        """``(maximize, name)`` of an own metric as a finished trial shows it."""
        return None, None

    def title(self, spec: Any) -> str | None:
        """What the report's title names (None: the problem and its model)."""
        return None

    #: a scale study counts the model's parameters as its trials train (the trial's code
    #: builds the model), not on the meta device before the first size trains
    counts_as_trained = False

    def own_model(self, spec: Any) -> str | None:
        """Where the model a scale study scales is the user's own: ``"problem"`` (a problem
        of the user's whose own model trains: its factory takes ``size=``), else None (a
        model of descentlab's, with a width option)."""
        from descentlab.problems.problem import BUILTIN_PROBLEMS, is_problem_ref

        mine = is_problem_ref(spec.problem) and spec.problem.split("#")[0] not in BUILTIN_PROBLEMS
        return "problem" if spec.model is None and mine else None

    def check_scaled(self, spec: Any) -> None:  # noqa: B027  (a kind scales unless it says)
        """Refuse in one line a study across sizes its trials cannot take."""

    def built_params(self, store_path: Any) -> int | None:
        """The trainable parameters the trials of a finished comparison (its store at
        ``store_path``) said they built (None: they say none; counted before training)."""
        return None

    def named(self, spec: Any) -> Any:
        """The spec a run folder is named by before the comparison resolves it."""
        return spec

    def scored_on(self, spec: Any) -> str | None:
        """Where tuning scored, in the protocol's words (None: the spec's split or folds)."""
        return None

    def training_words(self, spec: Any) -> str | None:
        """How the trials trained, in the protocol's words (None: as the engine's runs, the
        comparison says how)."""
        return None


_DOCS = "docs/compare.md"
register("descentlab.experiments.kinds.code", {
    "function": Flag("--objective", "your training function fn(run) -> Score, trained in each "
                     "trial", said="objective", docs=_DOCS),
    "hf_trainer": Flag("--hf-trainer", "a function make_trainer(split) returning a "
                       "transformers.Trainer without an optimizer", metric=True, docs=_DOCS),
    "lightning": Flag("--lightning", "a function make(split) returning a LightningModule (or it "
                      "and a datamodule); descentlab supplies its configure_optimizers",
                      metric=True, docs=_DOCS),
})  # fmt: skip
