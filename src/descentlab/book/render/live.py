"""A figure computed in the page: sliders that move continuously, the curves recomputed by the
page's own script at every position (no server, no precomputed frames: it works from a file).

A :class:`Live` figure carries its computation as a short JavaScript function of the
sliders' values (the same recursion or update the chapter runs with descentlab) and
*probes*: settings at which the build computed the same values with descentlab. When the page
opens, its script evaluates the function at every probe and says beside the figure whether
it agrees (✔, with the largest gap) or not (✘): the figure a reader moves is checked against
the library in the reader's browser.

The function returns ``{panels: [...], values: {...}, text: "...", why: {...}}``: each panel a
dict with ``x``, ``y`` (``{label, log}``, optional ``min``/``max``) and ``lines`` (``{x, y,
label, dash, colour, dots}``); ``values`` the numbers the probes compare; ``text`` a line shown
under the sliders. Nothing is clipped: an axis' ``max`` (and a linear axis' ``min``) widens to
take in every finite value, so a diverging curve stays in sight; a log axis keeps its ``min``
as a floor (values under it lie on it, its tick reads ``≤``). A labelled line that converges
then blows up (on a log axis, its envelope -- its largest value in each fifth of the run --
ends over 100 times above its lowest fifth and above a tenth of its start; on any axis, it
turns non-finite) is *diverging*: the engine circles where it turned and the readout says so,
with the figure's reason for it, ``why[label]`` (a sentence the function computes from its
run: what grew, past which bound); a figure that lets a line diverge without a reason says
"the figure gives no reason", which the book's tests refuse. ``p`` also holds the figure's
``constants`` (its data, its number of steps). The
script gives it a few helpers: ``seq(n)`` (0 .. n-1), ``solve(A, b)`` (Gaussian elimination)
and ``fmt(v)``.

Example:
    >>> fig = Live("heavy ball", [Slider("lr", "η", 0.1, 2.0, 1.0)],
    ...            "function (p) { return {panels: [], values: {two: 2 * p.lr}}; }",
    ...            [Probe({"lr": 1.0}, {"two": 2.0})])
    >>> 'type="range"' in live_html(fig, "f1") and 'step="any"' in live_html(fig, "f1")
    True
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field

__all__ = ["LIVE_JS", "Live", "Probe", "Slider", "live_html"]


@dataclass(frozen=True)
class Slider:
    """A setting the reader moves: its name in the function's ``p``, its label, its range and
    first value; ``integer`` moves in whole steps (still recomputed at every one), ``log``
    moves the exponent (the slider spans ``log10(lo)`` to ``log10(hi)``)."""

    name: str
    label: str
    lo: float
    hi: float
    value: float
    integer: bool = False
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"slider {self.name}: lo < hi needed, got {self.lo}, {self.hi}")
        if not self.lo <= self.value <= self.hi:
            raise ValueError(f"slider {self.name}: value must be in [lo, hi], got {self.value}")
        if self.log and self.lo <= 0:
            raise ValueError(f"slider {self.name}: a log slider needs lo > 0, got {self.lo}")


@dataclass(frozen=True)
class Probe:
    """A setting (slider name -> value) and the values descentlab computed there, which the
    page's function must reproduce within ``tol`` (relative)."""

    params: dict[str, float]
    values: dict[str, float]
    tol: float = 1e-9


@dataclass(frozen=True)
class Live:
    """A figure computed in the page (see the module's docstring)."""

    caption: str
    sliders: list[Slider]
    js: str
    probes: list[Probe] = field(default_factory=list)
    #: what computed the probes' values, as the self-check names it
    against: str = "descentlab"
    #: fixed values the function reads from ``p`` beside the sliders (data, step counts)
    constants: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {s.name for s in self.sliders}
        if not self.probes:
            raise ValueError("a live figure needs at least one probe: its check against descentlab")
        for pr in self.probes:
            if set(pr.params) != names:
                raise ValueError(f"a probe must set every slider {sorted(names)}, got {pr.params}")


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _input(s: Slider) -> str:
    lo, hi, v = (math.log10(s.lo), math.log10(s.hi), math.log10(s.value)) if s.log else (
        s.lo, s.hi, s.value)  # fmt: skip
    step = "1" if s.integer else "any"
    return (
        f'<label>{_e(s.label)} <input type="range" name="{_e(s.name)}" min="{lo!r}" '
        f'max="{hi!r}" step="{step}" value="{v!r}" data-log="{int(s.log)}" '
        f'aria-label="{_e(s.label)}"> <output></output></label>'
    )


def live_html(fig: Live, ident: str, caption_html: str = "") -> str:
    """The figure's HTML: sliders, an SVG the script draws, its readout and self-check line
    (``caption_html``: the caption already rendered, else ``fig.caption`` escaped)."""
    probes = [{"p": p.params, "values": p.values, "tol": p.tol} for p in fig.probes]
    return (
        f'<figure class="live" id="{_e(ident)}" data-probes="{_e(json.dumps(probes))}" '
        f'data-against="{_e(fig.against)}" data-consts="{_e(json.dumps(fig.constants))}">'
        f'<div class="move">{"".join(_input(s) for s in fig.sliders)}</div>'
        '<svg role="img" aria-label="a figure computed in the page" '
        'xmlns="http://www.w3.org/2000/svg"></svg><p class="readout"></p>'
        '<p class="selfcheck">(the page\'s script checks this figure against descentlab when '
        "it runs)</p>"
        f"<figcaption>{caption_html or _e(fig.caption)} (computed in the page as you move "
        "it: no server, no precomputed frames)</figcaption>"
        f"<script>LIVE[{json.dumps(ident)}] = {fig.js};</script></figure>"
    )


#: The page's engine for live figures: the helpers, the plotting into SVG, the sliders and
#: the self-check against the probes. ``LIVE`` is declared before the figures' own scripts.
LIVE_HEAD = "<script>var LIVE = {};</script>"

LIVE_JS = r"""
function seq(n) { var a = []; for (var i = 0; i < n; i++) a.push(i); return a; }
function fmt(v) { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ?
  v.toExponential(2) : String(Number(v.toPrecision(3))); }
function solve(A, b) {
  var n = b.length, M = A.map(function (r, i) { return r.slice().concat([b[i]]); });
  for (var c = 0; c < n; c++) {
    var piv = c;
    for (var r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[piv][c])) piv = r;
    var t = M[c]; M[c] = M[piv]; M[piv] = t;
    for (var r2 = c + 1; r2 < n; r2++) {
      var f = M[r2][c] / M[c][c];
      for (var k = c; k <= n; k++) M[r2][k] -= f * M[c][k];
    }
  }
  var x = new Array(n);
  for (var i = n - 1; i >= 0; i--) {
    var s = M[i][n];
    for (var j = i + 1; j < n; j++) s -= M[i][j] * x[j];
    x[i] = s / M[i][i];
  }
  return x;
}
var COLOURS = ['#D55E00', '#0072B2', '#009E73', '#CC79A7', '#555555', '#E69F00'];
function drawPanel(g, panel, x0, w, h) {
  var NS = 'http://www.w3.org/2000/svg', L = 62, B = 30, W = w - L - 10, H = h - B - 10;
  function tick(e) {
    return Math.abs(e - Math.round(e)) < 0.05 ? '1e' + Math.round(e) : fmt(Math.pow(10, e));
  }
  function tr(v, ax) { return ax.log ? Math.log10(Math.max(v, 1e-300)) : v; }
  function shown(v, ax) { return isFinite(v) && (!ax.log || v > 0); }
  function ext(ax, key) {
    var lo = Infinity, hi = -Infinity;
    panel.lines.forEach(function (ln) {
      ln[key].forEach(function (v) {
        if (shown(v, ax)) { lo = Math.min(lo, tr(v, ax)); hi = Math.max(hi, tr(v, ax)); }
      });
    });
    if (ax.min !== undefined) lo = ax.log || !(lo < tr(ax.min, ax)) ? tr(ax.min, ax) : lo;
    if (ax.max !== undefined) hi = Math.max(isFinite(hi) ? hi : -Infinity, tr(ax.max, ax));
    if (!(hi > lo)) hi = lo + 1;
    return [lo, hi];
  }
  var ex = ext(panel.x, 'x'), ey = ext(panel.y, 'y');
  function px(v) { return x0 + L + (tr(v, panel.x) - ex[0]) / (ex[1] - ex[0]) * W; }
  function py(v) {  // under a log axis' floor: on the floor (its tick says so)
    var t = (tr(v, panel.y) - ey[0]) / (ey[1] - ey[0]);
    return 10 + (1 - Math.min(Math.max(t, 0), 1)) * H;
  }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    g.appendChild(e);
    return e;
  }
  function label(x, y, text, size, anchor, more) {
    return el('text', Object.assign({x: x, y: y, 'font-size': size, 'text-anchor': anchor},
                                    more || {}), text);
  }
  el('rect', {x: x0 + L, y: 10, width: W, height: H, fill: 'none', stroke: '#999'});
  [0, 0.5, 1].forEach(function (f) {
    var vx = ex[0] + f * (ex[1] - ex[0]), vy = ey[0] + f * (ey[1] - ey[0]);
    label(x0 + L + f * W, h - B + 14, panel.x.log ? tick(vx) : fmt(vx), 10,
          f === 0 ? 'start' : f === 1 ? 'end' : 'middle');
    label(x0 + L - 4, 10 + (1 - f) * H + 3, (f === 0 && panel.y.log && panel.y.min !== undefined
      ? '≤' : '') + (panel.y.log ? tick(vy) : fmt(vy)), 10, 'end');
  });
  var mid = 10 + (h - B) / 2;
  label(x0 + L + (w - L) / 2, h - 3, panel.x.label, 11, 'middle');
  label(x0 + 12, mid, panel.y.label, 11, 'middle',
        {transform: 'rotate(-90 ' + (x0 + 12) + ' ' + mid + ')'});
  panel.lines.forEach(function (ln, i) {
    var pts = [], c = ln.colour || COLOURS[i % COLOURS.length];
    for (var k = 0; k < ln.x.length; k++) {
      if (!shown(ln.x[k], panel.x) || !shown(ln.y[k], panel.y)) continue;
      var X = px(ln.x[k]).toFixed(1), Y = py(ln.y[k]).toFixed(1);
      if (ln.dots) el('circle', {cx: X, cy: Y, r: 3, fill: c});
      else pts.push(X + ',' + Y);
    }
    if (!ln.dots) {
      el('polyline', {points: pts.join(' '), fill: 'none', stroke: c, 'data-line': i,
                      'stroke-width': ln.width || 1.5,
                      'stroke-dasharray': ln.dash ? '5 3' : 'none'});
    }
    if (ln.label) label(x0 + w - 16, 24 + 13 * i, ln.label, 10, 'end', {fill: c});
    var d = diverges(ln, panel.y);
    if (d && shown(ln.x[d.from], panel.x) && shown(ln.y[d.from], panel.y)) {
      var DX = px(ln.x[d.from]), DY = py(ln.y[d.from]);
      el('circle', {cx: DX.toFixed(1), cy: DY.toFixed(1), r: 5, fill: 'none', stroke: c,
                    'stroke-width': 2, 'data-diverges': i});
      label(DX + 6, DY - 6, 'diverges', 10, 'start', {fill: c});
    }
  });
}
// A line diverges when it turns non-finite after finite values, or, on a log axis (a size:
// a loss, an error; a coordinate on a linear one crosses zero), when its envelope (its largest
// value in each fifth of the run: an oscillation's dips are no progress) ends more than 100
// times above its lowest fifth and above a tenth of its start (it lost its progress):
// {from: the index of the lowest point of its lowest fifth, last: its last value, at: its
// index}.
function diverges(ln, ax) {
  var y = ln.y, n = y.length, last = n - 1, k;
  if (ln.dots || !n || !ln.label || !isFinite(y[0])) return null;
  for (k = 0; k < n; k++) if (!isFinite(y[k])) { last = k; break; }
  if (isFinite(y[last]) && !ax.log) return null;
  var size = Math.max(1, Math.ceil(last / 5)), env = [], lows = [];
  for (var b = 0; b * size <= last; b++) {
    var top = 0, low = b * size;
    for (k = b * size; k < Math.min((b + 1) * size, last + 1); k++) {
      if (!isFinite(y[k])) { top = Infinity; continue; }
      top = Math.max(top, Math.abs(y[k]));
      if (Math.abs(y[k]) < Math.abs(y[low])) low = k;
    }
    env.push(top); lows.push(low);
  }
  var best = 0;
  for (k = 1; k < env.length; k++) if (env[k] < env[best]) best = k;
  var end = env[env.length - 1];
  if (!(end > 100 * env[best] && end > 0.1 * Math.abs(y[0]))) return null;
  return {from: lows[best], last: y[last], at: last};
}
// A run's panel (its x axis counts steps, iterations, epochs or examples drawn: a path's
// coordinates are no size) whose linear y axis holds a labelled line of positive values that
// falls geometrically (its log straight in x: R² of at least 0.95 over at least a factor 3),
// or labelled lines spanning more than a decade, has the wrong scale (the rule of the book's
// drawn figures): its geometric phase lies flat on zero. Returns what it says so, or ''.
function linearButGeometric(panel) {
  if (panel.y.log || !/step|iteration|epoch|examples/i.test(panel.x.label || '')) return '';
  var lo = Infinity, hi = 0, said = '';
  panel.lines.forEach(function (ln) {
    if (ln.dots || !ln.label || said) return;
    var xs = [], ys = [];
    for (var k = 0; k < ln.y.length; k++) {
      if (!isFinite(ln.y[k]) || !isFinite(ln.x[k])) continue;
      if (ln.y[k] <= 0) { xs = null; break; }
      xs.push(ln.x[k]); ys.push(Math.log10(ln.y[k]));
    }
    if (!xs || xs.length < 4) return;
    var n = xs.length, mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0, k2;
    for (k2 = 0; k2 < n; k2++) { mx += xs[k2] / n; my += ys[k2] / n; }
    for (k2 = 0; k2 < n; k2++) {
      sxy += (xs[k2] - mx) * (ys[k2] - my); sxx += (xs[k2] - mx) * (xs[k2] - mx);
      syy += (ys[k2] - my) * (ys[k2] - my);
      lo = Math.min(lo, ys[k2]); hi = Math.max(hi, ys[k2]);
    }
    var range = Math.max.apply(null, ys) - Math.min.apply(null, ys);
    var r2 = sxx > 0 && syy > 0 ? sxy * sxy / (sxx * syy) : 0;
    if (range >= Math.log10(3) && r2 >= 0.95)
      said = '“' + ln.label + '” falls geometrically on a linear axis (' + panel.y.label +
             ', R² = ' + r2.toFixed(2) + ')';
  });
  if (!said && hi - lo > 1)
    said = panel.y.label + ' spans ' + (hi - lo).toFixed(1) + ' decades on a linear axis';
  return said;
}
// What the readout says of every diverging line of the figure: where it turned and why (the
// figure's own reason for that line: out.why[label], computed from its run; else it says it
// gives none, which the book's tests refuse).
function divergenceText(out) {
  var found = {}, order = [], lines = [];
  out.panels.forEach(function (panel) {  // a line's loss panel (a log axis) before its path
    panel.lines.forEach(function (ln) {
      var d = diverges(ln, panel.y), had = found[ln.label];
      if (!d || (had && (had.panel.y.log || !panel.y.log))) return;
      if (!had) order.push(ln.label);
      found[ln.label] = {panel: panel, ln: ln, d: d};
    });
  });
  order.forEach(function (label) {
    var f = found[label], ln = f.ln, d = f.d, why = (out.why || {})[label];
    lines.push(label + ' diverges: ' + f.panel.y.label + ' ' + fmt(ln.y[d.from]) + ' at ' +
               f.panel.x.label + ' ' + fmt(ln.x[d.from]) + ', then ' + fmt(d.last) + ' at ' +
               fmt(ln.x[d.at]) + ' -- ' + (why || 'the figure gives no reason'));
  });
  return lines;
}
function liveSetup(fig) {
  var run = LIVE[fig.id], inputs = fig.querySelectorAll('input[type=range]');
  var consts = JSON.parse(fig.dataset.consts);
  function fn(p) { return run(Object.assign({}, consts, p)); }
  var svg = fig.querySelector('svg'), check = fig.querySelector('.selfcheck');
  function params() {
    var p = {};
    inputs.forEach(function (i) { var v = Number(i.value);
      p[i.name] = i.dataset.log === '1' ? Math.pow(10, v) : v; });
    return p;
  }
  function draw() {
    var p = params();
    inputs.forEach(function (i) { i.nextElementSibling.textContent = fmt(p[i.name]); });
    var out = fn(p), n = out.panels.length, W = 620 * Math.max(n, 1), H = 300;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    out.panels.forEach(function (panel, k) { drawPanel(svg, panel, 620 * k, 620, H); });
    var said = divergenceText(out);
    fig.querySelector('.readout').textContent = [out.text || ''].concat(said).join('. ');
  }
  inputs.forEach(function (i) { i.addEventListener('input', draw); });
  draw();
  var probes = JSON.parse(fig.dataset.probes), worst = 0, bad = [], count = 0;
  probes.forEach(function (pr) {
    var ran = fn(pr.p), got = ran.values;
    ran.panels.forEach(function (panel) {  // the axis' scale read against what it draws
      var why = linearButGeometric(panel);
      if (why && bad.indexOf(why) < 0) bad.push(why);
    });
    Object.keys(pr.values).forEach(function (k) {
      var e = pr.values[k], m = got[k], gap = Math.abs(m - e) / Math.max(Math.abs(e), 1e-300);
      count += 1;
      if (!(gap <= pr.tol)) bad.push(k + ' = ' + m + ' (' + e + ' expected)');
      if (gap > worst || !(gap === gap)) worst = gap;
    });
  });
  var who = fig.dataset.against;
  check.className = 'selfcheck ' + (bad.length ? 'no' : 'ok');
  check.textContent = bad.length
    ? '✘ the page computes or draws other than ' + who + ' gives: ' + bad.join('; ')
    : '✔ the page computes what ' + who + ' gives: ' + count + ' values at ' + probes.length +
      ' settings, largest relative gap ' + worst.toExponential(1);
}
document.querySelectorAll('figure.live').forEach(liveSetup);
"""
