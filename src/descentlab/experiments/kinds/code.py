"""Your own training code as a kind of trial (:class:`UserCode`), and the comparison's glue:
the objective a comparison resolves and records (:func:`for_compare`), the direction a trial's
summary shows (:func:`learned`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from descentlab.experiments.kinds import FLAGS, FORMS, TrialKind
from descentlab.experiments.kinds.code_identity import Objective, name_earlier_run
from descentlab.experiments.kinds.code_run import slot


def for_compare(spec: Any, given: Any, *, data: bool, workers: int) -> tuple[Any, Objective]:
    """The comparison's objective: ``given`` (a function ``fn(run)``, or an
    :class:`Objective`) or the one ``spec.objective`` names, checked (it imports, and can go to
    worker processes); and the spec that records it with its code's hash -- changed code
    starts a new comparison -- with no time to a target accuracy (the objective's metric is
    its own). ``data``: descentlab gives each trial its data."""
    import pickle

    from descentlab.problems.problem import absolute_ref, problem_slug

    rec = dict(spec.objective or {})
    if given is None:
        ref = absolute_ref(rec["ref"])
        obj = Objective(rec["form"], ref, rec.get("metric"), rec.get("maximize"),
                        argv=tuple(rec.get("argv") or ()))  # fmt: skip
    elif isinstance(given, Objective):
        obj = dataclasses.replace(given)
    elif callable(given):
        name = f"{getattr(given, '__module__', '?')}:{getattr(given, '__qualname__', '?')}"
        obj = Objective("function", name, fn=given, by_ref=False)
    else:
        raise ValueError(f"objective must be a function fn(run) -> Score, got {given!r}")
    obj.data = data or bool(rec.get("data"))
    obj.function  # noqa: B018  (imported here: a bad reference is one line before any work)
    if workers > 1 and not obj.by_ref:
        try:
            pickle.dumps(obj)
        except Exception as exc:
            raise ValueError(
                f"objective {obj.ref} cannot be sent to worker processes ({exc}); define it at "
                "module level, or use workers=1"
            ) from None
    record = {**obj.record(), "ref": rec.get("ref", obj.ref), "data": obj.data}
    changes: dict[str, Any] = {"objective": record, "target_accuracy": None}
    if not obj.data:
        changes["problem"] = problem_slug(record["ref"])
        if spec.batch_size == "auto":
            changes["batch_size"] = None
    return dataclasses.replace(spec, **changes), obj


def learned(summary: Mapping[str, Any]) -> bool | None:
    """The direction a trial's summary shows its objective's metric has (None: it has no
    value, e.g. a diverged trial)."""
    for split in ("val", "test"):
        for maximize in (True, False):
            if f"{split}/{slot(maximize)}" in summary:
                return maximize
    return None


class UserCode(TrialKind):
    """Your own training code as a kind of trial (:class:`~descentlab.experiments.kinds.
    TrialKind`): each trial one call of it (:func:`~descentlab.experiments.kinds.code_trial.
    run_trial`), alone -- its loop is its own, so it neither stacks, prunes in a pass nor
    shards -- scored by the metric it returns.

    Attributes:
        code: the :class:`Objective` the trials call (None: the kind as a spec names it,
            before :meth:`resolve`).
    """

    own_metric = own_problem = True
    precision = "fp32"  # (its code trains in its own)
    paired = "by test example where the objective returned each example's value"
    fails_when = "diverged: a value your code reported or returned not finite"
    #: what the comparison says once: its trials train one at a time
    alone = (
        "descentlab: the objective's trials train one at a time: its training loop is your "
        "code, so descentlab cannot stack runs in one vectorized pass (on the small models it "
        "stacks, that pass trains 2.7-4x as many runs x steps per second: docs/compare.md)"
    )

    def __init__(self, code: Objective | None = None) -> None:
        self.code = code
        self._honour: dict[str, Any] = {}  # (per store: the values its trials' groups used)

    def check(self, spec: Any) -> None:
        """A function's reference (and the metric the verdict reads, for a Trainer or a
        module); the engine's own options refused, since the code trains."""
        from descentlab.problems.problem import BUILTIN_PROBLEMS, is_problem_ref

        obj = spec.objective
        flag = FORMS[obj["form"]]
        if not is_problem_ref(obj.get("ref")) or obj["ref"] in BUILTIN_PROBLEMS:
            raise ValueError(
                f"{flag} must name a function: path/to/file.py:function or "
                f"package.module:function, got {obj.get('ref')!r}"
            )
        if obj["form"] != "function" and not (isinstance(obj.get("metric"), str) and obj["metric"]):
            raise ValueError(
                f"{flag} needs --metric: the metric the verdict reads (as the Trainer or the "
                f"module logs it, e.g. eval_loss), got {obj.get('metric')!r}"
            )
        for name, value, default in (("--precision", spec.precision, "fp32"),
                                     ("--accumulate", spec.accumulate, 1),
                                     ("--clip-grad-norm", spec.clip_grad_norm, None)):  # fmt: skip
            if value != default:
                where = {
                    "--lightning": "return (module, datamodule, {'precision': ..., "
                    "'accumulate_grad_batches': ..., 'gradient_clip_val': ...}) from make(split): "
                    "the Trainer's own arguments",
                    "--hf-trainer": "set it in the Trainer's TrainingArguments (fp16/bf16, "
                    "gradient_accumulation_steps, max_grad_norm)",
                }.get(flag, "set it in your code (torch.autocast, accumulation, clipping)")
                raise ValueError(
                    f"{name} {value} is the engine's, and with {flag} your code trains: {where}"
                )

    def from_command_line(self, record: dict[str, Any], metric: str | None) -> dict[str, Any]:
        """A Trainer's or a module's ``--metric NAME[:max|:min]`` (a function returns its
        own)."""
        if metric is None:
            return record
        if record["form"] == "function":
            raise ValueError(
                f"--metric {metric} names the metric of --hf-trainer or --lightning; an "
                "--objective function returns its own Score"
            )
        name, _, way = metric.partition(":")
        if way not in ("", "max", "min"):
            raise ValueError(f"--metric takes NAME, NAME:max or NAME:min, got {metric!r}")
        return {**record, "metric": name, **({"maximize": way == "max"} if way else {})}

    def resolve(self, plan: Any, given: Any, data: bool, workers: int) -> tuple[Any, Any, bool]:
        resolved, code = for_compare(plan.spec, given, data=data, workers=workers)
        return resolved.plan(custom_data=True, checked=plan), UserCode(code), code.data

    def owns_data(self, spec: Any) -> bool:
        return not spec.objective.get("data")

    def name_earlier(self, run_dir: Any, spec: Any) -> dict[str, str] | None:
        name_earlier_run(run_dir, spec.objective, self.code)
        return None

    def train(self, store: Any, source: Any, trial: Any, checkpoint_every: Any, after: Any,
              nproc: int, resume: int | None = None, restart: bool = False) -> Any:  # fmt: skip
        """One trial of the code (on descentlab's data where it takes them): from the start, or
        continuing its interrupted run ``resume`` (from step 0 with ``restart``)."""
        from types import SimpleNamespace

        from descentlab.experiments.kinds.code_trial import run_trial

        assert self.code is not None
        data = source.get(trial.data) if self.code.data else None
        again = {} if resume is None else {"resume": resume, "restart": restart}
        run_id, status, summary = run_trial(store, self.code, trial, data, checkpoint_every,
                                            after, **again)  # fmt: skip
        # (the execution adds a monitored trial's records: its optimizer built by run.optimizer)
        return SimpleNamespace(run_id=run_id, status=status, summary=summary)

    def metric_name(self, spec: Any, provenance: Mapping[str, Any]) -> str | None:
        said = provenance.get("objective") or {}
        return str(said.get("name") or spec.objective.get("metric") or "metric")

    def metric_bounds(self, provenance: Mapping[str, Any]) -> tuple[float, float] | None:
        bounds = (provenance.get("objective") or {}).get("bounds")
        if not bounds:
            return None
        low, high = (math.inf * s if v is None else float(v)  # (an infinite end stored as null)
                     for v, s in zip(bounds, (-1, 1), strict=True))  # fmt: skip
        return low, high

    def direction(self, spec: Any) -> tuple[bool | None, str | None] | None:
        return spec.objective.get("maximize"), spec.objective.get("metric")

    def learned(self, store: Any, outcome: Any) -> tuple[bool | None, str | None]:
        """The direction and name of the metric a finished trial returned; the values its
        groups used judged against the other trials' (ValueError: a value that ignores the
        trial's, :mod:`~descentlab.experiments.kinds.code_honour`)."""
        from descentlab.experiments.kinds.code_honour import Honour

        prov = store.get_run(outcome.run_id).provenance or {}
        said = prov.get("objective", {})
        honour = prov.get("honour")
        if isinstance(honour, dict):
            judge = self._honour.setdefault(str(getattr(store, "path", id(store))), Honour())
            obj = self.code
            where = f"{FORMS[obj.form]} {obj.ref}" if obj is not None else "the objective"
            judge.take(outcome.trial.label, honour.get("tuned", {}), honour.get("used", {}), where)
        return learned(outcome.summary), said.get("metric")

    counts_as_trained = True

    def own_model(self, spec: Any) -> str | None:
        """An objective's model is its own: its code reads ``run.size``."""
        return "objective"

    def check_scaled(self, spec: Any) -> None:
        """A Trainer's or Lightning's ``make(split)`` takes no size (an objective reads
        ``run.size``)."""
        form = spec.objective.get("form")
        if form != "function":
            flag = FLAGS[form].flag
            raise ValueError(
                f"{flag}'s make(split) takes no size: a scale study passes each size to an "
                "--objective function as run.size (call your make from one)"
            )

    def built_params(self, store_path: Any) -> int | None:
        """The parameters the trials' ``run.optimizer(params)`` was given (their largest)."""
        from descentlab.store import Store

        store = Store(store_path)
        try:
            runs = store.list_runs()
            said = {(r.provenance or {}).get("objective", {}).get("params") for r in runs}
        finally:
            store.close()
        said.discard(None)
        return max(said) if said else None

    def named(self, spec: Any) -> Any:
        """Code on its own data is named by its file, as :func:`resolve` names it."""
        if spec.objective.get("data"):
            return spec
        from descentlab.problems.problem import problem_slug

        return dataclasses.replace(spec, problem=problem_slug(spec.objective["ref"]))

    def title(self, spec: Any) -> str | None:
        file, _, fn = str(spec.objective["ref"]).rpartition(":")  # (it has no model of ours)
        return f"{fn} ({file.rsplit('/', 1)[-1]})"

    def scored_on(self, spec: Any) -> str | None:
        if spec.objective.get("data"):
            return None
        return "the validation split of the objective's own data (its code owns them)"

    def training_words(self, spec: Any) -> str:
        """How the code's trials trained, in the protocol's words.

        Example:
            >>> from types import SimpleNamespace
            >>> print(KIND.training_words(SimpleNamespace(objective={"form": "hf_trainer",
            ...       "ref": "x.py:make", "code": "1a2b3c4d", "metric": "eval_loss",
            ...       "maximize": False})))
            training: your code (--hf-trainer x.py:make, code 1a2b3c4d) trained each trial, one at a time, with the trial's optimizer and schedule, steps and seed from descentlab; metric: eval_loss (minimized); a trial failed only where its values were not finite (descentlab sees no chance level or training loss)
        """  # noqa: E501
        objective = spec.objective
        metric = objective.get("metric")
        way = "maximized" if objective.get("maximize") else "minimized"
        said = f"metric: {metric} ({way}); " if metric else "metric: the one the function returns; "
        return (
            f"training: your code ({FORMS[objective['form']]} {objective['ref']}, code "
            f"{objective.get('code', '?')}) trained each trial, one at a time, with the trial's "
            f"optimizer and schedule, steps and seed from descentlab; {said}a trial failed only "
            "where its values were not finite (descentlab sees no chance level or training loss)"
        )


KIND = UserCode()
