"""Console progress of a comparison: a bar over trials on a terminal, else one line per
trial and per decision of the protocol."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from descentlab._files import shown as shown_path
from descentlab.experiments.compare.pruning import rung_of
from descentlab.experiments.compare.results import fmt_setting
from descentlab.experiments.trial import TrialOutcome

__all__ = ["Progress", "console_progress", "shows_lines"]

#: A progress callback: ``progress(event, info)`` with the events ``"start"``, ``"trial"``,
#: ``"selected"`` and ``"done"``.
Progress = Callable[[str, dict[str, Any]], None]


def _named(metric: str, info: dict[str, Any]) -> str:
    """``metric`` (``val/accuracy``) as the line says it: your own code's metric by its name
    (``val/neg_logloss``)."""
    shown = info.get("shown")
    return f"{metric.split('/', 1)[0]}/{shown}" if shown else metric


def console_progress(progress: bool | Progress | None) -> Progress:
    """The progress callback ``progress`` asks for: itself if callable, else the console's
    (None: shown when stderr is a terminal) or a silent one."""
    if callable(progress):
        return progress
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return lambda event, info: None
    return _ConsoleProgress(tty=sys.stderr.isatty())


def shows_lines(progress: Progress) -> bool:
    """Whether ``progress`` (:func:`console_progress`'s) is the console's: then a long trial
    prints its steps, their rate and the time left as it trains
    (:mod:`~descentlab.engine.trial_lines`)."""
    return isinstance(progress, _ConsoleProgress)


class _ConsoleProgress:
    """A progress bar over trials (on a terminal) or one line per step of the protocol."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.bar: Any = None
        self.t0 = time.perf_counter()

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            self._print(
                f"comparing in {shown_path(info['run_dir'])} ({info['total']} trials, "
                f"{info['workers']} worker process(es))"
            )
            if self.tty:
                self.bar = tqdm(
                    total=info["total"], unit="trial", dynamic_ncols=True, file=sys.stderr
                )
        elif event == "trial":
            out: TrialOutcome = info["outcome"]
            t = out.trial
            name = t.label
            desc = f"{t.phase} {name} lr={t.config.hyper.get('lr', float('nan')):.3g}"
            if rung_of(t) is not None:  # a pruning rung's run: stopped at that step
                desc += f" (rung, {t.config.steps} steps)"
            if self.bar is not None:
                if self.bar.total != info["total"]:
                    self.bar.total = info["total"]
                self.bar.set_description_str(desc, refresh=False)
                self.bar.update(1)
            elif not self.tty:
                metric = info["metric"]
                if t.phase == "refit":  # its "val" examples are training data: show the test
                    metric = "test/" + metric.split("/", 1)[1]
                value = out.summary.get(metric)
                named = _named(metric, info)
                shown = f"{named} {value:.4f}" if isinstance(value, float) else out.status
                if info.get("failure"):
                    shown += f" -- failed: {info['failure']}"
                reused = " (stored)" if out.reused else f" ({out.seconds:.1f} s)"
                self._print(f"[{info['done']:>3}/{info['total']}] {desc}: {shown}{reused}")
        elif event == "selected":
            choice = info["choice"]
            best = info["best"]
            cands = info["candidates"]
            if choice.fixed_lr:
                self._print(
                    f"{choice.display}: kept at its default lr {fmt_setting(info['setting'])}"
                )
            elif best is None:
                self._print(f"{choice.display}: every setting failed; no final runs")
            else:
                cand = cands[best]
                failed = sum(c.failed for c in cands)
                pruned = sum(c.pruned for c in cands)
                n = sum(len(c.scores) for c in cands)
                also = f", {pruned}/{n} pruned" if pruned else ""
                self._print(
                    f"{choice.display}: best lr {fmt_setting(cand.setting)} "
                    f"({_named(info['metric'], info)} {cand.score:.4f}; {failed}/{n} tuning "
                    f"trial(s) failed{also})"
                )
        elif event == "seeds":
            names = info["names"]
            who = ", ".join(f"{names.get(k, k)} to {n}" for k, n in info["want"].items())
            if self.bar is not None and self.bar.total != info["total"]:
                self.bar.total = info["total"]
            self._print(f"more test seeds where a comparison is still open: {who}")
        elif event == "done":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            self._print(
                f"{info['trials_run']} trial(s) run in {time.perf_counter() - self.t0:.0f} s"
            )
