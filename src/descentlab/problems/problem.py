r"""Your own problem: a model factory, data splits, a loss and a metric.

A :class:`Problem` is what a comparison optimizes when the built-in datasets are not yours:
give it to :func:`descentlab.experiments.compare.compare` (``problem=``), or name a function
that returns one on the command line (``--problem path/to/file.py:make_problem``,
:func:`load_problem`). Its data (arrays, tensors or ``Dataset``\ s), defaults, checks and
fingerprint: docs/compare.md.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(100, 3, generator=g)
    >>> y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    >>> p = Problem(name="linear", model=lambda: torch.nn.Linear(3, 1),
    ...             data={"x_train": x[:80], "y_train": y[:80], "x_test": x[80:],
    ...                   "y_test": y[80:]})
    >>> s = p.splits(seed=0, val_fraction=0.25)
    >>> s.task, s.n_train, s.n_val, s.n_test, p.metric_name
    ('regression', 60, 20, 20, 'rmse')
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descentlab import losses
from descentlab.constraints import FRACTION, check
from descentlab.problems import data as datasets
from descentlab.problems import streams
from descentlab.problems._user import USER_CODE_ERRORS, _describe, failure, stamp

__all__ = [
    "BUILTIN_PROBLEMS",
    "METRICS",
    "Problem",
    "absolute_ref",
    "chance_level",
    "is_problem_ref",
    "load_function",
    "load_problem",
    "problem_slug",
    "resolve_for_compare",
]

#: Metrics a problem is scored with: name -> (validation metric key, maximize).
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("val/accuracy", True),
    "loss": ("val/loss", False),
    "rmse": ("val/rmse", False),
}

_REQUIRED_DATA = ("x_train", "y_train", "x_test", "y_test")


#: Problems built into descentlab that are :class:`Problem` objects (the datasets of
#: :mod:`descentlab.problems.data` are the others): name -> the ``module:function`` that makes
#: it, loaded like a user's problem function (a problem builds on this module, not it on them).
BUILTIN_PROBLEMS: dict[str, str] = {"charlm": "descentlab.problems.charlm:char_lm_problem"}


@dataclass(eq=False)
class Problem:
    """A model factory, data splits, a loss and a metric.

    Attributes:
        name: a short name (tables, the run directory).
        model: a callable returning a fresh ``torch.nn.Module`` (a class or a function; called
            with the comparison's ``model_options`` as keyword arguments, and after
            ``torch.manual_seed(seed)``, so each seed gives its own initialisation).
        data: ``{"x_train", "y_train", "x_test", "y_test"[, "x_val", "y_val"]}`` arrays or
            tensors; or ``{"train", "test"[, "val"]}`` ``torch.utils.data.Dataset`` objects of
            ``(input, target)`` pairs (map-style or iterable; see
            :mod:`descentlab.problems.streams`).
        loss: a loss name (``descentlab.losses``) or a callable ``(outputs, targets) ->
            scalar`` (mean over the batch); None: cross-entropy / mean squared error.
        metric: ``"accuracy"`` (classification), ``"loss"`` or ``"rmse"`` (regression); None:
            accuracy for classification, RMSE for regression.
        task: ``"classification"`` or ``"regression"``; None: integer targets are
            classification.
        n_classes: classes of a classification problem; None: the largest label + 1.
        target: the metric value whose first crossing is timed (time to target), or None.
        loader: datasets only: ``torch.utils.data.DataLoader`` options passed through
            (``num_workers``, ``pin_memory``, ``collate_fn``, ``prefetch_factor``,
            ``timeout``, ``worker_init_fn``, ``multiprocessing_context``) and
            ``eval_batch_size``; the run owns the batch size, order and seeding.
        meta: where the data came from (recorded with the splits).
        source: the reference it was loaded from (set by :func:`load_problem`).
    """

    name: str
    model: Callable[..., nn.Module]
    data: Mapping[str, Any]
    loss: str | Callable[[Tensor, Tensor], Tensor] | None = None
    metric: str | None = None
    task: str | None = None
    n_classes: int | None = None
    target: float | None = None
    loader: Mapping[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    source: tuple[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._validate_fields()

    # -- checks ----------------------------------------------------------------------------

    def _where(self) -> str:
        return f"problem {self.name!r}" + (f" ({self.source[0]})" if self.source else "")

    def _validate_fields(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"problem name must be a non-empty string, got {self.name!r}")
        where = self._where()
        if not callable(self.model):
            raise ValueError(
                f"{where}: model must be a callable returning a torch.nn.Module (a class or a "
                f"function), got {self.model!r}"
            )
        if not isinstance(self.data, Mapping):
            raise ValueError(
                f"{where}: data must be a dict with {', '.join(_REQUIRED_DATA)} (and optionally "
                f"x_val, y_val), got {type(self.data).__name__}"
            )
        self._kind.validate(self, where)
        self._validate_rest(where)

    @property
    def _kind(self) -> Any:
        """What the data are, and what checks, hashes and splits them: arrays held in memory
        (:class:`_Arrays`) or ``Dataset``\\ s read through loaders
        (:class:`~descentlab.problems.streams.Datasets`)."""
        return streams.kind_of(self.data, _ARRAYS)

    def _validate_rest(self, where: str) -> None:
        if self.task not in (None, "classification", "regression"):
            raise ValueError(
                f"{where}: task must be 'classification' or 'regression', got {self.task!r}"
            )
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(
                f"{where}: metric must be one of {', '.join(METRICS)}, got {self.metric!r}"
            )
        if self.loss is not None and not (isinstance(self.loss, str) or callable(self.loss)):
            raise ValueError(
                f"{where}: loss must be a loss name or a callable (outputs, targets) -> loss, "
                f"got {self.loss!r}"
            )
        if self.loss is not None and isinstance(self.loss, str):
            losses.get(self.loss)  # KeyError listing the valid names
        if self.n_classes is not None and (
            isinstance(self.n_classes, bool)
            or not isinstance(self.n_classes, int)
            or self.n_classes < 1
        ):
            raise ValueError(
                f"{where}: n_classes must be a positive integer (or None: the largest label + "
                f"1), got {self.n_classes!r}"
            )

    # -- derived ---------------------------------------------------------------------------

    @functools.cached_property
    def _tensors(self) -> dict[str, Tensor]:
        where = self._where()
        out: dict[str, Tensor] = {}
        for key, value in self.data.items():
            try:
                t = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: data[{key!r}] is not an array: {exc}") from None
            if t.dim() == 0:
                raise ValueError(f"{where}: data[{key!r}] must have one row per example")
            out[key] = t.detach().cpu()
        for x, y in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
            if x in out and out[x].shape[0] != out[y].shape[0]:
                raise ValueError(
                    f"{where}: {x} has {out[x].shape[0]} rows but {y} has {out[y].shape[0]}"
                )
            if x in out and out[x].shape[0] == 0:
                raise ValueError(f"{where}: {x} is empty")
        shapes = {k: tuple(out[k].shape[1:]) for k in ("x_train", "x_test", "x_val") if k in out}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"{where}: inputs must have one shape per example, got {shapes}")
        return out

    @property
    def task_name(self) -> str:
        """``"classification"`` or ``"regression"`` (given, or from the targets' dtype)."""
        if self.task is not None:
            return self.task
        y = self._kind.first_target(self)
        return "regression" if y.is_floating_point() else "classification"

    @property
    def metric_name(self) -> str:
        """The metric (given, or accuracy / RMSE by task)."""
        if self.metric is not None:
            return self.metric
        return "accuracy" if self.task_name == "classification" else "rmse"

    @property
    def loss_name(self) -> str | Callable[[Tensor, Tensor], Tensor]:
        if self.loss is not None:
            return self.loss
        return "cross_entropy" if self.task_name == "classification" else "mse"

    def fingerprint(self) -> str:
        """A hash of the data, the task, the loss and the metric (8 hex digits); for datasets,
        :func:`descentlab.problems.streams.fingerprint` (a dataset's own ``fingerprint()``
        where it has one, else its type, length, known labels and first example)."""
        return self._kind.fingerprint(self)

    def splits(self, *, seed: int = 0, val_fraction: float = 0.2) -> Any:
        """The problem as a :class:`~descentlab.problems.data.Splits` (test split sealed).

        Args:
            seed: seed of the train/validation split when ``x_val`` is not given.
            val_fraction: validation fraction when ``x_val`` is not given.

        Raises:
            ValueError: naming the field that is wrong.
        """
        _check_metric_fits_task(self._where(), self.metric_name, self.task_name == "classification")
        return self._kind.splits(self, seed=seed, val_fraction=val_fraction)

    def _split_tensors(
        self, classification: bool, seed: int, val_fraction: float
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``x_train, y_train, x_val, y_val, x_test, y_test`` in the engine's dtypes: float
        inputs as float32, integer inputs (a language model's token ids) as int64; labels as
        int64, regression targets as float32 ``(n, k)``. Without ``x_val`` the validation split
        is cut from the training data (stratified for class labels)."""
        where = self._where()
        t = self._tensors
        x_dtype = torch.float32 if t["x_train"].is_floating_point() else torch.int64
        x_train, y_train = t["x_train"].to(x_dtype), _targets(t, "y_train", classification, where)
        x_test, y_test = t["x_test"].to(x_dtype), _targets(t, "y_test", classification, where)
        if "x_val" in t:
            x_val = t["x_val"].to(x_dtype)
            y_val = _targets(t, "y_val", classification, where)
            return x_train, y_train, x_val, y_val, x_test, y_test
        check("val_fraction", val_fraction, FRACTION)
        stratify = classification and y_train.dim() == 1
        x_tr, x_va, y_tr, y_va = datasets._split_train_val(
            x_train.numpy(), y_train.numpy(), val_fraction=val_fraction, seed=seed,
            stratify=stratify, where=where,
        )  # fmt: skip
        return (
            torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_va),
            torch.from_numpy(y_va), x_test, y_test,
        )  # fmt: skip

    def check(self, **model_options: Any) -> None:
        """Build the model once and pass two training examples through it and the loss.

        Raises:
            ValueError: the factory fails or returns no module, or the loss cannot take the
                model's outputs (naming the shapes).
        """
        where = self._where()
        s = self.splits()
        model = build_model(self.model, where, **model_options)
        x, y = self._kind.sample(self, s)
        try:
            with torch.no_grad():
                out = model(x)
        except USER_CODE_ERRORS as exc:
            raise ValueError(
                f"{where}: the model cannot take inputs of shape {tuple(x.shape)}: {failure(exc)}"
            ) from None
        declared = self.n_classes is not None and self.task_name == "classification"
        if declared and out.dim() >= 2 and out.shape[-1] != self.n_classes:
            raise ValueError(
                f"{where}: n_classes is {self.n_classes} but the model "
                f"({type(model).__name__}) gives {out.shape[-1]} outputs per example; make "
                "them agree"
            )
        loss = self.loss_name
        fn = losses.get(loss) if isinstance(loss, str) else loss
        try:
            value = fn(out, y)
        except USER_CODE_ERRORS as exc:
            raise ValueError(
                f"{where}: the loss cannot compare the model's outputs {tuple(out.shape)} with "
                f"targets {tuple(y.shape)}: {failure(exc)}{losses.mismatch_hint(out, y)}"
            ) from None
        if not isinstance(value, Tensor) or value.dim() != 0:
            raise ValueError(f"{where}: the loss must return a scalar tensor, got {value!r}")

    def __reduce__(self) -> Any:
        # A problem loaded by reference travels as the reference (worker processes call its
        # function again); one made in Python travels as its fields (pickled by reference).
        if self.source is not None:
            return (_load_json, self.source)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_rebuild, (fields,))


class _Arrays:
    """The kind of a problem whose data are arrays (the counterpart of
    :class:`~descentlab.problems.streams.Datasets`): checked, hashed and split in memory."""

    def validate(self, p: Problem, where: str) -> None:
        if p.loader is not None:
            raise ValueError(
                f"{where}: loader options apply to datasets (data={{'train': ..., 'test': ...}}),"
                " not to arrays"
            )
        missing = [k for k in _REQUIRED_DATA if k not in p.data]
        if missing:
            raise ValueError(f"{where}: data is missing {', '.join(missing)}")
        if ("x_val" in p.data) != ("y_val" in p.data):
            raise ValueError(f"{where}: data must hold both x_val and y_val, or neither")
        unknown = sorted(set(p.data) - {*_REQUIRED_DATA, "x_val", "y_val"})
        if unknown:
            raise ValueError(
                f"{where}: unknown data key(s) {unknown}; valid keys: "
                f"{', '.join(_REQUIRED_DATA)}, x_val, y_val"
            )

    def first_target(self, p: Problem) -> Tensor:
        return p._tensors["y_train"]

    def fingerprint(self, p: Problem) -> str:
        """A hash of every array, the task, the loss and the metric (8 hex digits)."""
        h = hashlib.sha256()
        for key in sorted(p._tensors):
            t = p._tensors[key].contiguous()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        loss = p.loss_name if isinstance(p.loss_name, str) else _describe(p.loss_name)
        h.update(f"{p.task_name}|{loss}|{p.metric_name}|{p.n_classes}".encode())
        return h.hexdigest()[:8]

    def splits(self, p: Problem, *, seed: int, val_fraction: float) -> datasets.Splits:
        where, task = p._where(), p.task_name
        classification = task == "classification"
        x_train, y_train, x_val, y_val, x_test, y_test = p._split_tensors(
            classification, seed, val_fraction
        )
        n_classes = None
        if classification:
            n_classes = p.n_classes
            if n_classes is None:
                n_classes = int(max(int(y.max()) for y in (y_train, y_test))) + 1
            for name, y in (("y_train", y_train), ("y_val", y_val), ("y_test", y_test)):
                datasets.check_labels(y, n_classes, name=f"{where}: {name}")
        return datasets.Splits.of(
            train=(x_train, y_train),
            val=(x_val, y_val),
            test=(x_test, y_test),
            **datasets.example_fields(task, n_classes, x_train.shape[1:], y_train.shape[1:]),
            **stamp(p, seed, val_fraction),
        )

    def sample(self, p: Problem, splits: datasets.Splits) -> tuple[Tensor, Tensor]:
        """Two training examples."""
        return splits.x_train[:2], splits.y_train[:2]


_ARRAYS = _Arrays()


def _rebuild(fields: dict[str, Any]) -> Problem:
    return Problem(**fields)


def _load_json(ref: str, options: str) -> Problem:
    return _load_cached(ref, options)


def build_model(factory: Callable[..., Any], where: str, **options: Any) -> nn.Module:
    """Call a problem's model factory; a clear error when it fails or returns no module."""
    try:
        model = factory(**options)
    except USER_CODE_ERRORS as exc:
        raise ValueError(f"{where}: the model factory failed: {failure(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"{where}: the model factory must return a torch.nn.Module, got {type(model).__name__}"
        )
    check_trainable(model, f"{where}: the model")
    return model


def check_trainable(model: nn.Module, what: str) -> None:
    """Refuse a model with no parameter to train (none, or none with ``requires_grad``):
    an optimizer would have nothing to optimize."""
    if not any(p.requires_grad for p in model.parameters()):
        frozen = sum(1 for _ in model.parameters())
        why = f"its {frozen} parameter(s) have requires_grad=False" if frozen else "it has none"
        raise ValueError(
            f"{what} ({type(model).__name__}) has no trainable parameters ({why}): there is "
            "nothing for the optimizer to train"
        )


# ------------------------------------------------------------------------------------------
# loading problems by reference

_REF = re.compile(r"^(?P<target>[^:]+):(?P<func>[A-Za-z_][\w.]*)$")


def is_problem_ref(text: Any) -> bool:
    """Whether ``text`` names a problem function (``pkg.mod:fn``, ``path/file.py:fn``) or a
    built-in problem object (:data:`BUILTIN_PROBLEMS`).

    Example:
        >>> is_problem_ref("examples/houses.py:make_problem"), is_problem_ref("mnist1d")
        (True, False)
    """
    if not isinstance(text, str):
        return False
    text = text.split("#", 1)[0]
    return text in BUILTIN_PROBLEMS or _REF.match(text.strip()) is not None


def problem_slug(ref: str) -> str:
    """A short name for a run directory: the file's stem or the module's last part.

    Example:
        >>> problem_slug("examples/houses.py:make_problem"), problem_slug("pkg.mod:make")
        ('houses', 'mod')
    """
    text = ref.split("#", 1)[0]
    m = _REF.match(text.strip())
    if m is None:
        return re.sub(r"[^\w.-]+", "_", text)
    target = m.group("target")
    stem = Path(target).stem if target.endswith(".py") else target.rsplit(".", 1)[-1]
    return re.sub(r"[^\w.-]+", "_", stem) or "problem"


@contextlib.contextmanager
def folder_kept(what: str) -> Iterator[None]:
    """User code ``what`` runs inside: the working folder it may change (``os.chdir``) is set
    back afterwards, and that said once -- the command's relative paths, and the processes
    it starts, stay where the command was started."""
    here = os.getcwd()
    try:
        yield
    finally:
        try:
            moved = os.getcwd()
        except OSError:
            moved = "a folder since removed"
        if moved != here:
            os.chdir(here)
            warnings.warn(
                f"descentlab: {what} changed the working folder to {moved}; it is set back to "
                f"{here}, where the command's paths are read",
                RuntimeWarning,
                stacklevel=3,
            )


#: the extra that installs a package user code imports (``pip install 'descentlab[EXTRA]'``)
_EXTRAS = {"transformers": "hf", "accelerate": "hf", "lightning": "lightning",
           "pytorch_lightning": "lightning", "optuna": "tune", "ray": "ray"}  # fmt: skip


def _import_file(path: Path, what: str = "problem file") -> Any:
    name = "descentlab_problem_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:  # modules next to it import, as when it is run as a script
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"problem file {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with folder_kept(f"problem file {path}"):
            spec.loader.exec_module(module)
    except USER_CODE_ERRORS as exc:
        del sys.modules[name]
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        hint = ""
        if missing and missing.split(".")[0] in _EXTRAS:
            hint = f" (pip install 'descentlab[{_EXTRAS[missing.split('.')[0]]}]')"
        raise ValueError(f"{what} {path} failed while importing: {failure(exc)}{hint}") from None
    return module


@functools.lru_cache(maxsize=8)
def _load_cached(ref: str, options: str) -> Problem:
    text = ref.split("#", 1)[0].strip()
    kwargs = json.loads(options)
    m = _REF.match(BUILTIN_PROBLEMS.get(text, text))
    if m is None:
        raise ValueError(
            f"problem must be a dataset name, a built-in problem ({', '.join(BUILTIN_PROBLEMS)}"
            f"), 'package.module:function' or 'path/to/file.py:function', got {ref!r}"
        )
    fn = load_function(m, f"problem {ref!r}")
    try:
        with folder_kept(f"problem function {text}"):
            made = fn(**kwargs)
    except USER_CODE_ERRORS as exc:
        raise ValueError(f"problem function {text} failed: {failure(exc)}") from None
    if isinstance(made, Mapping):
        made = _from_mapping(text, made)
    if not isinstance(made, Problem):
        raise ValueError(
            f"problem function {text} must return a descentlab Problem (or a dict with model "
            f"and data), got {type(made).__name__}"
        )
    # Worker processes load it again by this reference (a file by its absolute path).
    made.source = (absolute_ref(text), options)
    return made


def load_function(ref: str | re.Match[str], what: str) -> Callable[..., Any]:
    """The function ``ref`` names (``package.module:function`` or ``path/to/file.py:function``),
    imported; ``what`` names it in the one-line error where it does not resolve."""
    m = _REF.match(ref.split("#", 1)[0].strip()) if isinstance(ref, str) else ref
    if m is None:
        raise ValueError(
            f"{what} must be 'package.module:function' or 'path/to/file.py:function', got {ref!r}"
        )
    target, func = m.group("target"), m.group("func")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"{what}: no file {path}")
        module = _import_file(path, what.split(" ")[0] + " file")
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"{what}: cannot import {target!r} ({exc})") from None
    fn = module
    try:
        for part in func.split("."):
            fn = getattr(fn, part)
    except AttributeError:
        raise ValueError(f"{what}: {target} has no {func!r}") from None
    if not callable(fn):
        raise ValueError(f"{what}: {func!r} is not a function")
    return fn


def absolute_ref(text: str) -> str:
    m = _REF.match(text)
    if m is None or not m.group("target").endswith(".py"):
        return text
    return f"{Path(m.group('target')).expanduser().resolve()}:{m.group('func')}"


def _from_mapping(text: str, made: Mapping[str, Any]) -> Problem:
    fields = [f.name for f in dataclasses.fields(Problem) if f.name not in ("source", "meta")]
    missing = [k for k in ("model", "data") if k not in made]
    if missing:
        raise ValueError(
            f"problem function {text} returned a dict without {', '.join(missing)} (a problem "
            f"needs model and data; optional: {', '.join(f for f in fields if f not in ('model', 'data'))})"  # noqa: E501
        )
    unknown = sorted(set(made) - set(fields))
    if unknown:
        raise ValueError(
            f"problem function {text} returned unknown field(s) {unknown}; valid: {fields}"
        )
    return Problem(**{"name": problem_slug(text), **made})


def load_problem(ref: str, **options: Any) -> Problem:
    """The :class:`Problem` a reference names, made by calling its function with ``options``.

    Args:
        ref: ``package.module:function``, ``path/to/file.py:function`` (relative to the
            current directory) or a built-in problem's name (:data:`BUILTIN_PROBLEMS`). The
            function returns a :class:`Problem` or a dict of its fields.
        **options: keyword arguments of the function (JSON values).

    Returns:
        The problem (cached per process: the function runs once per reference and options).

    Raises:
        ValueError: the reference does not resolve, the function fails, or returns something
            that is not a complete problem (naming what is missing).
    """
    try:
        key = json.dumps(options, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"problem options must be JSON values, got {options!r}: {exc}") from None
    return _load_cached(ref, key)


def _check_metric_fits_task(where: str, metric: str, classification: bool) -> None:
    if classification and metric == "rmse":
        raise ValueError(f"{where}: metric 'rmse' needs a regression problem (float targets)")
    if not classification and metric == "accuracy":
        raise ValueError(
            f"{where}: metric 'accuracy' needs a classification problem (integer labels)"
        )


def _targets(data: Mapping[str, Tensor], key: str, classification: bool, where: str) -> Tensor:
    """``data[key]``: class labels as int64 (ValueError if not integers); regression targets
    as float32 ``(n, k)`` (ValueError if one is NaN or infinite, naming the first)."""
    y = data[key]
    if classification:
        if y.is_floating_point() and not torch.equal(y, y.round()):
            raise ValueError(f"{where}: classification labels must be integers")
        return y.to(torch.int64)
    y = y.to(torch.float32)
    bad = (~torch.isfinite(y)).nonzero()
    if len(bad):
        row = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{where}: regression targets must be finite numbers, but data[{key!r}] holds "
            f"{float(y[row])} at {row[0] if y.dim() == 1 else row} ({len(bad)} such value(s))"
        )
    return y.reshape(y.shape[0], -1) if y.dim() == 1 else y


def resolve_for_compare(spec: Any, problem: Problem | None, *, workers: int = 1) -> tuple[Any, Any]:
    """The comparison's problem as ``(spec, splits)``: ``problem``, or the one
    ``spec.problem`` names (called with ``spec.problem_options``), checked, split with the
    spec's ``split_seed`` and ``val_fraction``; the returned spec's ``problem`` carries the
    data's fingerprint and, for a problem of the user's own code, its files' (``name#1a2b3c4d``,
    ``name#1a2b3c4d+5e6f7a8b``), so changed data or code never reuse stored trials.

    Raises:
        ValueError: an incomplete or failing problem, or (``workers > 1``) one whose parts
            cannot be sent to worker processes.
    """
    loaded = problem is None
    if problem is None:
        problem = load_problem(spec.problem, **dict(spec.problem_options))
        name = spec.problem.split("#", 1)[0]
    elif not isinstance(problem, Problem):
        raise ValueError(f"problem must be a descentlab Problem, got {type(problem).__name__}")
    else:
        name = problem.name
    if spec.model is None:
        problem.check(**dict(spec.model_options))
    splits = problem.splits(seed=spec.split_seed, val_fraction=spec.val_fraction)
    if workers > 1:
        try:
            pickle.dumps(splits)
        except Exception as exc:
            error = splits.unpicklable(problem._where(), "--workers 2+")
            if error is not None:  # which dataset, why, and the ways out
                raise error from None
            raise ValueError(
                f"problem {problem.name!r} cannot be sent to worker processes ({exc}); define "
                "its model factory and loss at module level, or use workers=1"
            ) from None
    fingerprint = splits.meta["fingerprint"]
    code = _code_digest(name) if loaded else None
    if code is not None:  # a problem of the user's own code: its files are its identity too
        fingerprint = f"{fingerprint}+{code}"
    return dataclasses.replace(spec, problem=f"{name}#{fingerprint}"), splits


def problem_files(ref: str) -> dict[str, str]:
    """``{path: hash}`` of the files a problem reference's code is made of (its module, the
    user's own modules it imports, the data files they name:
    :mod:`~descentlab.problems.user_files`); empty for descentlab's own problems."""
    import inspect

    from descentlab.problems.user_files import user_files

    ref = ref.split("#", 1)[0]
    m = _REF.match(BUILTIN_PROBLEMS.get(ref, ref))
    if m is None:
        return {}
    module = inspect.getmodule(load_function(m, f"problem {ref!r}"))
    return user_files(module) if module is not None else {}


def _code_digest(ref: str) -> str | None:
    """A hash of :func:`problem_files` (None for descentlab's own problems)."""
    from descentlab.problems.user_files import digest

    files = problem_files(ref)
    return digest(files) if files else None


def chance_level(splits: Any, metric: str | None, *, z: float = 2.0) -> float | None:
    r"""The validation ``metric`` of a model that learned nothing from the inputs: the
    threshold below which (accuracy) or above which (loss, RMSE) a trial has failed.

    - No metric of its own (a built-in dataset): :func:`descentlab.problems.data.chance_level`.
    - Datasets whose labels are not known without reading every example: None.
    - Constant regression targets (``quadratic_deep``): None -- predicting the constant is
      perfect, so no trial can be judged against it.
    - ``accuracy``: always the most frequent training label, right a fraction :math:`p` of
      the labels (every position of a sequence counts), plus ``z`` standard errors,
      :math:`p + z\sqrt{p(1-p)/n}`.
    - ``loss``: the problem's loss of the constant prediction that ignores the inputs --
      the training labels' log-frequencies as logits (classification), the training mean
      (regression).
    - ``rmse``: the RMSE of predicting the training mean.

    Returns:
        The threshold, or None when it cannot be computed (the loss does not take the
        constant prediction, an empty validation split).

    Example:
        >>> import torch
        >>> from descentlab.problems.data import load
        >>> s = load("regression")
        >>> rmse = chance_level(s, "rmse")
        >>> mse = float(((s.y_val - s.y_train.mean()) ** 2).mean())
        >>> abs(rmse - mse ** 0.5) < 1e-6
        True
    """
    known = splits.known_targets()  # (datasets: labels known without reading the examples)
    if known is None:
        return None
    y_train, y_val = known
    if y_val.numel() == 0:
        return None
    if splits.task == "regression" and bool((y_train == y_train.reshape(-1)[0]).all()):
        # Constant targets (quadratic_deep: a landscape posed as regression on zeros): the
        # constant prediction is perfect, so "no better than chance" means nothing.
        return None
    if metric is None:
        return datasets.chance_level(splits, z=z)
    classification = splits.task == "classification"
    if metric == "accuracy":
        counts = torch.bincount(y_train.reshape(-1), minlength=int(splits.n_classes or 0))
        p = float(counts.max()) / float(counts.sum())
        n = y_val.numel()
        return p + z * float(np.sqrt(p * (1 - p) / n))
    if metric == "rmse":
        pred = y_train.float().mean(0, keepdim=True)
        return float(((y_val.float() - pred) ** 2).mean().sqrt())
    loss = splits.default_loss
    try:
        if isinstance(loss, str):
            loss = losses.get(loss)
        if classification:
            counts = torch.bincount(y_train.reshape(-1), minlength=int(splits.n_classes))
            logits = torch.log(counts.float().clamp_min(0.5) / counts.sum())
            pred = logits.expand(*y_val.shape, logits.numel())
        else:
            pred = y_train.float().mean(0, keepdim=True).expand_as(y_val)
        with torch.no_grad():
            return float(loss(pred, y_val))
    except Exception:
        return None
