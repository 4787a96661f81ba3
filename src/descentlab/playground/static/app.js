// descentlab playground: the page only draws; every number comes from the server.
"use strict";

// Every default (learning rates, momenta, colours, steps, which optimizers are on, the
// values marked on the sliders) comes from the server, which reads the optimizer records.
const $ = (id) => document.getElementById(id);

let META = null;
let state = null;          // everything the URL holds
let surfaceCache = {};     // landscape key -> promise of its surface response
let animation = null;      // the running path animation
let pending = null;        // debounce timer
let requestNo = 0;         // answers to old requests are dropped
let inFlight = null;       // the AbortController of the update under way
let marks = {};            // optimizer -> slider -> {value, label}: marked on the sliders
let notes = {};            // optimizer -> what its marks are (a line under its sliders)
let clickFrame = null;     // the drawn map's axis ranges: where a click lands
let linkNotes = [];        // what the opened link held that the page could not use, and why

// ---------------------------------------------------------------------------- state & URL

function landMeta(name) { return META.landscapes.find((l) => l.name === name); }

function colorOf(name) {
  const o = META.optimizers.find((q) => q.name === name);
  return o ? o.color : META.chain_color;
}

function defaultOpts(land) {
  // the server's defaults for this landscape: each optimizer's record's learning rate
  const d = land.defaults;
  const on = new Set(d.on);
  return META.optimizers.map((o) => Object.assign({ name: o.name, on: on.has(o.name) },
    JSON.parse(JSON.stringify(d.optimizers[o.name]))));
}

function defaultState(mode, landName) {
  const land = landMeta(landName);
  marks = land.defaults.marks;
  notes = land.defaults.notes;
  return {
    mode, land: land.name, kappa: land.defaults.kappa || 1, steps: land.defaults.steps,
    starts: [land.start.slice()], opts: defaultOpts(land), rule: "", ruleLr: 0.01,
    mapOpt: land.defaults.map.optimizer, mapMode: land.defaults.map.mode, mapN: 48,
  };
}

function writeUrl() {
  const p = new URLSearchParams();
  p.set("mode", state.mode);
  p.set("land", state.land);
  if (state.land === "quadratic") p.set("kappa", String(state.kappa));
  p.set("steps", String(state.steps));
  p.set("starts", state.starts.map((s) => s.map((v) => +v.toPrecision(5)).join(",")).join(";"));
  p.set("opts", JSON.stringify(state.opts.map((o) => {
    const c = Object.assign({}, o);
    c.on = o.on ? 1 : 0;
    return c;
  })));
  if (state.rule) { p.set("rule", state.rule); p.set("rlr", String(state.ruleLr)); }
  if (state.mode === "map") {
    p.set("mopt", state.mapOpt); p.set("mmode", state.mapMode); p.set("mn", String(state.mapN));
  }
  history.replaceState(null, "", "#" + p.toString());
}

// a slider's value from a link: a finite number (lr and eps above 0), or a list of as many
// finite numbers as the default's (betas)
function sameShape(def, v) {
  if (Array.isArray(def)) {
    return Array.isArray(v) && v.length === def.length && v.every((b) => sameShape(def[0], b));
  }
  return typeof v === "number" && isFinite(v) && (typeof def !== "number" || def <= 0 || v > 0);
}

function readUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  let mode = ["paths", "oned", "map"].includes(p.get("mode")) ? p.get("mode") : "paths";
  let land = p.get("land");
  if (!land || !landMeta(land)) land = mode === "oned" ? "parabola" : "rosenbrock";
  // a link naming a landscape of the other view's dimension opens it in its own view (the
  // paths view's menu holds no 1-D landscape: it opened with an empty menu)
  const own = landMeta(land).dim === 1 ? "oned" : "paths";
  if (mode !== "map" && mode !== own) mode = own;
  const s = defaultState(mode, land);
  const num = (v, d) => (v !== null && isFinite(+v) ? +v : d);
  s.kappa = num(p.get("kappa"), s.kappa);
  s.steps = Math.round(num(p.get("steps"), s.steps));
  const dim = landMeta(land).dim;
  linkNotes = [];
  if (p.get("starts")) {
    const all = p.get("starts").split(";").map((t) => t.split(",").map(Number));
    const pts = all.filter((q) => q.length === dim && q.every(isFinite));
    const dropped = p.get("starts").split(";").filter((_, i) => !pts.includes(all[i]));
    if (dropped.length) {
      linkNotes.push("The link's start(s) " + dropped.map((t) => "(" + t + ")").join(", ") +
        " are not " + dim + " finite number(s): " + (pts.length ? "left out." : "the default start is used."));
    }
    if (pts.length) s.starts = pts.slice(0, META.limits.starts);
  }
  try {
    const saved = JSON.parse(p.get("opts") || "null");
    if (Array.isArray(saved)) {
      for (const o of s.opts) {
        const m = saved.find((q) => q && q.name === o.name);
        if (!m) continue;
        for (const k of Object.keys(o)) {
          if (!(k in m) || k === "name") continue;
          if (k === "on") { o.on = !!m.on; continue; }
          if (sameShape(o[k], m[k])) { o[k] = m[k]; continue; }
          linkNotes.push("The link's " + o.name + " " + k + " " + JSON.stringify(m[k]) +
            " is not " + (Array.isArray(o[k]) ? o[k].length + " finite numbers" : "a finite number") +
            ": its default " + JSON.stringify(o[k]) + " is used.");
        }
      }
    }
  } catch (e) { linkNotes.push("The link's optimizers could not be read: the defaults are used."); }
  s.rule = p.get("rule") || "";
  s.ruleLr = num(p.get("rlr"), s.ruleLr);
  if (META.optimizers.some((o) => o.name === p.get("mopt") && o.map)) s.mapOpt = p.get("mopt");
  if (["lr_start", "lr_momentum"].includes(p.get("mmode"))) s.mapMode = p.get("mmode");
  s.mapN = Math.round(num(p.get("mn"), s.mapN));
  return s;
}

// ---------------------------------------------------------------------------- server

async function post(path, body, signal) {
  const r = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    signal,
  });
  const out = await r.json();
  if (!r.ok) throw new Error(out.error || ("HTTP " + r.status));
  return out;
}

function status(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

function surfaceKey(xRange) {
  return state.land + (state.land === "quadratic" ? ":" + state.kappa : "") +
    (xRange ? ":" + xRange.join(",") : "");
}

// the landscape on a grid (1-D: over xRange where given), its formula at this kappa, and the
// defaults and slider marks at this kappa; cached (never aborted: any later draw reuses it)
async function getSurface(xRange) {
  const key = surfaceKey(xRange);
  if (!surfaceCache[key]) {
    const body = { landscape: state.land, n: 120 };
    if (state.land === "quadratic") body.kappa = state.kappa;
    if (xRange) body.x_range = xRange;
    surfaceCache[key] = post("/api/surface", body);
    surfaceCache[key].catch(() => { delete surfaceCache[key]; });
  }
  const surf = await surfaceCache[key];
  showFormula(surf);
  return surf;
}

// the sidebar says what the picture shows: the formula at this kappa, its slider marks
function showFormula(surf) {
  $("formula").textContent = surf.plain;
  marks = surf.defaults.marks;
  notes = surf.defaults.notes;
  renderMarks();
}

function optimizerSpecs() {
  const specs = [];
  for (const o of state.opts) {
    if (!o.on) continue;
    const s = { name: o.name, lr: o.lr };
    for (const k of ["momentum", "betas", "eps"]) if (k in o) s[k] = o[k];
    specs.push(s);
  }
  if (state.rule.trim()) specs.push({ rule: state.rule.trim(), lr: state.ruleLr, label: "chain" });
  return specs;
}

// ---------------------------------------------------------------------------- controls

function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 0.01 && a < 1000 ? String(+v.toPrecision(3)) : v.toExponential(1);
}

function slider(parent, label, value, min, max, step, toValue, fromValue, onChange, id) {
  const lab = document.createElement("label");
  const span = document.createElement("span");
  lab.append(label + " = ", span);
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min, max, step });
  if (id) { input.id = id; lab.htmlFor = id; }
  input.value = fromValue(value);
  span.textContent = fmt(value);
  const set = (v) => { span.textContent = fmt(v); onChange(v); };
  input.addEventListener("input", () => set(toValue(+input.value)));
  // the wrap holds the slider and the value marked on it (renderMarks)
  const wrap = document.createElement("div");
  wrap.className = "slider-wrap";
  wrap._mark = { fromValue, set: (v) => { input.value = fromValue(v); set(v); } };
  wrap.append(input);
  parent.append(lab, wrap);
}

// Goh's optimal values (on the quadratic) as a tick under their sliders, as in distill's
// "Why Momentum Really Works"; a click on the tick moves the slider there
function renderMarks() {
  for (const el of document.querySelectorAll(".slider-mark, .mark-note")) el.remove();
  for (const [name, text] of Object.entries(notes || {})) {
    const input = $("lr-" + name);
    if (!input) continue;
    const p = document.createElement("p");
    p.className = "note mark-note";
    p.textContent = text;
    input.closest(".params").append(p);
  }
  for (const [name, sliders] of Object.entries(marks || {})) {
    for (const [key, m] of Object.entries(sliders)) {
      const input = $(key + "-" + name);
      if (!input) continue;
      const wrap = input.parentElement;
      const frac = (wrap._mark.fromValue(m.value) - +input.min) / (+input.max - +input.min);
      if (!(frac >= 0 && frac <= 1)) continue;
      const tick = document.createElement("button");
      tick.className = "slider-mark";
      tick.dataset.for = input.id;
      tick.dataset.value = String(m.value);
      tick.title = m.label + " (click to use it)";
      tick.setAttribute("aria-label", m.label);
      tick.style.left = "calc(8px + " + (100 * frac).toFixed(3) + "% - " + (16 * frac).toFixed(3) + "px)";
      tick.addEventListener("click", () => wrap._mark.set(m.value));
      wrap.append(tick);
    }
  }
}

const log10 = (v) => Math.log10(v);
const pow10 = (v) => +Math.pow(10, v).toPrecision(3);
const same = (v) => v;

function buildOptimizers() {
  const box = $("optimizers");
  box.replaceChildren();
  state.opts.forEach((o, i) => {
    const div = document.createElement("div");
    div.className = "opt" + (o.on ? "" : " off");
    const head = document.createElement("div");
    head.className = "opt-head";
    const lab = document.createElement("label");
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = o.on; cb.id = "on-" + o.name;
    const sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = colorOf(o.name);
    lab.append(cb, sw, o.name);
    head.append(lab);
    const params = document.createElement("div");
    params.className = "params";
    cb.addEventListener("change", () => {
      o.on = cb.checked; div.classList.toggle("off", !o.on); changed();
    });
    const [lrLo, lrHi] = META.limits.lr.map(Math.log10);
    slider(params, "lr", o.lr, Math.max(-5, lrLo), lrHi, 0.01, pow10, log10,
      (v) => { o.lr = v; changed(); }, "lr-" + o.name);
    if ("momentum" in o) slider(params, "momentum", o.momentum, 0, 0.99, 0.01, same, same,
      (v) => { o.momentum = v; changed(); }, "momentum-" + o.name);
    if ("betas" in o) {  // as many as the optimizer takes (Adan: three)
      o.betas.forEach((b, i) => {
        const fine = i > 0 && b >= 0.9;  // beta1 from 0; the others near 1
        slider(params, "β" + "₁₂₃₄₅"[i], b, fine ? 0.9 : 0, fine ? 0.9999 : 0.99,
          fine ? 0.0001 : 0.01, same, same,
          (v) => { o.betas = o.betas.map((x, k) => (k === i ? v : x)); changed(); });
      });
    }
    if ("eps" in o) slider(params, "ε", o.eps, -10, -1, 0.1, pow10, log10,
      (v) => { o.eps = v; changed(); });
    div.append(head, params);
    box.append(div);
  });
  const sel = $("map-opt");
  // the map runs thousands of starts in one stacked step: only elementwise optimizers
  const mapped = new Set(META.optimizers.filter((o) => o.map).map((o) => o.name));
  sel.replaceChildren(...state.opts.filter((o) => mapped.has(o.name))
    .map((o) => new Option(o.name, o.name)));
  sel.value = state.mapOpt;
}

function buildStarts() {
  const ul = $("starts");
  ul.replaceChildren();
  state.starts.forEach((s, i) => {
    const li = document.createElement("li");
    li.append("x₀ = (" + s.map((v) => fmt(v)).join(", ") + ")");
    if (state.starts.length > 1) {
      const b = document.createElement("button");
      b.textContent = "×"; b.title = "remove";
      b.addEventListener("click", () => { state.starts.splice(i, 1); buildStarts(); changed(); });
      li.append(b);
    }
    ul.append(li);
  });
}

function syncControls() {
  for (const b of document.querySelectorAll("button.mode")) {
    b.classList.toggle("active", b.dataset.mode === state.mode);
  }
  const sel = $("land");
  const wantDim = state.mode === "oned" ? 1 : state.mode === "paths" ? 2 : null;
  sel.replaceChildren(...META.landscapes.filter((l) => wantDim === null || l.dim === wantDim)
    .map((l) => new Option(l.name + (l.dim === 1 ? " (1-D)" : ""), l.name)));
  sel.value = state.land;
  const land = landMeta(state.land);
  $("formula").textContent = land.plain;  // until the surface at this kappa arrives
  // a description that says what the landscape does not compute is shown with its ✘
  const wrong = land.description_mismatches || [];
  $("description").textContent = land.description +
    (wrong.length ? ` ✘ the landscape computes otherwise: ${wrong.join("; ")}` : "");
  $("kappa-row").classList.toggle("hidden", state.land !== "quadratic");
  $("kappa").value = Math.log10(state.kappa);
  $("kappa-val").textContent = fmt(state.kappa);
  $("steps").value = state.steps;
  $("steps-val").textContent = state.steps;
  $("rule").value = state.rule;
  $("rule-lr").value = Math.log10(state.ruleLr);
  $("rule-lr-val").textContent = fmt(state.ruleLr);
  const map = state.mode === "map";
  $("map-box").classList.toggle("hidden", !map);
  $("starts-box").classList.toggle("hidden", map);
  $("path-plot").classList.toggle("hidden", !map);
  $("map-mode").value = state.mapMode;
  $("map-n").value = state.mapN;
  $("map-n-val").textContent = state.mapN + " × " + state.mapN;
  buildOptimizers();
  renderMarks();
  buildStarts();
  // panels that changed size: plotly measures its div only when drawing or on window resize
  for (const id of ["bg-plot", "main-plot", "path-plot", "loss-plot"]) {
    const el = $(id);
    if (el._fullLayout && el.offsetParent !== null) Plotly.Plots.resize(el).catch(() => {});
  }
}

function changed() {
  linkNotes = [];
  writeUrl();
  clearTimeout(pending);
  pending = setTimeout(update, 120);
}

function setMode(mode) {
  const land = landMeta(state.land);
  let name = state.land;
  if (mode === "oned" && land.dim !== 1) name = "parabola";
  if (mode === "paths" && land.dim !== 2) name = "rosenbrock";
  const keep = state.opts;
  state = Object.assign(defaultState(mode, name), name === state.land ? {
    steps: state.steps, starts: state.starts, kappa: state.kappa,
  } : {}, { opts: name === state.land ? keep : defaultState(mode, name).opts,
    rule: state.rule, ruleLr: state.ruleLr, mapOpt: state.mapOpt, mapMode: state.mapMode,
    mapN: state.mapN });
  syncControls();
  changed();
}

function wireControls() {
  for (const b of document.querySelectorAll("button.mode")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  $("land").addEventListener("change", () => {
    // a new landscape opens on its own defaults (its map's too); the chain and grid stay
    const s = defaultState(state.mode, $("land").value);
    s.rule = state.rule; s.ruleLr = state.ruleLr; s.mapN = state.mapN;
    state = s;
    syncControls();
    changed();
  });
  $("kappa").addEventListener("input", () => {
    state.kappa = pow10(+$("kappa").value);
    $("kappa-val").textContent = fmt(state.kappa);
    changed();
  });
  $("steps").addEventListener("input", () => {
    state.steps = +$("steps").value;
    $("steps-val").textContent = state.steps;
    changed();
  });
  $("rule").addEventListener("change", () => { state.rule = $("rule").value; changed(); });
  $("rule-lr").addEventListener("input", () => {
    state.ruleLr = pow10(+$("rule-lr").value);
    $("rule-lr-val").textContent = fmt(state.ruleLr);
    changed();
  });
  $("reset-starts").addEventListener("click", () => {
    state.starts = [landMeta(state.land).start.slice()];
    buildStarts();
    changed();
  });
  $("map-opt").addEventListener("change", () => { state.mapOpt = $("map-opt").value; changed(); });
  $("map-mode").addEventListener("change", () => { state.mapMode = $("map-mode").value; changed(); });
  $("map-n").addEventListener("input", () => {
    state.mapN = +$("map-n").value;
    $("map-n-val").textContent = state.mapN + " × " + state.mapN;
    changed();
  });
  $("share").addEventListener("click", async () => {
    writeUrl();
    try {
      await navigator.clipboard.writeText(location.href);
      status("Link copied: it reproduces this picture.");
    } catch (e) {
      status("The link of this picture is the address in the address bar.");
    }
  });
  $("main-plot").addEventListener("click", onPlotClick);
}

// ---------------------------------------------------------------------------- clicks

// A click lands where it was made: the pixel maps to data through the ranges this page drew
// (clickFrame) over the plot area's box on the screen -- never through plotly's axis objects,
// which a redraw under way may hold half-built.
function dataCoords(gd, ev) {
  const area = gd.querySelector(".nsewdrag");
  if (!clickFrame || !area) return null;
  const r = area.getBoundingClientRect();
  const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) return null;
  const [[x0, x1], [y0, y1]] = clickFrame;
  return [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)];
}

function onPlotClick(ev) {
  if (state.mode === "map") return; // the heatmap's own click shows a run
  if (ev.detail > 1) return; // the second click of a double click: the first added the start
  const xy = dataCoords($("main-plot"), ev);
  if (!xy) return;
  const land = landMeta(state.land);
  const pt = land.dim === 1 ? [xy[0]] : xy;
  const p = pt.map((v) => +v.toPrecision(4));
  if (ev.shiftKey) state.starts = [p];
  else {
    state.starts.push(p);
    if (state.starts.length > META.limits.starts) state.starts.shift();
  }
  buildStarts();
  changed();
}

// ---------------------------------------------------------------------------- drawing

const LAYOUT = {
  margin: { l: 55, r: 15, t: 35, b: 45 }, dragmode: false, hovermode: "closest",
  legend: { orientation: "h", y: -0.12, font: { size: 12 } }, font: { size: 12 },
  paper_bgcolor: "#fff", plot_bgcolor: "#fff",
};
// no zoom, no double-click reset: the axes are the landscape's, and a click adds a start
const CONFIG = { displayModeBar: false, responsive: true, scrollZoom: false, doubleClick: false };

function lossView(losses, fMin) {
  // log scale of f - f*, when f* is known; else f itself on a linear scale
  if (fMin === null) return { y: losses, title: "f(x_t)", type: "linear" };
  return {
    // a run that lands exactly on the minimum has no logarithm: a gap, not a spike to 1e-16
    y: losses.map((v) => (v === null || v - fMin <= 0 ? null : v - fMin)),
    title: "f(x_t) − f*  (log scale)", type: "log",
  };
}

// a label every few decades, at most about seven (a label on every decade piles up into a
// smear past a dozen decades); over less than three decades, 1-2-5 labels
function logTicks(traces) {
  let lo = Infinity, hi = -Infinity;
  for (const t of traces) {
    for (const v of t.y) if (v > 0 && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  const span = Math.log10(hi) - Math.log10(lo);
  if (!(span >= 3)) return { dtick: "D2" };
  return { dtick: Math.ceil(span / 6), minor: { showgrid: false } };
}

function drawLoss(runs, labels, colors, fMin) {
  const traces = [];
  let yTitle = "", yType = "linear";
  const ends = { x: [], y: [], color: [], text: [] };
  runs.forEach((run, i) => {
    run.losses.forEach((row, k) => {
      const v = lossView(row, fMin);
      yTitle = v.title; yType = v.type;
      traces.push({
        x: row.map((_, t) => t), y: v.y, mode: "lines", name: labels[i],
        line: { color: colors[i], width: 1.6 }, legendgroup: labels[i], showlegend: k === 0,
        hovertemplate: labels[i] + " t=%{x}: %{y:.3g}<extra></extra>",
      });
      // a diverged run's curve stops where it diverged (the server sends no loss after it):
      // a cross there, never a flat line at the frozen value
      const div = run.diverged_at ? run.diverged_at[k] : -1;
      if (div >= 0) {
        let t = Math.min(div, v.y.length - 1);
        while (t > 0 && !(v.y[t] !== null && isFinite(v.y[t]))) t--;
        if (v.y[t] !== null && isFinite(v.y[t])) {
          ends.x.push(t); ends.y.push(v.y[t]); ends.color.push(colors[i]);
          ends.text.push(labels[i] + " diverged at step " + div);
        }
      }
    });
  });
  if (ends.x.length) {
    traces.push({
      x: ends.x, y: ends.y, mode: "markers", name: "diverged", showlegend: false,
      marker: { symbol: "x", size: 12, color: ends.color, line: { color: "#fff", width: 1 } },
      text: ends.text, hovertemplate: "%{text}<extra></extra>",
    });
  }
  Plotly.react("loss-plot", traces, Object.assign({}, LAYOUT, {
    title: { text: "loss against step", font: { size: 13 } }, showlegend: false,
    xaxis: { title: { text: "step t" } },
    yaxis: Object.assign({ title: { text: yTitle }, type: yType, exponentformat: "power" },
      yType === "log" ? logTicks(traces) : {}),
  }), CONFIG);
}

function surfaceTraces(surf, land) {
  const out = [{
    type: "contour", x: surf.x, y: surf.y, z: surf.z, ncontours: 28, showscale: false,
    colorscale: [[0, "#2a3f7a"], [0.35, "#4f8fc0"], [0.65, "#a9d5c8"], [1, "#f4f1d9"]],
    contours: { coloring: "heatmap" }, line: { width: 0.4, color: "rgba(255,255,255,0.35)" },
    hoverinfo: "skip", name: "f",
  }];
  // (the stars here too, under the paths: a contour alone in this plot broke Plotly.react
  // on the next picture; the overlay draws them again over the paths)
  if (minimaTrace(land)) out.push(minimaTrace(land));
  return out;
}

// the minima as stars, drawn over the paths: a star under the paths that end on it (the
// saddle's (0, +√2)) was hidden, so only the other minimum showed one
function minimaTrace(land) {
  const mins = land.points.filter((p) => p.kind.includes("minimum"));
  if (!mins.length) return null;
  return {
    x: mins.map((p) => p.x[0]), y: mins.map((p) => p.x[1]), mode: "markers",
    marker: { symbol: "star", size: 13, color: "#ffd400", line: { color: "#000", width: 1 } },
    name: "minimum", hoverinfo: "skip", showlegend: false,
  };
}

function stopAnimation() { if (animation) { cancelAnimationFrame(animation); animation = null; } }

function animatePaths(gd, indices, full, done) {
  // reveal the paths step by step over about a second of the clock, however slowly the
  // frames come (the path layer only: the contour map lies in its own plot underneath and
  // is not redrawn); then ``done``. body[data-animating] says whether it is under way.
  stopAnimation();
  const T = full.length ? full[0].x.length : 0;
  const t0 = performance.now();
  document.body.dataset.animating = "1";
  const tick = () => {
    const frac = Math.min(1, (performance.now() - t0) / 1000);
    const upto = Math.max(1, Math.ceil(T * frac));
    Plotly.restyle(gd, {
      x: full.map((p) => p.x.slice(0, upto)), y: full.map((p) => p.y.slice(0, upto)),
    }, indices);
    animation = frac < 1 ? requestAnimationFrame(tick) : null;
    if (!animation) {
      if (done) done();
      document.body.dataset.animating = "0";
    }
  };
  animation = requestAnimationFrame(tick);
}

function drawLegend(labels, colors) {
  const box = $("legend");
  box.replaceChildren(...labels.map((label, i) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colors[i];
    span.append(swatch, label);
    return span;
  }));
}

function clearBackground() {
  if ($("bg-plot")._fullLayout) Plotly.purge("bg-plot");
}

// the path layer over a background plot: same axes and margins, transparent, no labels
function overlayLayout(layout) {
  const hide = { showticklabels: false, showgrid: false, zeroline: false, title: { text: "" },
    ticks: "" };
  return Object.assign({}, layout, {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", title: { text: "" },
    xaxis: Object.assign({}, layout.xaxis, hide), yaxis: Object.assign({}, layout.yaxis, hide),
  });
}

// 1-D: the view grows past the domain to keep every iterate on the screen, up to four
// domain widths on each side (beyond that a run is marked where it left the view)
function viewRange1d(land, res) {
  const [lo, hi] = land.domain[0];
  const w = hi - lo;
  let a = lo, b = hi;
  for (const run of res.runs) {
    for (const path of run.paths) {
      for (const [x] of path) {
        if (x >= lo - 4 * w && x <= hi + 4 * w) { a = Math.min(a, x); b = Math.max(b, x); }
      }
    }
  }
  if (a === lo && b === hi) return [lo, hi];
  const pad = 0.04 * (b - a);
  return [+(Math.min(a - pad, lo)).toPrecision(4), +(Math.max(b + pad, hi)).toPrecision(4)];
}

const inside = (v, [lo, hi]) => v >= lo && v <= hi;

// where a diverged run is marked: its last point (frozen where it stopped), or, if that lies
// off the picture, its last point on it
function divergedMark(x, y, xr, yr) {
  for (let t = x.length - 1; t >= 0; t--) {
    if (inside(x[t], xr) && inside(y[t], yr)) return t;
  }
  return -1;
}

async function drawPaths(no, signal) {
  const land = landMeta(state.land);
  const specs = optimizerSpecs();
  if (!specs.length) { status("Switch on at least one optimizer."); return; }
  const body = { landscape: state.land, starts: state.starts, steps: state.steps, optimizers: specs };
  if (state.land === "quadratic") body.kappa = state.kappa;
  const t0 = performance.now();
  let [surf, res] = await Promise.all([getSurface(), post("/api/run", body, signal)]);
  if (no !== requestNo) return;
  const labels = [], colors = [];
  for (const o of state.opts) if (o.on) { labels.push(o.name); colors.push(colorOf(o.name)); }
  if (specs.length > labels.length) { labels.push("chain"); colors.push(META.chain_color); }
  const gd = $("main-plot");
  const oneD = land.dim === 1;
  let xr, yr;
  if (oneD) {
    xr = viewRange1d(land, res);
    if (xr[0] !== land.domain[0][0] || xr[1] !== land.domain[0][1]) surf = await getSurface(xr);
    if (no !== requestNo) return;
    yr = curveRange(surf.f);
  } else {
    [xr, yr] = land.domain;
  }
  const traces = [];
  const full = [];
  const label1d = oneD && state.starts.length * res.runs.length <= 3;
  if (oneD) {
    traces.push({ x: surf.x, y: surf.f, mode: "lines", line: { color: "#1d2330", width: 2 },
      name: "f(x)", hoverinfo: "skip", showlegend: false });
  }
  const first = traces.length;
  const stops = { x: [], y: [], color: [], text: [] };
  res.runs.forEach((run, i) => {
    run.paths.forEach((path, k) => {
      const x = path.map((p) => p[0]);
      const y = oneD ? run.losses[k] : path.map((p) => p[1]);
      full.push({ x, y });
      const div = run.diverged_at[k];
      if (div >= 0) {
        const t = divergedMark(x, y, xr, yr);
        if (t >= 0) {
          stops.x.push(x[t]); stops.y.push(y[t]); stops.color.push(colors[i]);
          stops.text.push(labels[i] + " diverged at step " + div + (t < x.length - 1
            ? ": left the picture after step " + t : ": stopped here (left |x| ≤ 100 × the domain)"));
        }
      }
      const tr = {
        x: x.slice(0, 1), y: y.slice(0, 1), mode: "lines+markers", name: labels[i],
        legendgroup: labels[i], showlegend: k === 0,
        line: { color: colors[i], width: 2 }, marker: { size: oneD ? 7 : 3, color: colors[i] },
        hovertemplate: labels[i] + (div >= 0 ? " (diverged at t=" + div + ")" : "") +
          "<br>t=%{pointNumber}: (%{x:.3g}, %{y:.3g})<extra></extra>",
      };
      if (label1d) {
        tr.mode = "lines+markers+text";
        // x₀ … x₇, each where it stands clear of the label before it (not piled up where
        // the iterates have converged)
        const gap = 0.03 * (xr[1] - xr[0]);
        let last = -Infinity;
        tr.text = x.map((v, t) => {
          if (t >= 8 || Math.abs(v - last) < gap) return "";
          last = v;
          return "x" + String(t).split("").map((c) => "₀₁₂₃₄₅₆₇₈₉"[+c]).join("");
        });
        tr.textposition = "top left";
        tr.textfont = { color: colors[i], size: 12 };
      }
      traces.push(tr);
    });
  });
  if (!oneD && minimaTrace(land)) traces.push(minimaTrace(land));
  if (!oneD) {
    traces.push({
      x: state.starts.map((s) => s[0]), y: state.starts.map((s) => s[1]),
      mode: "markers", marker: { symbol: "circle-open", size: 12, color: "#fff", line: { width: 2 } },
      name: "start", hoverinfo: "skip", showlegend: false,
    });
  }
  const marked = traces.length;
  if (stops.x.length) {
    // a cross where each diverged run stopped, shown once its path has been drawn
    traces.push({
      x: stops.x, y: stops.y, mode: "markers", name: "diverged", visible: false,
      marker: { symbol: "x", size: 15, color: stops.color, line: { color: "#fff", width: 1.5 } },
      text: stops.text, hovertemplate: "%{text}<extra></extra>", showlegend: false,
    });
  }
  const fixed = { fixedrange: true, zeroline: false };
  const layout = Object.assign({}, LAYOUT, {
    showlegend: false,
    title: { text: surf.plain, font: { size: 14 } },  // the server's, with this κ
    xaxis: Object.assign({ range: xr, title: { text: "x" } }, fixed),
    yaxis: Object.assign({ range: yr, title: { text: oneD ? "f(x)" : "y" } }, fixed),
  });
  if (oneD) {
    clearBackground();
    await Plotly.react(gd, traces, layout, CONFIG);
  } else {
    await Plotly.react("bg-plot", surfaceTraces(surf, land), layout, CONFIG);
    await Plotly.react(gd, traces, overlayLayout(layout), CONFIG);
  }
  clickFrame = [xr, yr];
  drawLegend(labels, colors);
  const idx = full.map((_, j) => first + j);
  animatePaths(gd, idx, full, stops.x.length
    ? () => Plotly.restyle(gd, { visible: true }, [marked]) : null);
  drawLoss(res.runs, labels, colors, res.f_min);
  const ms = Math.round(performance.now() - t0);
  const diverged = res.runs.reduce((n, r) => n + r.diverged_at.filter((d) => d >= 0).length, 0);
  status(res.runs.length + " optimizer(s) × " + state.starts.length + " start(s) × " +
    res.steps + " steps in " + ms + " ms" + (diverged ? "; " + diverged +
    " run(s) diverged (marked ✕ where they stopped or left the picture; the loss curve stops there)" : "") +
    ". Click the map to add a start." + [...linkNotes, ...(res.notes || [])].map((n) => " " + n).join(""));
}

function curveRange(f) {
  const v = f.filter((q) => q !== null);
  const lo = Math.min(...v), hi = Math.max(...v);
  const pad = 0.08 * (hi - lo || 1);
  return [lo - pad, hi + pad];
}

async function drawMap(no, signal) {
  const land = landMeta(state.land);
  const o = state.opts.find((q) => q.name === state.mapOpt) || state.opts[0];
  const spec = { name: o.name };
  for (const k of ["momentum", "betas", "eps"]) if (k in o) spec[k] = o[k];
  if (state.mapMode === "lr_momentum" && !("momentum" in o)) {
    status(o.name + " has no momentum: choose sgd, momentum, nesterov or rmsprop for this map.", true);
    return;
  }
  // three decades below the optimizer's learning rate (its slider's; by default its
  // record's) to one above: the band that converges and the cliff where runs diverge
  const [limLo, limHi] = META.limits.lr;
  const e = Math.log10(o.lr);
  const lrRange = [Math.max(limLo, 10 ** (Math.floor(e) - 3)), Math.min(limHi, 10 ** (Math.ceil(e) + 1))];
  const body = { landscape: state.land, optimizer: spec, steps: state.steps, mode: state.mapMode,
    start: state.starts[0], n_lr: state.mapN, n_y: state.mapN, lr_range: lrRange };
  if (state.land === "quadratic") body.kappa = state.kappa;
  if (state.mapMode === "lr_start") body.y_range = land.domain[0];
  const t0 = performance.now();
  const res = await post("/api/map", body, signal);
  if (no !== requestNo) return;
  // with a known global minimum: the gap to it on a log scale; without one (x sin x has
  // several minima, or none): the final loss itself, so that each basin gets its colour
  const gap = land.minimum !== null;
  const z = res.final_loss.map((row) => row.map((v) => (v === null ? null
    : gap ? Math.log10(Math.max(v - land.minimum, 0) + 1e-12) : v)));
  const zName = gap ? "log₁₀(f(x_T) − f*)" : "f(x_T)";
  // without one, the colours span f over the landscape's domain (runs that ran off to far
  // lower or higher values saturate) so that the basins stand apart
  let zRange = gap ? [-12, undefined] : [undefined, undefined];
  if (!gap && land.dim === 1) {
    const surf = await getSurface();
    if (no !== requestNo) return;
    const f = surf.f.filter((v) => v !== null);
    zRange = [Math.min(...f), Math.max(...f)];
  }
  const yName = res.y_name === "momentum" ? "momentum"
    : land.dim === 1 ? "start x₀" : "start x₀ (first coordinate; y₀ = " + fmt(res.start[1]) + ")";
  clearBackground();
  drawLegend([], []);
  // the optimizer's own setting (on the quadratic's momentum map: Goh's optimum), as a cross
  const here = { x: [o.lr], y: [res.y_name === "momentum" ? o.momentum : res.start[0]],
    mode: "markers", marker: { symbol: "x-thin-open", size: 14, color: "#fff", line: { width: 2.5, color: "#fff" } },
    name: "this setting", hovertemplate: "the sliders' setting: lr %{x:.3g}, %{y:.3g}" +
      (marks[o.name] ? " (by default the optimum marked on them)" : "") + "<extra></extra>",
    showlegend: false };
  const heat = {
    type: "heatmap", x: res.lr, y: res.y, z, colorscale: "Viridis", zmin: zRange[0], zmax: zRange[1],
    colorbar: { title: { text: zName, side: "right" } },
    hovertemplate: "lr %{x:.3g}, " + (res.y_name === "momentum" ? "momentum" : "x₀") +
      " %{y:.3g}<br>" + zName + " = %{z:.3g}<extra></extra>",
  };
  await Plotly.react("main-plot", [heat, here], Object.assign({}, LAYOUT, {
    title: { text: o.name + " on " + state.land + ": final loss after " + res.steps + " steps", font: { size: 14 } },
    xaxis: { type: "log", title: { text: "learning rate" }, fixedrange: true, zeroline: false },
    yaxis: { title: { text: yName }, fixedrange: true, zeroline: false },
    plot_bgcolor: "#b3261e",
  }), CONFIG);
  const gd = $("main-plot");
  if (gd.removeAllListeners) gd.removeAllListeners("plotly_click");
  gd.on("plotly_click", (ev) => {
    const p = ev.points && ev.points[0];
    if (p && p.data.type === "heatmap") showCell(o, spec, p.x, p.y, res);
  });
  const ms = Math.round(performance.now() - t0);
  status(res.lr.length * res.y.length + " runs × " + res.steps + " steps in " + ms +
    " ms (one batch; blank = diverged). Click a cell to see its path.");
  // below the map: the run at the sliders' setting (the cross)
  showCell(o, spec, here.x[0], here.y[0], res, signal);
}

async function showCell(o, spec, lr, y, res, signal) {
  const land = landMeta(state.land);
  const start = res.start.slice();
  const one = Object.assign({}, spec, { lr });
  if (res.y_name === "momentum") one.momentum = y; else start[0] = y;
  const body = { landscape: state.land, starts: [start], steps: res.steps, optimizers: [one] };
  if (state.land === "quadratic") body.kappa = state.kappa;
  const [surf, run] = await Promise.all([getSurface(), post("/api/run", body, signal)]);
  const path = run.runs[0].paths[0];
  const color = colorOf(o.name);
  const traces = land.dim === 1
    ? [{ x: surf.x, y: surf.f, mode: "lines", line: { color: "#1d2330" }, hoverinfo: "skip" },
      { x: path.map((p) => p[0]), y: run.runs[0].losses[0], mode: "lines+markers",
        line: { color }, marker: { size: 5 } }]
    : [...surfaceTraces(surf, land), { x: path.map((p) => p[0]), y: path.map((p) => p[1]),
      mode: "lines+markers", line: { color, width: 2 }, marker: { size: 3 } },
      ...(minimaTrace(land) ? [minimaTrace(land)] : [])];
  const [xr, yr] = land.dim === 1 ? [land.domain[0], curveRange(surf.f)] : land.domain;
  Plotly.react("path-plot", traces, Object.assign({}, LAYOUT, {
    showlegend: false,
    title: { text: o.name + ", lr " + fmt(lr) + (res.y_name === "momentum" ? ", momentum " + fmt(y) : ", x₀ " + fmt(y)),
      font: { size: 13 } },
    xaxis: { range: xr, fixedrange: true }, yaxis: { range: yr, fixedrange: true },
  }), CONFIG);
  drawLoss(run.runs, [o.name], [color], run.f_min);
}

async function update() {
  const no = ++requestNo;
  stopAnimation();
  // a newer picture supersedes the one under way: its requests are aborted (and the server
  // drops the work it has not begun)
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  try {
    if (state.mode === "map") await drawMap(no, controller.signal);
    else await drawPaths(no, controller.signal);
  } catch (e) {
    if (no === requestNo && e.name !== "AbortError") status(e.message, true);
  }
  // for tests and scripts: how many updates have been drawn
  document.body.dataset.updates = String(+(document.body.dataset.updates || 0) + 1);
}

// ---------------------------------------------------------------------------- start

async function main() {
  const r = await fetch("/api/meta");
  META = await r.json();
  state = readUrl();
  wireControls();
  syncControls();
  writeUrl();
  await update();
  document.body.dataset.ready = "1";
  // a link pasted into this tab (our own URL updates use replaceState: no event)
  window.addEventListener("hashchange", () => {
    state = readUrl();
    syncControls();
    update();
  });
}

window.addEventListener("DOMContentLoaded", () => {
  main().catch((e) => status("The playground could not start: " + e.message, true));
});
