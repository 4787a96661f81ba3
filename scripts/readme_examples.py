"""Regenerate the console examples of the README and the docs pages from the code that prints
them.

Each example is a block of ``README.md`` or of a page ``docs/*.md``::

    <!-- example: NAME -->
    ```console
    $ descentlab compare ...
    (what the command printed)
    ```

Run ``python scripts/readme_examples.py`` (all examples) or ``... NAME`` (one): each command
runs from a fresh temporary folder (so the run directories it prints are ``runs/...``), its
standard output is stored as ``tests/data/readme_examples/NAME.txt`` and written into the
block, on whichever page holds it. ``tests/test_readme_examples.py`` checks that every block is
its stored output and every stored output was made by the command the block shows, so the
pages cannot drift from what this version prints without this script being run again.
``--check`` only compares (exit 1 on a difference). The ``--problems default`` example takes
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
STORED = ROOT / "tests" / "data" / "readme_examples"

#: name -> the command as its page shows it
EXAMPLES: dict[str, str] = {
    "diabetes": (
        "descentlab compare --problem examples/diabetes.py:make_problem "
        "--optimizers sgd,momentum,adam --steps 300 --report"
    ),
    # the default budget (20 trials per optimizer) takes about 4 times as long
    "suite": "descentlab compare --problems default --budget 5 --report",
}

BLOCK = re.compile(
    r"(<!-- example: (?P<name>[\w-]+) -->\n```console\n)(?P<body>.*?)(\n```)", re.DOTALL
)


def pages() -> list[Path]:
    """The pages that may hold example blocks: the README and the docs pages."""
    return [README, *sorted(DOCS.glob("*.md"))]


def blocks(text: str) -> dict[str, str]:
    """A page's example blocks: ``{name: body}`` (the ``$ command`` line and output)."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def where() -> dict[str, Path]:
    """Each example block's name and the page that holds it."""
    return {name: page for page in pages() for name in blocks(page.read_text(encoding="utf-8"))}


def body(name: str, output: str) -> str:
    return f"$ {EXAMPLES[name]}\n{output.rstrip()}"


def run(name: str) -> str:
    """Run one example from a fresh folder; its standard output."""
    argv = shlex.split(EXAMPLES[name])
    assert argv[0] == "descentlab"
    with tempfile.TemporaryDirectory(prefix="descentlab-readme-") as tmp:
        for rel in ("examples",):  # the files the commands name, at the same relative paths
            os.symlink(ROOT / rel, Path(tmp) / rel)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DESCENTLAB_QUIET": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "descentlab", *argv[1:], "--no-progress"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{EXAMPLES[name]} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def write(name: str, output: str) -> None:
    STORED.mkdir(parents=True, exist_ok=True)
    (STORED / f"{name}.txt").write_text(output.rstrip() + "\n", encoding="utf-8")
    page = where().get(name)
    if page is None:
        raise SystemExit(f"no page has a block '<!-- example: {name} -->'")
    text = page.read_text(encoding="utf-8")
    found = False

    def replace(m: re.Match[str]) -> str:
        nonlocal found
        if m["name"] != name:
            return m.group(0)
        found = True
        return m.group(1) + body(name, output) + m.group(4)

    new = BLOCK.sub(replace, text)
    assert found
    page.write_text(new, encoding="utf-8")


def check() -> list[str]:
    """What differs between the pages' blocks and the stored outputs (empty: nothing)."""
    found = {}
    for page in pages():
        for name, text in blocks(page.read_text(encoding="utf-8")).items():
            found[name] = (page, text)
    problems = []
    for name in EXAMPLES:
        stored = STORED / f"{name}.txt"
        if name not in found:
            problems.append(f"no page has a block for {name!r}")
        elif not stored.is_file():
            problems.append(f"no stored output {stored}")
        elif found[name][1] != body(name, stored.read_text(encoding="utf-8")):
            problems.append(f"{found[name][0].name}'s {name!r} block is not {stored.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"examples (default all: {', '.join(EXAMPLES)})")
    parser.add_argument("--check", action="store_true", help="compare only")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "the examples match their stored outputs")
        return 1 if problems else 0
    for name in args.names or list(EXAMPLES):
        if name not in EXAMPLES:
            parser.error(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
        print(f"running {EXAMPLES[name]}", file=sys.stderr)
        write(name, run(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
