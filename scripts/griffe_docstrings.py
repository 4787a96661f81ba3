"""The API reference's docstrings as the site renders them (a Griffe extension that
``mkdocs.yml``'s mkdocstrings options load).

The sources keep Sphinx's markup, which ``help()`` and editors read; the site would show it raw
(``:class: ~descentlab.optim.scale_by_adam``). Before mkdocstrings renders a docstring:

- a role (``:class:`~descentlab.optim.Adam```, ``:func:``, ``:mod:``, ``:meth:``, ``:attr:``,
  ``:data:``, ``:exc:``, ``:obj:``) becomes a cross-reference to the object's entry, as code
  (``<autoref ... optional>``: a link where the site documents the object, else the code
  alone, never a broken link);
- ``:math:`x``` becomes ``$x$`` and a ``.. math::`` block a ``$$ ... $$`` block, which
  pymdownx.arithmatex keeps apart from Markdown and ``docs_hooks.py`` writes as MathML (the
  browser draws it: no script, no network);
- ``.. note::`` becomes ``Note:``;
- each run of doctest lines (``>>>``, ``...`` and the output up to a blank line or a line
  indented less) becomes a fenced ``pycon`` block: an ``Example:`` section is rendered as
  Markdown, where ``>>>`` would open three nested quotes and its lines run into one paragraph
  (an ``Examples:`` section is griffe's own, whose doctests it highlights: left as it is).

``scripts/site_text.py`` checks the built site for any role or ``:math:`` left raw.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

#: a Sphinx cross-reference role: ``:class:`~pkg.mod.Name```, ``:meth:`text <target>```
ROLE = re.compile(
    r":(?:py:)?(?:class|mod|func|meth|attr|data|obj|exc|const|ref):`(?P<tilde>~?)"
    r"(?P<text>[^`<]*?)\s*(?:<(?P<target>[^>`]+)>)?`"
)
#: inline math: ``:math:`x```
MATH = re.compile(r":math:`(?P<tex>[^`]+)`")
#: a math block's first line (its content may begin on it)
MATH_BLOCK = re.compile(r"^(?P<indent>\s*)\.\. math::\s*(?P<first>.*)$")
NOTE = re.compile(r"^(?P<indent>\s*)\.\. note::\s*", re.M)


def _target(obj: griffe.Object, name: str) -> str:
    """The full path of ``name`` as ``obj``'s docstring means it (best effort: absolute
    names as they are, else relative to the object's class or module)."""
    name = name.strip().lstrip(".")
    if name.startswith("descentlab.") or name == "descentlab":
        return name
    for scope in (obj, obj.parent, obj.module):
        if scope is None:
            continue
        try:
            return scope.resolve(name.split(".")[0]) + name[len(name.split(".")[0]) :]
        except Exception:  # (not a name in that scope)
            continue
    return f"{obj.module.path}.{name}"


def roles_to_refs(text: str, obj: griffe.Object) -> str:
    """``text`` with each Sphinx role a cross-reference (code) and its math in ``$``."""

    def ref(m: re.Match[str]) -> str:
        target = (m.group("target") or m.group("text")).strip().rstrip("()")
        shown = m.group("text").strip() or target
        if m.group("tilde"):
            shown = shown.rsplit(".", 1)[-1]
        full = _target(obj, target.lstrip("~"))
        return f'<autoref identifier="{full}" optional><code>{shown}</code></autoref>'

    text = ROLE.sub(ref, text)
    return MATH.sub(lambda m: f"${m.group('tex').strip()}$", text)


def math_blocks(text: str) -> str:
    """Each ``.. math::`` block as ``$$ ... $$`` (blank lines around it), at its indent."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = MATH_BLOCK.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        body = [m.group("first")] if m.group("first").strip() else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        tex = " ".join(b for b in body if b)
        out += ["", f"{indent}$$", f"{indent}{tex}", f"{indent}$$", ""]
    return "\n".join(out)


#: a doctest's first line; griffe's own ``Examples:`` section
DOCTEST = re.compile(r"^(?P<indent>[ \t]*)>>> ")
EXAMPLES = re.compile(r"^(?P<indent>[ \t]*)Examples:\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def doctest_blocks(text: str) -> str:
    """Each run of doctest lines in ``text`` as a fenced ``pycon`` block at its indent, but
    in an ``Examples:`` section."""
    lines = text.split("\n")
    out: list[str] = []
    examples = None  # the indent of the Examples: section we are in
    i = 0
    while i < len(lines):
        line = lines[i]
        if examples is not None and line.strip() and _indent(line) <= examples:
            examples = None
        m_ex = EXAMPLES.match(line)
        if m_ex:
            examples = len(m_ex.group("indent"))
        m = DOCTEST.match(line)
        if m is None or examples is not None:
            out.append(line)
            i += 1
            continue
        indent = m.group("indent")
        block = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= len(indent):
            block.append(lines[i])
            i += 1
        out += [f"{indent}```pycon", *block, f"{indent}```"]
    return "\n".join(out)


def site_docstring(text: str, obj: griffe.Object) -> str:
    """A docstring as the site renders it (:func:`math_blocks`, :func:`doctest_blocks`,
    :func:`roles_to_refs`)."""
    text = NOTE.sub(lambda m: f"{m.group('indent')}Note: ", math_blocks(doctest_blocks(text)))
    return roles_to_refs(text, obj)


class SiteDocstrings(griffe.Extension):
    """Rewrite every loaded object's docstring for the site (:func:`site_docstring`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = site_docstring(obj.docstring.value, obj)
