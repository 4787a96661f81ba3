// descentlab playground: the page only draws; every number comes from the server.
"use strict";

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
  "#9a6324", "#000075", "#808000"];
const ADAPTIVE = new Set(["adagrad", "rmsprop", "adam", "adamw", "nadam", "radam"]);
const DEFAULT_ON = new Set(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]);
const $ = (id) => document.getElementById(id);

let META = null;
let state = null;          // everything the URL holds
let surfaceCache = {};     // landscape key -> surface response
let animation = null;      // the running path animation
let pending = null;        // debounce timer
let requestNo = 0;         // answers to old requests are dropped

// ---------------------------------------------------------------------------- state & URL

function landMeta(name) { return META.landscapes.find((l) => l.name === name); }

function defaultLr(opt, land) {
  const width = land.domain[0][1] - land.domain[0][0];
  if (opt === "adadelta") return 1.0;
  if (ADAPTIVE.has(opt)) return Math.min(1, +(0.005 * width).toPrecision(2));
  // momentum 0.9 multiplies the step by about 1/(1 - 0.9): where the landscape's lr is near
  // the stability limit (quadratics), start ten times smaller
  if ((opt === "momentum" || opt === "nesterov") && land.lr > 0.05) {
    return +(land.lr / 10).toPrecision(3);
  }
  return land.lr;
}

function defaultOpts(land) {
  // 1-D: the lecture's picture, plain gradient descent with its iterates labelled
  const on = land.dim === 1 ? new Set(["sgd"]) : DEFAULT_ON;
  return META.optimizers.map((o) => {
    const s = { name: o.name, on: on.has(o.name) };
    for (const [k, v] of Object.entries(o.params)) s[k] = v;
    s.lr = defaultLr(o.name, land);
    if ("momentum" in s && (o.name === "sgd" || o.name === "rmsprop")) s.momentum = 0;
    return s;
  });
}

function defaultState(mode, landName) {
  const land = landMeta(landName);
  return {
    mode, land: land.name, kappa: 10, steps: land.dim === 1 ? 12 : 300,
    starts: [land.start.slice()], opts: defaultOpts(land), rule: "", ruleLr: 0.01,
    mapOpt: "sgd", mapMode: "lr_start", mapN: 48,
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

function readUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  const mode = ["paths", "oned", "map"].includes(p.get("mode")) ? p.get("mode") : "paths";
  let land = p.get("land");
  if (!land || !landMeta(land)) land = mode === "oned" ? "parabola" : "rosenbrock";
  const s = defaultState(mode, land);
  const num = (v, d) => (v !== null && isFinite(+v) ? +v : d);
  s.kappa = num(p.get("kappa"), s.kappa);
  s.steps = Math.round(num(p.get("steps"), s.steps));
  const dim = landMeta(land).dim;
  if (p.get("starts")) {
    const pts = p.get("starts").split(";").map((t) => t.split(",").map(Number))
      .filter((q) => q.length === dim && q.every(isFinite));
    if (pts.length) s.starts = pts.slice(0, META.limits.starts);
  }
  try {
    const saved = JSON.parse(p.get("opts") || "null");
    if (Array.isArray(saved)) {
      for (const o of s.opts) {
        const m = saved.find((q) => q && q.name === o.name);
        if (m) for (const k of Object.keys(o)) if (k in m && k !== "name") o[k] = k === "on" ? !!m.on : m[k];
      }
    }
  } catch (e) { /* a hand-edited link: keep the defaults */ }
  s.rule = p.get("rule") || "";
  s.ruleLr = num(p.get("rlr"), s.ruleLr);
  s.mapOpt = p.get("mopt") || s.mapOpt;
  s.mapMode = p.get("mmode") === "lr_momentum" ? "lr_momentum" : "lr_start";
  s.mapN = Math.round(num(p.get("mn"), s.mapN));
  return s;
}

// ---------------------------------------------------------------------------- server

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
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

async function getSurface() {
  const key = state.land + (state.land === "quadratic" ? ":" + state.kappa : "");
  if (!surfaceCache[key]) {
    const body = { landscape: state.land, n: 120 };
    if (state.land === "quadratic") body.kappa = state.kappa;
    surfaceCache[key] = await post("/api/surface", body);
  }
  return surfaceCache[key];
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
  if (id) input.id = id;
  input.value = fromValue(value);
  span.textContent = fmt(value);
  input.addEventListener("input", () => {
    const v = toValue(+input.value);
    span.textContent = fmt(v);
    onChange(v);
  });
  parent.append(lab, input);
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
    sw.className = "swatch"; sw.style.background = COLORS[i % COLORS.length];
    lab.append(cb, sw, o.name);
    head.append(lab);
    const params = document.createElement("div");
    params.className = "params";
    cb.addEventListener("change", () => {
      o.on = cb.checked; div.classList.toggle("off", !o.on); changed();
    });
    slider(params, "lr", o.lr, -5, 1, 0.01, pow10, log10, (v) => { o.lr = v; changed(); },
      "lr-" + o.name);
    if ("momentum" in o) slider(params, "momentum", o.momentum, 0, 0.99, 0.01, same, same,
      (v) => { o.momentum = v; changed(); });
    if ("betas" in o) {
      slider(params, "β₁", o.betas[0], 0, 0.99, 0.01, same, same,
        (v) => { o.betas = [v, o.betas[1]]; changed(); });
      slider(params, "β₂", o.betas[1], 0.9, 0.9999, 0.0001, same, same,
        (v) => { o.betas = [o.betas[0], v]; changed(); });
    }
    if ("eps" in o) slider(params, "ε", o.eps, -10, -1, 0.1, pow10, log10,
      (v) => { o.eps = v; changed(); });
    div.append(head, params);
    box.append(div);
  });
  const sel = $("map-opt");
  sel.replaceChildren(...state.opts.map((o) => new Option(o.name, o.name)));
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
  $("formula").textContent = land.plain;
  $("description").textContent = land.description;
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
  buildStarts();
  // panels that changed size: plotly measures its div only when drawing or on window resize
  for (const id of ["bg-plot", "main-plot", "path-plot", "loss-plot"]) {
    const el = $(id);
    if (el._fullLayout && el.offsetParent !== null) Plotly.Plots.resize(el).catch(() => {});
  }
}

function changed() {
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
    const s = defaultState(state.mode, $("land").value);
    s.rule = state.rule; s.ruleLr = state.ruleLr; s.mapOpt = state.mapOpt;
    s.mapMode = state.mapMode; s.mapN = state.mapN;
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

function dataCoords(gd, ev) {
  const fl = gd._fullLayout;
  if (!fl || !fl.xaxis) return null;
  const rect = gd.getBoundingClientRect();
  const px = ev.clientX - rect.left - fl.xaxis._offset;
  const py = ev.clientY - rect.top - fl.yaxis._offset;
  if (px < 0 || py < 0 || px > fl.xaxis._length || py > fl.yaxis._length) return null;
  return [fl.xaxis.p2c(px), fl.yaxis.p2c(py)];
}

function onPlotClick(ev) {
  if (state.mode === "map") return; // the heatmap's own click shows a run
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
const CONFIG = { displayModeBar: false, responsive: true, scrollZoom: false };

function lossView(losses, fMin) {
  // log scale of f - f*, when f* is known; else f itself on a linear scale
  if (fMin === null) return { y: losses, title: "f(x_t)", type: "linear" };
  return {
    // a run that lands exactly on the minimum has no logarithm: a gap, not a spike to 1e-16
    y: losses.map((v) => (v === null || v - fMin <= 0 ? null : v - fMin)),
    title: "f(x_t) − f*  (log scale)", type: "log",
  };
}

function drawLoss(runs, labels, colors, fMin) {
  const traces = [];
  let yTitle = "", yType = "linear";
  runs.forEach((run, i) => {
    run.losses.forEach((row, k) => {
      const v = lossView(row, fMin);
      yTitle = v.title; yType = v.type;
      traces.push({
        x: row.map((_, t) => t), y: v.y, mode: "lines", name: labels[i],
        line: { color: colors[i], width: 1.6 }, legendgroup: labels[i], showlegend: k === 0,
        hovertemplate: labels[i] + " t=%{x}: %{y:.3g}<extra></extra>",
      });
    });
  });
  Plotly.react("loss-plot", traces, Object.assign({}, LAYOUT, {
    title: { text: "loss against step", font: { size: 13 } }, showlegend: false,
    xaxis: { title: { text: "step t" } },
    yaxis: { title: { text: yTitle }, type: yType, exponentformat: "power", dtick: yType === "log" ? 1 : undefined },
  }), CONFIG);
}

function surfaceTraces(surf, land) {
  const out = [{
    type: "contour", x: surf.x, y: surf.y, z: surf.z, ncontours: 28, showscale: false,
    colorscale: [[0, "#2a3f7a"], [0.35, "#4f8fc0"], [0.65, "#a9d5c8"], [1, "#f4f1d9"]],
    contours: { coloring: "heatmap" }, line: { width: 0.4, color: "rgba(255,255,255,0.35)" },
    hoverinfo: "skip", name: "f",
  }];
  const mins = land.points.filter((p) => p.kind.includes("minimum"));
  if (mins.length) {
    out.push({
      x: mins.map((p) => p.x[0]), y: mins.map((p) => p.x[1]), mode: "markers",
      marker: { symbol: "star", size: 13, color: "#ffd400", line: { color: "#000", width: 1 } },
      name: "minimum", hoverinfo: "skip", showlegend: false,
    });
  }
  return out;
}

function stopAnimation() { if (animation) { cancelAnimationFrame(animation); animation = null; } }

function animatePaths(gd, indices, full) {
  // reveal the paths step by step over about a second (the path layer only: the contour
  // map lies in its own plot underneath and is not redrawn)
  stopAnimation();
  const T = full.length ? full[0].x.length : 0;
  const frames = Math.min(T, 30);
  let f = 1;
  const tick = () => {
    const upto = Math.max(1, Math.ceil((T * f) / frames));
    Plotly.restyle(gd, {
      x: full.map((p) => p.x.slice(0, upto)), y: full.map((p) => p.y.slice(0, upto)),
    }, indices);
    f += 1;
    animation = f <= frames ? requestAnimationFrame(tick) : null;
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

async function drawPaths(no) {
  const land = landMeta(state.land);
  const specs = optimizerSpecs();
  if (!specs.length) { status("Switch on at least one optimizer."); return; }
  const body = { landscape: state.land, starts: state.starts, steps: state.steps, optimizers: specs };
  if (state.land === "quadratic") body.kappa = state.kappa;
  const t0 = performance.now();
  const [surf, res] = await Promise.all([getSurface(), post("/api/run", body)]);
  if (no !== requestNo) return;
  const labels = [], colors = [];
  const onOpts = state.opts.map((o, i) => [o, i]).filter(([o]) => o.on);
  for (const [o, i] of onOpts) { labels.push(o.name); colors.push(COLORS[i % COLORS.length]); }
  if (specs.length > onOpts.length) { labels.push("chain"); colors.push("#111"); }
  const gd = $("main-plot");
  const traces = [];
  const full = [];
  const oneD = land.dim === 1;
  const label1d = oneD && state.starts.length * res.runs.length <= 3;
  if (oneD) {
    traces.push({ x: surf.x, y: surf.f, mode: "lines", line: { color: "#1d2330", width: 2 },
      name: "f(x)", hoverinfo: "skip", showlegend: false });
  }
  const first = traces.length;
  res.runs.forEach((run, i) => {
    run.paths.forEach((path, k) => {
      const x = path.map((p) => p[0]);
      const y = oneD ? run.losses[k] : path.map((p) => p[1]);
      full.push({ x, y });
      const div = run.diverged_at[k];
      const tr = {
        x: x.slice(0, 1), y: y.slice(0, 1), mode: "lines+markers", name: labels[i],
        legendgroup: labels[i], showlegend: k === 0,
        line: { color: colors[i], width: 2 }, marker: { size: oneD ? 7 : 3, color: colors[i] },
        hovertemplate: labels[i] + (div >= 0 ? " (diverged at t=" + div + ")" : "") +
          "<br>t=%{pointNumber}: (%{x:.3g}, %{y:.3g})<extra></extra>",
      };
      if (label1d) {
        tr.mode = "lines+markers+text";
        tr.text = x.map((_, t) => (t < 8 ? "x" + String(t).split("").map((c) => "₀₁₂₃₄₅₆₇₈₉"[+c]).join("") : ""));
        tr.textposition = "top left";
        tr.textfont = { color: colors[i], size: 12 };
      }
      traces.push(tr);
    });
  });
  const startTrace = {
    x: state.starts.map((s) => s[0]),
    y: oneD ? state.starts.map(() => null) : state.starts.map((s) => s[1]),
    mode: "markers", marker: { symbol: "circle-open", size: 12, color: "#fff", line: { width: 2 } },
    name: "start", hoverinfo: "skip", showlegend: false,
  };
  if (!oneD) traces.push(startTrace);
  const [xr, yr] = oneD ? [land.domain[0], curveRange(surf.f)] : land.domain;
  const layout = Object.assign({}, LAYOUT, {
    showlegend: false,
    title: { text: surf.plain, font: { size: 14 } },  // the server's, with this κ
    xaxis: { range: xr, title: { text: "x" }, zeroline: false },
    yaxis: { range: yr, title: { text: oneD ? "f(x)" : "y" }, zeroline: false },
  });
  if (oneD) {
    clearBackground();
    await Plotly.react(gd, traces, layout, CONFIG);
  } else {
    await Plotly.react("bg-plot", surfaceTraces(surf, land), layout, CONFIG);
    await Plotly.react(gd, traces, overlayLayout(layout), CONFIG);
  }
  drawLegend(labels, colors);
  const idx = full.map((_, j) => first + j);
  animatePaths(gd, idx, full);
  drawLoss(res.runs, labels, colors, res.f_min);
  const ms = Math.round(performance.now() - t0);
  const diverged = res.runs.reduce((n, r) => n + r.diverged_at.filter((d) => d >= 0).length, 0);
  status(res.runs.length + " optimizer(s) × " + state.starts.length + " start(s) × " +
    res.steps + " steps in " + ms + " ms" + (diverged ? "; " + diverged + " run(s) diverged (marked where they stopped)" : "") +
    ". Click the map to add a start.");
}

function curveRange(f) {
  const v = f.filter((q) => q !== null);
  const lo = Math.min(...v), hi = Math.max(...v);
  const pad = 0.08 * (hi - lo || 1);
  return [lo - pad, hi + pad];
}

async function drawMap(no) {
  const land = landMeta(state.land);
  const o = state.opts.find((q) => q.name === state.mapOpt) || state.opts[0];
  const spec = { name: o.name };
  for (const k of ["momentum", "betas", "eps"]) if (k in o) spec[k] = o[k];
  if (state.mapMode === "lr_momentum" && !("momentum" in o)) {
    status(o.name + " has no momentum: choose sgd, momentum, nesterov or rmsprop for this map.", true);
    return;
  }
  const body = { landscape: state.land, optimizer: spec, steps: state.steps, mode: state.mapMode,
    start: state.starts[0], n_lr: state.mapN, n_y: state.mapN, lr_range: [1e-4, 1.0] };
  if (state.land === "quadratic") body.kappa = state.kappa;
  if (state.mapMode === "lr_start") body.y_range = land.domain[0];
  const t0 = performance.now();
  const res = await post("/api/map", body);
  if (no !== requestNo) return;
  // with a known global minimum: the gap to it on a log scale; without one (x sin x has
  // several minima, or none): the final loss itself, so that each basin gets its colour
  const gap = land.minimum !== null;
  const z = res.final_loss.map((row) => row.map((v) => (v === null ? null
    : gap ? Math.log10(Math.max(v - land.minimum, 0) + 1e-12) : v)));
  const zName = gap ? "log₁₀(f(x_T) − f*)" : "f(x_T)";
  const yName = res.y_name === "momentum" ? "momentum"
    : land.dim === 1 ? "start x₀" : "start x₀ (first coordinate; y₀ = " + fmt(res.start[1]) + ")";
  clearBackground();
  drawLegend([], []);
  await Plotly.react("main-plot", [{
    type: "heatmap", x: res.lr, y: res.y, z, colorscale: "Viridis", zmin: gap ? -12 : undefined,
    colorbar: { title: { text: zName, side: "right" } },
    hovertemplate: "lr %{x:.3g}, " + (res.y_name === "momentum" ? "momentum" : "x₀") +
      " %{y:.3g}<br>" + zName + " = %{z:.3g}<extra></extra>",
  }], Object.assign({}, LAYOUT, {
    title: { text: o.name + " on " + state.land + ": final loss after " + res.steps + " steps", font: { size: 14 } },
    xaxis: { type: "log", title: { text: "learning rate" } },
    yaxis: { title: { text: yName } }, plot_bgcolor: "#b3261e",
  }), CONFIG);
  const gd = $("main-plot");
  if (gd.removeAllListeners) gd.removeAllListeners("plotly_click");
  gd.on("plotly_click", (ev) => {
    const p = ev.points && ev.points[0];
    if (p) showCell(o, spec, p.x, p.y, res);
  });
  const ms = Math.round(performance.now() - t0);
  status(res.lr.length * res.y.length + " runs × " + res.steps + " steps in " + ms +
    " ms (one batch; blank = diverged). Click a cell to see its path.");
  showCell(o, spec, res.lr[Math.floor(res.lr.length / 2)], res.y[Math.floor(res.y.length / 2)], res);
}

async function showCell(o, spec, lr, y, res) {
  const land = landMeta(state.land);
  const start = res.start.slice();
  const one = Object.assign({}, spec, { lr });
  if (res.y_name === "momentum") one.momentum = y; else start[0] = y;
  const body = { landscape: state.land, starts: [start], steps: res.steps, optimizers: [one] };
  if (state.land === "quadratic") body.kappa = state.kappa;
  const [surf, run] = await Promise.all([getSurface(), post("/api/run", body)]);
  const path = run.runs[0].paths[0];
  const traces = land.dim === 1
    ? [{ x: surf.x, y: surf.f, mode: "lines", line: { color: "#1d2330" }, hoverinfo: "skip" },
      { x: path.map((p) => p[0]), y: run.runs[0].losses[0], mode: "lines+markers",
        line: { color: "#e6194b" }, marker: { size: 5 } }]
    : [...surfaceTraces(surf, land), { x: path.map((p) => p[0]), y: path.map((p) => p[1]),
      mode: "lines+markers", line: { color: "#e6194b", width: 2 }, marker: { size: 3 } }];
  const [xr, yr] = land.dim === 1 ? [land.domain[0], curveRange(surf.f)] : land.domain;
  Plotly.react("path-plot", traces, Object.assign({}, LAYOUT, {
    showlegend: false,
    title: { text: o.name + ", lr " + fmt(lr) + (res.y_name === "momentum" ? ", momentum " + fmt(y) : ", x₀ " + fmt(y)),
      font: { size: 13 } },
    xaxis: { range: xr }, yaxis: { range: yr },
  }), CONFIG);
  drawLoss(run.runs, [o.name], ["#e6194b"], run.f_min);
}

async function update() {
  const no = ++requestNo;
  stopAnimation();
  try {
    if (state.mode === "map") await drawMap(no);
    else await drawPaths(no);
  } catch (e) {
    if (no === requestNo) status(e.message, true);
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
