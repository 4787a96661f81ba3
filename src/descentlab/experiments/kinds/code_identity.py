"""Your training code's identity: what it is (:class:`Objective`, a function, a Hugging Face
``Trainer`` or a Lightning module), the files it is made of, and the earlier comparison of the
same code a new one is named beside or continues (``--continue-run``)."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descentlab import Score
from descentlab.experiments.earlier import name_earlier, stored
from descentlab.experiments.kinds import FORMS
from descentlab.experiments.kinds.code_run import Run, _say_once


@dataclass
class Objective:
    """An objective in one of its :data:`FORMS`, by reference or as a function.

    Attributes:
        form: ``"function"``, ``"hf_trainer"`` or ``"lightning"``.
        ref: where it is (``path/file.py:fn``, ``package.module:fn``; a function given in
            Python: its module and name, for the record).
        metric: the Trainer's or module's metric the verdict reads (``eval_loss``,
            ``val_acc``), with ``maximize`` (None: minimized where its name ends in
            ``loss``, else maximized, as the Trainer's ``greater_is_better``).
        fn: the function itself (None: imported from ``ref`` where it is first called).
        by_ref: worker processes import ``fn`` again by ``ref`` rather than unpickle it.
        data: descentlab gives each trial its data (``run.splits``, ``run.train``,
            ``run.eval``); False: the objective owns its data.
    """

    form: str
    ref: str
    metric: str | None = None
    maximize: bool | None = None
    fn: Callable[..., Any] | None = dataclasses.field(default=None, compare=False)
    by_ref: bool = True
    data: bool = False
    #: the files of an earlier run continued on purpose (``--continue-run``): recorded as its
    #: identity whatever the files hold now
    pinned: dict[str, str] | None = dataclasses.field(default=None, compare=False)
    #: the run directory it continues (its comparison must be this one's)
    continues: str | None = dataclasses.field(default=None, compare=False)
    #: the script's own command line (``sys.argv[1:]`` while its module is imported and each
    #: trial runs, as ``python script.py ARGS`` gives it: ``--script-args``)
    argv: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.by_ref:
            state["fn"] = None
        return state

    @property
    def function(self) -> Callable[..., Any]:
        if self.fn is None:
            from descentlab.problems.problem import load_function

            with self.as_script():
                self.fn = load_function(self.ref, f"{FORMS[self.form]} {self.ref!r}")
        return self.fn

    def __call__(self, run: Run) -> Any:
        fn = self.function
        with self.as_script():
            if self.form == "function":
                return fn(run)
            from descentlab.experiments import frameworks

            train = frameworks.hf_trainer if self.form == "hf_trainer" else frameworks.lightning
            return Score(train(fn, run, self.metric), self.direction, str(self.metric))

    def as_script(self) -> Any:
        """A context in which ``sys.argv`` is the script's own command line, ``[its file,
        *argv]`` (:func:`~descentlab._usercode.script_argv`): a module-level
        ``parse_args()`` reads what ``python script.py ARGS`` would give it."""
        from descentlab._usercode import script_argv

        return script_argv(self.ref.split("#", 1)[0].rpartition(":")[0] or self.ref, self.argv)

    @property
    def direction(self) -> bool:
        """Whether the Trainer's or module's metric is maximized."""
        if self.maximize is not None:
            return self.maximize
        return not str(self.metric).endswith("loss")

    def files(self) -> dict[str, str]:
        """``{path: hash}`` of the code the objective is made of: its module's file, the
        user's own modules it imports and the data files they name
        (:func:`~descentlab.problems.user_files.user_files`); a function without a file: its
        source."""
        from descentlab.problems.user_files import user_files

        fn = self.function
        module = inspect.getmodule(fn)
        found = user_files(module) if module is not None else {}
        if not found:
            try:
                data = inspect.getsource(fn).encode()
            except (TypeError, OSError):
                data = self.ref.encode()
            found = {"<source>": hashlib.sha256(data).hexdigest()[:16]}
        return found

    def fingerprint(self) -> str:
        """A hash of :meth:`files`, so that changed code or data starts a new comparison."""
        from descentlab.problems.user_files import digest

        return digest(self.files())

    def record(self) -> dict[str, Any]:
        """What the comparison's spec records of it (its digest names the run directory)."""
        from descentlab.problems.user_files import changed, digest

        files = self.files()
        if self.pinned is not None:
            moved = changed(self.pinned, files)
            if moved:
                _say_once(
                    self.ref + " pinned",
                    f"descentlab: continuing the earlier comparison on purpose: {', '.join(moved)} "
                    "changed since its trials, which are reused as they are",
                )
            files = self.pinned
        out = {"form": self.form, "ref": self.ref, "code": digest(files), "files": files}
        if self.argv:  # (other arguments: another comparison)
            out["argv"] = list(self.argv)
        if self.form != "function":
            out.update(metric=self.metric, maximize=self.direction)
        return out


def continued(run_dir: str | Path, objective: Mapping[str, Any] | None) -> Objective:
    """The objective a comparison continues in ``run_dir`` on purpose (``--continue-run``):
    ``objective`` (the command's record) with the earlier run's files as its identity
    (ValueError: ``run_dir`` holds no comparison of that objective)."""
    from descentlab.problems.problem import absolute_ref

    if objective is None:
        raise ValueError(
            f"--continue-run {run_dir} continues a comparison of your own code: give its "
            "--objective, --hf-trainer or --lightning"
        )
    run_dir = Path(run_dir)
    ref = absolute_ref(objective["ref"])
    found = [spec.get("objective") for spec, _ in stored(run_dir)]  # (its records, in order)
    kept = [o for o in found if isinstance(o, dict) and absolute_ref(o.get("ref", "")) == ref]
    if not kept or "files" not in kept[-1]:
        raise ValueError(
            f"--continue-run {run_dir}: it holds no comparison of {objective['ref']} to continue "
            "(give the run directory an earlier command printed)"
        )
    return Objective(objective["form"], ref, objective.get("metric"), objective.get("maximize"),
                     pinned=dict(kept[-1]["files"]), continues=str(run_dir),
                     argv=tuple(objective.get("argv") or ()))  # fmt: skip


def name_earlier_run(
    run_dir: Path, record: Mapping[str, Any], objective: Objective | None = None
) -> None:
    """Where ``run_dir`` is new for the objective ``record`` describes, say which run beside it
    compared the same objective with other code or data, and the files that changed (read
    from their stores, read-only): its trials are not reused. An ``objective`` continued on
    purpose (``--continue-run``) must run in the directory it continues (ValueError)."""
    if objective is not None and objective.continues is not None:
        if run_dir.resolve() != Path(objective.continues).resolve():
            raise ValueError(
                f"--continue-run {objective.continues}: this command's settings are not that "
                f"comparison's (they would run in {run_dir}): give the same settings"
            )
        return

    def recorded(spec: dict[str, Any], prov: dict[str, Any]) -> Any:
        old = spec.get("objective")
        return old.get("files") if isinstance(old, dict) and old.get("ref") == ref else None

    ref, files = record.get("ref"), record.get("files")
    name_earlier(run_dir, files, recorded, "; --continue-run {other} reuses them")
