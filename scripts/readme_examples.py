"""Regenerate the README's console examples from the code that prints them.

Each example is a README block::

    <!-- example: NAME -->
    ```console
    $ descentlab compare ...
    (what the command printed)
    ```

Run ``python scripts/readme_examples.py`` (all examples) or ``... NAME`` (one): each command
runs from a fresh temporary folder (so the run directories it prints are ``runs/...``), its
standard output is stored as ``tests/data/readme_examples/NAME.txt`` and written into the
README block. ``tests/test_readme_examples.py`` checks that every block is its stored output
and every stored output was made by the command the block shows, so the README cannot drift
from what this version prints without this script being run again. ``--check`` only compares
(exit 1 on a difference). The ``--problems default`` example takes minutes on 2 cores.
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
STORED = ROOT / "tests" / "data" / "readme_examples"

#: name -> the command as the README shows it
EXAMPLES: dict[str, str] = {
    "diabetes": (
        "descentlab compare --problem examples/diabetes.py:make_problem "
        "--optimizers sgd,momentum,adam --steps 300"
    ),
    # the default budget (20 trials per optimizer) takes about 4 times as long
    "suite": "descentlab compare --problems default --budget 5",
}

BLOCK = re.compile(
    r"(<!-- example: (?P<name>[\w-]+) -->\n```console\n)(?P<body>.*?)(\n```)", re.DOTALL
)


def blocks(text: str) -> dict[str, str]:
    """The README's example blocks: ``{name: body}`` (the ``$ command`` line and output)."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


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
    text = README.read_text(encoding="utf-8")
    found = False

    def replace(m: re.Match[str]) -> str:
        nonlocal found
        if m["name"] != name:
            return m.group(0)
        found = True
        return m.group(1) + body(name, output) + m.group(4)

    new = BLOCK.sub(replace, text)
    if not found:
        raise SystemExit(f"README.md has no block '<!-- example: {name} -->'")
    README.write_text(new, encoding="utf-8")


def check() -> list[str]:
    """What differs between the README's blocks and the stored outputs (empty: nothing)."""
    found = blocks(README.read_text(encoding="utf-8"))
    problems = []
    for name in EXAMPLES:
        stored = STORED / f"{name}.txt"
        if name not in found:
            problems.append(f"README.md has no block for {name!r}")
        elif not stored.is_file():
            problems.append(f"no stored output {stored}")
        elif found[name] != body(name, stored.read_text(encoding="utf-8")):
            problems.append(f"README.md's {name!r} block is not {stored.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"examples (default all: {', '.join(EXAMPLES)})")
    parser.add_argument("--check", action="store_true", help="compare only")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "README examples match their stored outputs")
        return 1 if problems else 0
    for name in args.names or list(EXAMPLES):
        if name not in EXAMPLES:
            parser.error(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
        print(f"running {EXAMPLES[name]}", file=sys.stderr)
        write(name, run(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
