"""One self-contained HTML report of an optimizer comparison.

:func:`render_report` writes ``<run dir>/report.html``: a single file that opens offline in any
browser -- figures are embedded as base64 PNG (``data:`` URIs), the style sheet is inline, and
there are no scripts, no external links and no external resources. It holds, in order:

1. the recommendation (best by final test metric and by time to target, and which optimizers
   are not distinguishable from the best, paired by seed), warnings (failures, cliffs), and
   the results table (test accuracy and loss with t-intervals and each seed's value, the
   paired comparison with the best, steps and seconds to the target validation accuracy,
   failed trials);
2. test results per seed, learning curves (train and validation, mean and band over seeds),
   learning-rate sensitivity, time to target, the optimizer monitor's update-to-parameter
   ratio, and the same optimizers' paths on the ravine and saddle landscapes;
3. any lecture experiment found in the run directory or in ``experiments/`` beside it (where
   ``descentlab experiment`` writes by default): ``<name>.json`` results with their tables,
   checks, notes and PNG figures; loose PNG and Markdown files;
4. the protocol, the configuration and the provenance (versions, git commit, machine, command
   line, sessions), and every tuning trial.

``descentlab report RUN_DIR`` re-renders it from the store alone.

Example:
    >>> from descentlab.experiments.compare import load_comparison
    >>> path = render_report(load_comparison("runs/mnist1d-default-1a2b3c4d"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LectureOutput",
    "figure_data_uri",
    "find_lecture_outputs",
    "html_table",
    "markdown_to_html",
    "png_data_uri",
    "render_report",
]

_PROBLEMS = {
    "mnist1d": "MNIST-1D",
    "digits": "digits (8x8 images)",
    "moons": "two moons",
    "blobs": "Gaussian blobs",
    "regression": "1-D regression",
    "quadratic_deep": "DeepOBS quadratic_deep",
}
_MODELS = {
    "cnn": "CNN",
    "mlp": "MLP",
    "gru": "GRU",
    "digits_cnn": "CNN",
    "digits_mlp": "MLP",
    "logistic": "logistic regression",
    "linear": "linear model",
}

# Files and folders of the comparison itself, never shown as lecture outputs.
_OWN = {"report.html", "figures", "checkpoints"}

_CSS = """
:root { --ink:#1d2733; --muted:#5b6673; --line:#d9dee5; --accent:#0b63b5; --bg:#fbfcfd;
        --good:#1b7f3b; --bad:#b00020; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); background: var(--bg); margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid
     var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
.sub { color: var(--muted); margin: 0; }
.verdict { background: #eef5fc; border-left: 4px solid var(--accent); padding: 10px 14px;
           margin: 14px 0; }
.warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 10px 14px; margin: 14px 0; }
nav { font-size: 14px; margin: 8px 0 0; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
         vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr.best td { background: #eaf6ee; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.ci { color: var(--muted); font-weight: normal; font-size: 13px; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: white; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; max-width: 1000px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
pre, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
            font-size: 12.5px; }
pre { background: #f3f5f7; padding: 10px; overflow-x: auto; border: 1px solid var(--line); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
           overflow-wrap: anywhere; }
.ok { color: var(--good); } .no { color: var(--bad); } .bad { color: var(--bad); }
.cliff { color: #b35900; font-size: 13px; white-space: nowrap; }
ul.tight { margin: 0; padding-left: 18px; }
ol.protocol li { margin-bottom: 4px; }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; border-top: 1px solid
         var(--line); padding-top: 8px; }
"""


# ------------------------------------------------------------------------------------------
# building blocks


def png_data_uri(data: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_data_uri(
    fig: Any, *, dpi: int = 96, save_to: str | os.PathLike[str] | None = None
) -> str:
    """Render a matplotlib figure to PNG and return it as a ``data:`` URI.

    Args:
        fig: the figure.
        dpi: resolution.
        save_to: also write the PNG to this path.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    data = buf.getvalue()
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        Path(save_to).write_bytes(data)
    return png_data_uri(data)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    row_classes: Sequence[str] | None = None,
    text_columns: Sequence[int] = (0,),
    raw: bool = False,
) -> str:
    """An HTML table (cells escaped unless ``raw``; the first column left-aligned)."""
    head = "".join(
        f'<th class="{"text" if i in text_columns else ""}">{_e(c)}</th>'
        for i, c in enumerate(columns)
    )
    body = []
    for j, row in enumerate(rows):
        cls = f' class="{row_classes[j]}"' if row_classes and row_classes[j] else ""
        cells = "".join(
            f'<td class="{"text" if i in text_columns else "num"}">{c if raw else _e(c)}</td>'
            for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def markdown_to_html(text: str, *, base: Path | None = None) -> str:
    """A small Markdown subset to HTML: headings, pipe tables, bullet lists, images (local
    PNGs embedded from ``base``; others dropped), emphasis, inline code and paragraphs.

    Links become plain text: the report holds no links.
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(6, len(m.group(1)) + 2)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?\s*:?-{2,}", lines[i + 1])
        ):
            flush()
            head = _cells(line)
            i += 2
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append(html_table(head, [[_inline(c) for c in r] for r in rows], raw=True))
            continue
        m = re.match(r"^\s*!\[([^\]]*)\]\(([^)]+)\)\s*$", line)
        if m:
            flush()
            out.append(_embedded_image(m.group(2), m.group(1), base))
            i += 1
            continue
        if re.match(r"^\s*[-*]\s+", line):
            flush()
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                item = re.sub(r"^\s*[-*]\s+", "", lines[i])
                items.append(f"<li>{_inline(item)}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _inline(text: str) -> str:
    text = _e(text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links -> their text
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])[*_]([^*_]+)[*_](?![\w*])", r"<em>\1</em>", text)
    return text


def _embedded_image(src: str, alt: str, base: Path | None) -> str:
    if base is None or re.match(r"^[a-z]+:", src):
        return ""
    path = (base / src).resolve()
    if path.suffix.lower() != ".png" or not path.is_file():
        return ""
    return (
        f'<figure><img alt="{_e(alt)}" src="{png_data_uri(path.read_bytes())}">'
        f"<figcaption>{_e(alt)}</figcaption></figure>"
    )


# ------------------------------------------------------------------------------------------
# lecture experiments found in the run directory


@dataclass
class LectureOutput:
    """One lecture experiment's output found in a run directory.

    Attributes:
        title: its title.
        source: the file it was read from (relative to the run directory).
        html: its rendered HTML (table, checks, notes, figures).
        images: the PNG files it embedded (so they are not shown twice).
    """

    title: str
    source: str
    html: str
    images: set[Path] = field(default_factory=set)


def find_lecture_outputs(
    run_dir: str | os.PathLike[str], *, label_root: str | os.PathLike[str] | None = None
) -> list[LectureOutput]:
    """Lecture experiment outputs under ``run_dir`` (the comparison's own files excluded).

    ``label_root``: sources are named relative to it (default ``run_dir``).

    - ``<name>.json`` with ``title``, ``columns`` and ``rows`` (the lecture experiments'
      result files): title, table, checks (expected vs observed), notes, settings, and the PNG
      figures it lists in ``figures``;
    - a ``<name>.md`` beside such a JSON file is skipped (same content); other Markdown
      files are rendered;
    - PNG files not shown by any of the above are embedded with their file name.
    """
    root = Path(run_dir)
    if not root.is_dir():
        return []
    names_from = Path(label_root) if label_root is not None else root

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(names_from))
        except ValueError:
            return str(p)

    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not (set(p.relative_to(root).parts[:1]) & _OWN)
        and p.suffix.lower() in (".json", ".md", ".png")
    )
    outputs: list[LectureOutput] = []
    shown: set[Path] = set()
    json_stems: set[Path] = set()
    for p in files:
        if p.suffix.lower() != ".json":
            continue
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if not (isinstance(data, Mapping) and "columns" in data and "rows" in data):
            continue
        out = _render_result(data, p, rel(p))
        outputs.append(out)
        shown |= out.images
        json_stems.add(p.with_suffix(""))
    for p in files:
        if p.suffix.lower() == ".md" and p.with_suffix("") not in json_stems:
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            body = markdown_to_html(text, base=p.parent)
            imgs = {(p.parent / m).resolve() for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)}
            shown |= imgs
            outputs.append(LectureOutput(p.stem, rel(p), body, imgs))
    for p in files:
        if p.suffix.lower() == ".png" and p.resolve() not in shown:
            name = rel(p)
            body = (
                f'<figure><img alt="{_e(name)}" src="{png_data_uri(p.read_bytes())}">'
                f"<figcaption>{_e(name)}</figcaption></figure>"
            )
            outputs.append(LectureOutput(p.stem.replace("_", " "), name, body, {p.resolve()}))
    return outputs


def _render_result(data: Mapping[str, Any], path: Path, source: str) -> LectureOutput:
    title = str(data.get("title") or data.get("name") or path.stem)
    columns = [str(c) for c in data.get("columns", [])]
    rows = data.get("rows", [])
    parts = []
    if columns and isinstance(rows, list):
        body = []
        for r in rows:
            if isinstance(r, Mapping):
                body.append([_value(r.get(c)) for c in columns])
            elif isinstance(r, list):
                body.append([_value(v) for v in r])
        parts.append(html_table(columns, body))
    checks = data.get("checks") or {}
    if isinstance(checks, Mapping) and checks:
        items = "".join(
            f'<li><span class="{"ok" if ok else "no"}">{"✔" if ok else "✘"}</span> {_e(t)}</li>'
            for t, ok in checks.items()
        )
        parts.append(f"<p><strong>Expected (lectures) and observed:</strong></p><ul>{items}</ul>")
    for note in data.get("notes") or []:
        parts.append(f"<p>{_inline(str(note))}</p>")
    images: set[Path] = set()
    figs = data.get("figures") or {}
    if isinstance(figs, Mapping):
        for name, file in figs.items():
            p = (path.parent / str(file)).resolve()
            if p.suffix.lower() == ".png" and p.is_file():
                images.add(p)
                parts.append(
                    f'<figure><img alt="{_e(name)}" src="{png_data_uri(p.read_bytes())}">'
                    f"<figcaption>{_e(name)}</figcaption></figure>"
                )
    config = data.get("config") or {}
    seconds = data.get("seconds")
    if isinstance(config, Mapping) and config:
        settings = ", ".join(f"{k}={_value(v)}" for k, v in config.items())
        ran = f" Ran in {float(seconds):.1f} s." if isinstance(seconds, int | float) else ""
        parts.append(f'<p class="sub">Settings: {_e(settings)}.{ran}</p>')
    return LectureOutput(title, source, "\n".join(parts), images)


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


# ------------------------------------------------------------------------------------------
# the report


def _ci(ci: tuple[float, float, float], digits: int = 3) -> str:
    m, lo, hi = ci
    if not math.isfinite(m):
        return "-"
    return f'{m:.{digits}f} <span class="ci">[{lo:.{digits}f}, {hi:.{digits}f}]</span>'


def _setting(setting: Mapping[str, Any] | None) -> str:
    if not setting:
        return "-"
    parts = [f"{setting['lr']:.3g}"]
    parts += [
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in setting.items()
        if k != "lr"
    ]
    return " ".join(parts)


def _mean(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(sum(vals) / len(vals)) if vals else math.nan


def _results_table(cmp: Any) -> str:
    classification = cmp.task == "classification"
    conf = round(cmp.spec.confidence * 100)
    target = cmp.spec.target_accuracy if classification else None
    metric_name = "accuracy" if classification else "loss"
    cols = ["optimizer", "lr"]
    # Classification shows accuracy only (the test loss is in the figure below): a table
    # that fits the page beats one that scrolls.
    tuned = cmp.select_metric.split("/", 1)[1]  # the problem's own metric (accuracy, loss, rmse)
    rmse = tuned == "rmse"  # a problem scored by its RMSE shows the test RMSE
    cols.append(f"test {'rmse' if rmse else metric_name} [{conf}% t-interval], per seed")
    cols.append("vs the best, paired by seed")
    cols.append(f"tuning val {'acc' if tuned == 'accuracy' else tuned}")
    if target is not None:
        cols += [f"steps to {target:g} val acc", f"seconds to {target:g}"]
    cols.append("failed trials")
    ranked = cmp.ranking()
    ranking = {id(x["result"]): x for x in ranked}
    rows, classes = [], []
    for r in cmp.results:
        score = r.candidates[r.best].score if r.best is not None else math.nan
        lr = _e(_setting(r.best_setting))
        if r.choice.fixed_lr and r.best_setting is not None:
            lr += ' <span class="ci">(default, not tuned)</span>'
        if r.cliff:
            near = ", ".join(f"{v:.3g}" for v in r.cliff)
            lr += f' <span class="cliff" title="lr {near} failed">⚠ cliff: {near} failed</span>'
        row = [_e(r.choice.display), lr]
        values = r.test_rmse_seeds if rmse else r.test_values(classification)
        seeds = " ".join(f"{values[s]:.3f}" for s in sorted(values))
        per_seed = f'<br><span class="ci">{seeds}</span>' if seeds else ""
        summary = r.test_rmse if rmse else r.test_summary(classification)
        row.append(_ci(summary) + per_seed)
        rank = ranking.get(id(r))
        if rank is None:
            row.append("-")
        elif rank is ranked[0]:
            row.append("<strong>best</strong>")
        else:
            d, lo, hi, n = rank["diff"]
            what = "not distinguishable" if rank["tied"] else "worse"
            interval = f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" if math.isfinite(lo) else "1 seed"
            row.append(f'{what}<br><span class="ci">{interval}</span>')
        row.append("-" if not math.isfinite(score) else f"{score:.4f}")
        if target is not None:
            steps = [s for s in r.steps_to_target if s is not None]
            secs = [s for s in r.seconds_to_target if s is not None]
            n = len(r.steps_to_target)
            if n == 0:
                row += ["-", "-"]
            elif not steps:
                row += [f"not reached (0/{n})", "-"]
            else:
                row += [
                    f"{_mean(steps):.0f} <span class=ci>({len(steps)}/{n} seeds)</span>",
                    f"{_mean(secs):.1f}",
                ]
        failed = r.failed_tuning + r.failed_final
        total = r.n_tuning_trials + r.n_final_trials
        why = ", ".join(f"{n} {k}" for k, n in sorted(r.failures.items()))
        cell = f"{failed}/{total}"
        if why:
            cell = f'<span class="bad">{cell}</span><br><span class="ci">{_e(why)}</span>'
        row.append(cell)
        rows.append(row)
        classes.append("best" if rank is not None and rank["tied"] else "")
    return html_table(cols, rows, row_classes=classes, raw=True)


def _verdict(cmp: Any) -> str:
    text = f'<p class="verdict"><strong>Recommendation.</strong> {_e(cmp.recommendation())}</p>'
    warnings = cmp.warnings()
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        text += f'<div class="warn"><ul class="tight">{items}</ul></div>'
    return text


def _protocol(cmp: Any) -> str:
    s = cmp.spec
    folds = (
        f"{s.cv_folds}-fold cross-validation over training + validation data (scikit-learn's "
        f"{'Stratified' if cmp.task == 'classification' else ''}KFold, seed {s.split_seed})"
        if s.cv_folds
        else f"a holdout validation split ({s.val_fraction:.0%} of the training data, seed "
        f"{s.split_seed})"
    )
    if s.search == "grid":
        search = f"a coarse log grid of {s.trials} learning rates per optimizer"
        if s.refine:
            search += (
                f", extended one grid step at a time past an edge that wins (at most "
                f"{s.max_extend} beyond each end of the range), then refined half a step on "
                "either side of the best"
            )
    else:
        search = f"{s.trials} random draws (learning rate log-uniform)"
    if s.space:
        search += f", with {_e(json.dumps(s.space))}"
    fixed = [c.display for c in s.choices() if c.fixed_lr]
    if fixed:
        search += f"; {_e(', '.join(fixed))} kept at the default learning rate (not tuned)"
    metric = cmp.select_metric.split("/", 1)[1]
    seeds = ", ".join(map(str, s.final_seeds))
    tune_seeds = ", ".join(map(str, s.tuning_seeds))
    batch = "full batch" if s.batch_size is None else f"mini-batches of {s.batch_size}"
    chance = (
        f" ({cmp.chance:.3g} here)" if cmp.chance is not None and math.isfinite(cmp.chance) else ""
    )
    conf = round(s.confidence * 100)
    items = [
        f"<b>Tune</b> on validation data only: {search}, each trained {s.tune_length} steps "
        f"({batch}, seed{'s' if s.tune_seeds > 1 else ''} {tune_seeds}) and scored by its "
        f"final validation {metric} on {folds}. These runs hold no test example at all.",
        "<b>Count failures</b>: a trial fails when its loss goes non-finite, when its final "
        f"held-out {metric} is no better than chance{chance} (the most frequent class plus two "
        "standard errors; for regression, the loss of predicting the training mean), or when "
        "its final training loss is above its initial one.",
        f"<b>Select</b> the best mean validation {metric} per optimizer; a failed setting "
        "never wins (ties go to the smaller learning rate). A chosen rate next to a failed one "
        "is flagged as a cliff.",
        f"<b>Curve runs</b>: the chosen setting with {s.seeds} seeds ({seeds}), {s.steps} steps "
        "on the training split, evaluated on the validation "
        f"split every {s.curve_eval_every} steps: learning curves, time to target, and (first "
        "seed) the optimizer's monitor (update-to-parameter ratio).",
        f"<b>Refit</b> the chosen setting on training + validation data with the same "
        f"{s.seeds} seeds, {s.steps} steps; the test set is evaluated once, at the end of each "
        f"refit run. Means and Student's t-intervals ({conf}%) are over these seeds; each "
        "optimizer is compared with the best paired by seed (a t-interval of the per-seed "
        "differences: the same seed gives both the same initial weights and mini-batches), "
        "and those whose interval holds 0 are not distinguishable from it.",
    ]
    return '<ol class="protocol">' + "".join(f"<li>{i}</li>" for i in items) + "</ol>"


def _kv(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_kv_value(v))}</dd>" for k, v in items.items())
    return f'<dl class="kv">{rows}</dl>'


def _kv_value(v: Any) -> str:
    if isinstance(v, Mapping | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _config_section(cmp: Any) -> str:
    s = cmp.spec
    spec = s.to_dict()
    spec["optimizers"] = [
        f"{o['label']}: {o['optimizer']} {o['hyper'] or ''} lr range {o['lr_range']}".strip()
        for o in spec["optimizers"]
    ]
    parts = ["<h3>Configuration</h3>", _kv(spec)]
    rec = cmp.record
    if rec is not None:
        prov = dict(rec.provenance)
        shown = {}
        for key in ("versions", "git", "machine", "argv", "created", "task"):
            if key in prov:
                shown[key] = prov[key]
        sessions = prov.get("sessions", [])
        if sessions:
            shown["sessions"] = sessions
            total = sum(float(x.get("seconds", 0.0)) for x in sessions)
            shown["time spent (all sessions)"] = f"{total:.1f} s"
        shown["status"] = rec.status
        shown["run directory"] = str(cmp.run_dir)
        shown["store"] = str(cmp.store_path)
        parts += ["<h3>Provenance</h3>", _kv(shown)]
    return "\n".join(parts)


def _trials_section(cmp: Any) -> str:
    metric = cmp.select_metric.split("/", 1)[1]
    s = cmp.spec
    n = max((len(c.scores) for r in cmp.results for c in r.candidates), default=1)
    if n == 1:
        heads = [f"val {metric}"]
    else:
        folds = [f"fold {i}" for i in range(s.cv_folds)] if s.cv_folds else ["val"]
        seeds = [f"seed {x}" for x in s.tuning_seeds] if s.tune_seeds > 1 else [""]
        heads = [f"{f} {sd}".strip() + f" {metric}" for f in folds for sd in seeds][:n]
    cols = ["optimizer", "setting", *heads, "mean", "failed", "run ids"]
    rows, classes = [], []
    for r in cmp.results:
        lo, hi = r.choice.lr_range
        order = sorted(range(len(r.candidates)), key=lambda i: r.candidates[i].setting["lr"])
        for ci in order:
            c = r.candidates[ci]
            scores = [("-" if not math.isfinite(v) else f"{v:.4f}") for v in c.scores]
            lr = float(c.setting["lr"])
            where = "" if lo * (1 - 1e-6) <= lr <= hi * (1 + 1e-6) else " (extension)"
            failed = sorted({f for f in c.failures if f is not None})
            not_run = sum(st is None for st in c.statuses)
            rows.append(
                [
                    r.choice.display,
                    _setting(c.setting) + where,
                    *scores,
                    "-" if not math.isfinite(c.score) else f"{c.score:.4f}",
                    ", ".join(failed) or ("not run" if not_run else "-"),
                    ", ".join(str(i) for i in c.run_ids if i is not None),
                ]
            )
            classes.append("best" if ci == r.best else "")
    table = html_table(cols, rows, row_classes=classes, text_columns=(0, 1))
    total = sum(len(r.candidates) for r in cmp.results)
    return (
        f"<details><summary>All {total} tuning settings, by learning rate (chosen ones "
        f"highlighted)</summary>{table}</details>"
    )


def _figure(uri: str, caption: str, alt: str) -> str:
    return f'<figure><img alt="{_e(alt)}" src="{uri}"><figcaption>{caption}</figcaption></figure>'


def render_report(
    comparison: Any,
    *,
    store: Any = None,
    path: str | os.PathLike[str] | None = None,
    save_figures: bool = True,
) -> Path:
    """Write the comparison's self-contained HTML report.

    Args:
        comparison: a :class:`~descentlab.experiments.compare.Comparison`.
        store: its store (opened from the run directory if None).
        path: the output file (default ``<run dir>/report.html``).
        save_figures: also write each figure as PNG under ``<run dir>/figures/``.

    Returns:
        The report's path.

    Raises:
        ValueError: ``path`` is a folder (checked before anything is drawn).
    """
    from descentlab.report import compare_figures as CF
    from descentlab.store import Store

    out = Path(path) if path is not None else comparison.report_path
    if out.is_dir():
        raise ValueError(f"the report's path must be a file, got the folder {out}")
    own_store = store is None
    if own_store:
        store = Store(comparison.store_path)
    try:
        body = _body(comparison, store, CF, save_figures)
    finally:
        if own_store:
            store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written report behind
        raise
    return out


def _body(cmp: Any, store: Any, CF: Any, save_figures: bool) -> str:
    s = cmp.spec
    fig_dir = cmp.run_dir / "figures" if save_figures else None
    sections: list[tuple[str, str, str]] = []  # (id, title, html)

    def add_fig(name: str, make: Callable[[], Any], caption: str, alt: str) -> str:
        fig = make()
        if fig is None:
            return ""
        uri = figure_data_uri(fig, save_to=None if fig_dir is None else fig_dir / f"{name}.png")
        return _figure(uri, caption, alt)

    prov = cmp.record.provenance if cmp.record is not None else {}
    model = s.model or prov.get("model") or "default model"
    classification = cmp.task == "classification"
    metric = "accuracy" if classification else "loss"
    title = (
        f"Optimizer comparison: {_PROBLEMS.get(s.problem, s.problem.split('#', 1)[0])}, "
        f"{_MODELS.get(model, model)}"
    )

    results_html = [_verdict(cmp)]
    if not cmp.complete:
        results_html.append(
            '<p class="warn">This comparison is incomplete (it was stopped): rows without '
            "numbers have not finished. Run the same command again to continue.</p>"
        )
    results_html.append(_results_table(cmp))
    results_html.append(
        '<p class="sub">Test numbers come from the refit runs (trained on training + '
        "validation data, test set evaluated once at the end); validation numbers and times "
        "from the curve runs (trained on the training split). Highlighted rows are the best "
        "and those not distinguishable from it. Seconds are the first seed's curve run, which "
        "trains alone (the others share vectorized passes): wall-clock time on one core, "
        "including evaluations; they vary from machine to machine.</p>"
    )
    results_html.append(
        add_fig(
            "test_results",
            lambda: CF.final_results_figure(cmp, store),
            "Each optimizer at its chosen learning rate: the dot is the mean over seeds, the "
            "shaded bar the t-interval of the mean, ticks the individual seeds.",
            "test results per optimizer",
        )
    )
    sections.append(("results", "Results", "\n".join(results_html)))

    curves = [
        add_fig(
            "learning_curves",
            lambda: CF.learning_curves_figure(cmp, store),
            f"Training (solid) and validation (dashed) {metric} of the curve runs: mean over "
            f"{s.seeds} seeds, band = min-max over seeds. A widening gap between the two is "
            "overfitting.",
            "learning curves per optimizer",
        ),
        add_fig(
            "validation_overlay",
            lambda: CF.validation_overlay_figure(cmp, store),
            f"All optimizers on common axes: validation {metric} (left) and training loss "
            "(right, log scale).",
            "validation accuracy and training loss of all optimizers",
        ),
    ]
    sections.append(("curves", "Learning curves", "\n".join(curves)))

    sens = add_fig(
        "lr_sensitivity",
        lambda: CF.lr_sensitivity_figure(cmp, store),
        f"Final validation {metric} of every tuning trial against its learning rate (DeepOBS's "
        "tuneability picture). A flat, wide curve is an optimizer that is easy to tune; a "
        "narrow peak needs a careful search. Crosses are settings that failed (on the bottom "
        "edge: diverged); points between the coarse grid's are its refinement, points beyond "
        "it its extension.",
        "learning-rate sensitivity",
    )
    sections.append(("sensitivity", "Learning-rate sensitivity", sens))

    if classification and s.target_accuracy is not None:
        ttt = add_fig(
            "time_to_target",
            lambda: CF.time_to_target_figure(cmp, store),
            f"First evaluation at which validation accuracy reached {s.target_accuracy:g} "
            f"(evaluations every {s.curve_eval_every} steps, so steps are rounded up to that "
            "grid).",
            "time to target",
        )
        sections.append(("time", "Time to target", ttt))

    mon = add_fig(
        "update_ratio",
        lambda: CF.monitor_figure(cmp, store),
        "The optimizer monitor's update-to-parameter ratio ||Δθ|| / ||θ|| (all parameters), "
        f"recorded every {s.curve_eval_every} steps of the first seed's curve run. Around 1e-3 "
        "is the usual rule of thumb (Karpathy, cs231n); much larger means steps that jump "
        "around, much smaller a learning rate too low to move the weights.",
        "update-to-parameter ratio",
    )
    sections.append(("monitor", "Monitoring", mon or "<p>No monitor records.</p>"))

    lands = []
    for name, fig in CF.landscape_figures(cmp):
        uri = figure_data_uri(
            fig, save_to=None if fig_dir is None else fig_dir / f"landscape_{name}.png"
        )
        lands.append(
            _figure(
                uri,
                f"The same optimizers on the {name} landscape of seed 003 (cs231n's "
                "animation), from one start, with learning rates tuned for this terrain (a "
                "network's learning rate means nothing on a 2-D function). Left: paths over the "
                "contour map; right: loss along the path.",
                f"{name} landscape",
            )
        )
    if lands:
        sections.append(("landscapes", "The same optimizers on landscapes", "\n".join(lands)))

    lectures = find_lecture_outputs(cmp.run_dir)
    shared = cmp.run_dir.parent / "experiments"  # `descentlab experiment`'s default --out
    if shared.is_dir() and shared.resolve() != cmp.run_dir.resolve():
        lectures += find_lecture_outputs(shared, label_root=cmp.run_dir.parent)
    if lectures:
        parts = []
        for lec in lectures:
            parts.append(f"<h3>{_e(lec.title)}</h3>")
            parts.append(f'<p class="sub">from {_e(lec.source)}</p>')
            parts.append(lec.html)
        sections.append(("lectures", "Lecture experiments", "\n".join(parts)))

    book = cmp.run_dir.parent / "lectures" / "index.html"  # `descentlab lectures`' default
    if book.is_file():
        href = _e(os.path.relpath(book, cmp.run_dir))
        sections.append(("book", "Lecture book", f'<p>Every claim of the lectures, shown and '
                         f'checked: <a href="{href}">the lecture book</a>.</p>'))  # fmt: skip
    sections.append(("protocol", "Protocol", _protocol(cmp) + _trials_section(cmp)))
    sections.append(("config", "Configuration and provenance", _config_section(cmp)))

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    labels = ", ".join(r.choice.display for r in cmp.results)
    sub = (
        f"{len(cmp.results)} optimizers ({_e(labels)}), tuned on validation data, "
        f"{s.seeds} seeds each. Rendered {now} by descentlab."
    )
    footer = (
        f"descentlab {_e(_version())} · self-contained report (no external resources) ·\n"
        f"store: {_e(cmp.store_path.name)} in {_e(str(cmp.run_dir))}"
    )
    return report_page(title, sub, sections, footer)


def html_page(title: str, body: str, footer: str, *, css: str = _CSS) -> str:
    """A self-contained HTML page: ``title``, the inline ``css``, ``body`` and ``footer`` (both
    HTML) in the page's ``<main>``; the reports and the lecture book share it."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
<footer>{footer}</footer>
</main>
</body>
</html>
"""


def report_page(title: str, sub: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """A report page: a header (``title``, the ``sub`` line, a navigation bar) and one
    ``<section>`` per ``(id, heading, html)``."""
    nav = "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t, _ in sections)
    body = "\n".join(
        f'<section id="{sid}"><h2>{_e(t)}</h2>\n{content}</section>' for sid, t, content in sections
    )
    header = (
        f'<header>\n<h1>{_e(title)}</h1>\n<p class="sub">{sub}</p>\n<nav>{nav}</nav>\n</header>'
    )
    return html_page(title, f"{header}\n{body}", footer)


def _version() -> str:
    import descentlab

    return str(getattr(descentlab, "__version__", "?"))
