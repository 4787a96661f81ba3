"""The project speaks of itself, not of how it was made: the code, the documentation, the
tests, the README and the CHANGELOG name no issue numbers, no sessions, waves or rounds of
work and no branches of its development; test files are named for what they protect; the
README links only to files inside the repository and tells a newcomer how to run
``descentlab`` after ``make demo``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".cpp", ".js", ".css", ".html", ".json", ".yml"}

#: (what it is, a pattern that finds it, a line that says it, a line that must pass)
WORDS = [
    ("an issue number", r"\bissues? ?#?\d+", "(issue 49, item 3)", "the issue of equal budgets"),
    (
        "an issue number",
        r"(\(|\b(in|see|of|by|from|per|and) )#\d+\b",
        "as reported in #48",
        "0.872 #1 (its rank)",
    ),
    ("an issue number", r"\(#\d+", "(#49 item 4)", "charlm#1a2b3c4d"),
    (
        "a session of work",
        r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|"
        r"tenth|eleventh|twelfth|this|that|the previous|the next|the helper|helper|other) "
        r"sessions? (of|in|on|that|while|worked|wrote|ended|ran)\b",
        "measured in the third session of the wave",
        "an earlier session of compare continues",
    ),
    (
        "a session of work",
        r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|"
        r"tenth|eleventh) session\b",
        "(fifth session)",
        "Parrot Deep Learning Session 03",
    ),
    (
        "a session of work",
        r"\bsessions? that (wrote|made|built)\b",
        "the sessions that wrote it",
        "a Ray session that is already initialised",
    ),
    (
        "a session of work",
        r"\b(in|from|during) this session\b",
        "measured in this session",
        "resumed in a new run of compare",
    ),
    (
        "a wave of work",
        r"\b(first|second|third|fourth|fifth|this|that|next|previous|the) "
        r"wave(s|'s)?\b",
        "the wave's start",
        "a sine wave of period 10",
    ),
    (
        "a round of work",
        r"\bround (one|two|three|four|five|six)\b",
        "round four finished",
        "each optimizer's first round of tuning",
    ),
    (
        "a round of work",
        r"\brounds? of (work|development)\b",
        "in one round of work",
        "10 rounds of 100k steps",
    ),
    ("a branch of development", r"\bbranch `?h\d+", "(branch h49b)", "on an NVIDIA H100"),
    (
        "a campaign of work",
        r"\b(the )?campaign(['’]s|_five|_six| (five|six|of round))\b",
        "the campaign's table",
        "a generated table of cases",
    ),
    ("the tracker's issue", r"\bthe issue's\b", "the issue's goal (2x)", "the run's goal"),
]


def _files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for top in ("src", "docs", "tests"):
        found += sorted(p for p in (ROOT / top).rglob("*")
                        if p.is_file() and p.suffix in TEXT_SUFFIXES)  # fmt: skip
    return [p for p in found if p.name != Path(__file__).name]  # (this table's examples)


def _hits(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.I)
    out = []
    for path in _files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if rx.search(line):
                out.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    return out


@pytest.mark.parametrize(("what", "pattern", "says", "passes"), WORDS,
                         ids=[f"{w[0]}: {w[2]}" for w in WORDS])  # fmt: skip
def test_no_word_of_how_the_project_was_made(what, pattern, says, passes):
    assert re.search(pattern, says, re.I), f"the pattern for {what} misses {says!r}"
    assert not re.search(pattern, passes, re.I), f"the pattern for {what} finds {passes!r}"
    hits = _hits(pattern)
    assert not hits, f"{len(hits)} lines name {what}:\n" + "\n".join(hits)


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_links_only_inside_the_repository():
    text = _readme()
    targets = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"(?m)^\[[^\]]+\]:\s*(\S+)", text)
    outside = [t for t in targets if re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]
    assert not outside, f"the README links outside the repository: {outside}"
    root = ROOT.resolve()
    for target in targets:
        path = target.split("#", 1)[0]
        if not path:
            continue
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(root), f"{target} leaves the repository"
        assert resolved.exists(), f"{target} does not exist in the repository"
    # a path named in the text (not a link) that leaves the repository
    assert not re.findall(r"(?<![\w.])\.\./\S*", text), "the README names a path outside it"


def test_the_readme_says_how_to_run_descentlab_after_make_demo():
    text = _readme()
    demo = text.index("make demo")
    first_command = re.search(r"(?m)^descentlab ", text)
    assert first_command is not None
    for way in (". .venv/bin/activate", ".venv/bin/descentlab"):
        at = text.find(way)
        assert at != -1, f"the README does not say {way!r}"
        assert demo < at < first_command.start(), f"{way!r} is not between make demo and use"


def test_the_changelog_is_by_release():
    """``## [Unreleased]`` first, then ``## [X.Y.Z] - YYYY-MM-DD`` releases, newest first, each
    with Keep a Changelog's kinds of change."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"(?m)^## (.*)$", text)
    assert releases and releases[0] == "[Unreleased]", releases[:1]
    dated = [
        re.fullmatch(r"\[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})", r) for r in releases[1:]
    ]
    assert all(dated), [r for r, m in zip(releases[1:], dated, strict=True) if not m]
    versions = [tuple(map(int, m.groups()[:3])) for m in dated]
    dates = [m.group(4) for m in dated]
    assert versions == sorted(versions, reverse=True) and dates == sorted(dates, reverse=True)
    kinds = set(re.findall(r"(?m)^### (.*)$", text))
    allowed = {
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
        "Known limitations",
    }
    assert kinds <= allowed, kinds - allowed


#: what a test file's name says when it names how the project was made, not what it protects
_MADE = re.compile(r"(^|_)(round|campaign|issues?|wave)(_|$)|_fixes$", re.I)


def test_test_files_are_named_for_what_they_protect():
    named = sorted(p.name for p in (ROOT / "tests").rglob("test_*.py") if _MADE.search(p.stem))
    assert not named, f"test files named for how the project was made: {named}"
    assert _MADE.search("test_round_five") and _MADE.search("test_compare_figures_fixes")
    assert not _MADE.search("test_launcher_signals")
