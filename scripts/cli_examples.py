"""The command line by example: one run of every command of ``descentlab --help``, made when
the documentation site is built, its output shown and checked.

``scripts/docs_hooks.py`` writes ``cli-examples.md`` from :func:`page`: each command of
:data:`EXAMPLES` runs in-process (``descentlab.cli.main``) in a fresh temporary folder, its
standard output is shown under ``$ descentlab ...`` and must exit 0 and contain the example's
expected line, or the site's build stops with one line naming the command (a page that shows
what this version prints, never a stale transcript). A test keeps the list complete: every
command of the parser has an example.

    python scripts/cli_examples.py            # print the page
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: command -> (its arguments, a line its output must contain, the lines shown at most)
EXAMPLES: dict[str, tuple[str, str, int]] = {
    "optimizers": ("optimizers adam", "chain: maximize -> add_l2 -> scale_by_adam", 12),
    "check-optimizer": ("check-optimizer adam --checks fused,groups", "ok   param groups", 4),
    "landscape": ("landscape --list", "global minimum: (2) -> 2", 8),
    "convarith": ("convarith alexnet", "conv1  3x227x227  96x55x55   34,848", 12),
    "figures": ("figures list", "seed003_ravine.png", 8),
    "experiment": ("experiment list", "sharpness: batch sizes on MNIST-1D", 8),
    "lectures": ("lectures --coverage", "131 items in 5 lectures.", 12),
    "train": (
        f"train --problem {ROOT / 'examples' / 'diabetes.py'}:make_problem --steps 20",
        "completed after 20 steps",
        12,
    ),
    "compare": (
        f"compare --problem {ROOT / 'examples' / 'diabetes.py'}:make_problem "
        "--optimizers sgd,adam --steps 40 --budget 2 --seeds 2",
        "runs/",
        16,
    ),
    "report": ("report RUN_DIR --table", "Adam", 12),
    "runs": ("runs RUN_DIR", "completed", 10),
    "scale": (
        "scale --problem moons --problem-option n_samples=400 --model mlp --sizes 4,8,16 "
        "--optimizers sgd,adam --steps 80 --budget 2 --seeds 3 --max-seeds 3 --landscapes none "
        "--no-progress",
        "size 3/3: hidden=16",
        16,
    ),
    "playground": ("playground --help", "--port PORT", 10),
}

#: what an example shows in place of the machine's own paths
_SHOWN = {str(ROOT) + os.sep: ""}


def run(args: str, cwd: Path) -> tuple[int, str]:
    """``descentlab ARGS`` in-process in ``cwd``: its exit status and standard output."""
    from descentlab.cli import main

    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(record=True),  # (the command's warnings are its stderr's)
        ):
            try:
                code = main(shlex.split(args))
            except SystemExit as exc:  # argparse's --help
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        os.chdir(old)
    return int(code or 0), out.getvalue()


def _run_dir(cwd: Path) -> str:
    """The run folder the compare example wrote (``runs/<name>``)."""
    found = sorted(p for p in (cwd / "runs").iterdir() if p.is_dir())
    return str(found[-1].relative_to(cwd)) if found else "runs"


def page() -> str:
    """The page (Markdown); a command that fails or prints no expected line stops it."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    out = [
        "# The command line by example",
        "",
        "Every command of `descentlab --help`, run when this site was built, in a fresh "
        "folder, with what it printed (long outputs cut; `...` marks the cut). The build "
        "checks that each exits 0 and prints the line it is expected to (`scripts/"
        "cli_examples.py`), so these outputs are this version's. The commands' options: "
        "[Command line](command-line.md).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name, (args, expected, lines) in EXAMPLES.items():
            args = args.replace("RUN_DIR", _run_dir(cwd)) if "RUN_DIR" in args else args
            code, text = run(args, cwd)
            if code != 0 or expected not in text:
                raise SystemExit(
                    f"cli_examples: `descentlab {args}` exited {code} or printed no "
                    f"{expected!r}: {text[-300:]!r}"
                )
            shown_args = args
            for k, v in _SHOWN.items():
                shown_args = shown_args.replace(k, v)
            rows = text.rstrip("\n").splitlines()
            body = "\n".join(rows[:lines] + (["..."] if len(rows) > lines else []))
            out += [f"## `{name}` {{ #{name} }}", "", "```console",
                    f"$ descentlab {shown_args}", body, "```", ""]  # fmt: skip
    return "\n".join(out)


#: A page's block run when the site is built: ``<!-- run: EXPECTED -->`` before a console
#: block whose first line is ``$ descentlab ARGS``; and a page's block that shows a file of the
#: checkout: ``<!-- file: PATH -->`` before a python block.
RUN_BLOCK = re.compile(
    r"(?P<head><!-- run: (?P<expected>[^\n]+?) -->\n```console\n\$ descentlab (?P<args>[^\n]+)\n)"
    r"(?P<body>.*?)(?=^```$)",
    re.DOTALL | re.MULTILINE,
)
FILE_BLOCK = re.compile(
    r"(?P<head><!-- file: (?P<path>[\w./-]+) -->\n```python\n)(?P<body>.*?)(?=^```$)",
    re.DOTALL | re.MULTILINE,
)
#: ``0``: leave a page's run blocks as written (the site's test; ``make docs`` runs them)
RUN_ENV = "DESCENTLAB_DOCS_RUN"


def run_blocks(markdown: str) -> str:
    """``markdown`` with each file block holding its file and each run block the output of its
    command, run in a fresh folder beside ``examples/``; a command that fails or prints no
    expected line stops the build with one line naming it."""
    markdown = FILE_BLOCK.sub(
        lambda m: m["head"] + (ROOT / m["path"]).read_text(encoding="utf-8"), markdown
    )
    if os.environ.get(RUN_ENV) == "0" or not RUN_BLOCK.search(markdown):
        return markdown

    def one(m: re.Match[str]) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "examples").symlink_to(ROOT / "examples")
            code, text = run(m["args"], Path(tmp))
        if code != 0 or m["expected"] not in text:
            raise SystemExit(
                f"docs: `descentlab {m['args']}` exited {code} or printed no "
                f"{m['expected']!r}: {text[-300:]!r}"
            )
        return m["head"] + text.rstrip("\n") + "\n"

    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return RUN_BLOCK.sub(one, markdown)


if __name__ == "__main__":
    print(page())
