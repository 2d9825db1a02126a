// polo dash: plain JavaScript, SVG charts drawn here, no libraries. The page polls the server for
// new lines of each run's metrics.jsonl (by byte offset) and redraws only what changed.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const FAMILY_ORDER = { rl: 0, eval: 1, sft: 2 };
const FIRST_KEYS = ["reward_mean", "accuracy", "pass1_sampled", "kl", "entropy", "response_len", "loss"];

const state = {
  runs: [],          // {id, name, group, seed, live, color, visible, offset, records, t0}
  panels: new Map(), // panel key -> {el, svg, readout}
  dirty: new Set(),  // panel keys to redraw
  tab: "charts",
  selectedSample: null,
};
window.__dashLoadedAt = Date.now(); // the browser test checks that updates come without a reload
window.addEventListener("error", (e) => { document.getElementById("status").textContent = "⚠ " + e.message; });
window.addEventListener("unhandledrejection", (e) => { document.getElementById("status").textContent = "⚠ " + e.reason; });

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
const SVGNS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + (await r.text()));
  return r.json();
}
function family(phase) { return phase.startsWith("eval") ? "eval" : phase; }
function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return (+v.toPrecision(4)).toString();
}

// ---- runs -------------------------------------------------------------------------------------

async function refreshRuns() {
  const runs = await getJSON("api/runs");
  const groups = [...new Set(runs.map((r) => r.group))];
  for (const r of runs) {
    let s = state.runs.find((x) => x.id === r.id);
    if (!s) {
      s = { ...r, visible: true, offset: 0, records: [], t0: null };
      state.runs.push(s);
    }
    Object.assign(s, { name: r.name, group: r.group, live: r.live, seed: r.seed, algo: r.algo });
    s.color = COLORS[state.runs.indexOf(s) % COLORS.length];
    s.groupColor = COLORS[groups.indexOf(r.group) % COLORS.length];
  }
  renderRunList();
  fillRunSelects();
}

function renderRunList() {
  const box = $("runs");
  box.replaceChildren();
  for (const r of state.runs) {
    const cb = el("input", { type: "checkbox" });
    cb.checked = r.visible;
    cb.addEventListener("change", () => { r.visible = cb.checked; markAllDirty(); });
    const color = $("bands").checked ? r.groupColor : r.color; // bands colour runs by their group
    const label = el("label", { title: r.dir || "" }, cb, el("span", { class: "swatch", style: "background:" + color }), r.name);
    if (r.algo) label.append(el("span", { class: "legend", text: " " + r.algo }));
    if (r.live) label.append(el("span", { class: "live", text: " ● live" }));
    box.append(label);
  }
}

function fillRunSelects() {
  for (const id of ["s-run", "c-run", "c-other"]) {
    const sel = $(id);
    const have = new Set([...sel.options].map((o) => o.value));
    for (const r of state.runs) {
      if (!have.has(String(r.id))) sel.append(el("option", { value: String(r.id), text: r.name }));
    }
  }
}

// ---- metrics polling ----------------------------------------------------------------------------

async function pollRun(r) {
  for (let round = 0; round < 50; round++) {
    const chunk = await getJSON(`api/metrics?run=${r.id}&from=${r.offset}`);
    if (chunk.reset) { r.records = []; r.t0 = null; markAllDirty(); }
    r.offset = chunk.offset;
    for (const rec of chunk.records) {
      if (r.t0 === null && rec.time) r.t0 = rec.time;
      r.records.push(rec);
      const fam = family(rec.phase);
      for (const k of Object.keys(rec.values)) state.dirty.add(fam + "/" + k);
    }
    if (!chunk.more) return chunk.records.length > 0;
  }
  return true;
}

let polling = false;
async function pollAll() {
  if (polling) return;
  polling = true;
  try {
    let changed = false;
    for (const r of state.runs) changed = (await pollRun(r)) || changed;
    if (changed) {
      ensurePanels();
      drawDirty();
      if (state.tab === "samples") loadSamples(false);
      if (state.tab === "checkpoints") loadCheckpoints();
    }
    const n = state.runs.reduce((a, r) => a + r.records.length, 0);
    document.body.dataset.records = String(n);
    $("status").textContent = `${state.runs.length} run${state.runs.length === 1 ? "" : "s"}, ${n} records · updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("status").textContent = "⚠ " + e.message;
  } finally {
    polling = false;
  }
}

// ---- charts ---------------------------------------------------------------------------------------

function panelKeys() {
  const keys = new Set();
  for (const r of state.runs) for (const rec of r.records) for (const k of Object.keys(rec.values)) keys.add(family(rec.phase) + "/" + k);
  const rank = (k) => { const i = FIRST_KEYS.indexOf(k); return i < 0 ? FIRST_KEYS.length : i; };
  return [...keys].sort((a, b) => {
    const [fa, ka] = a.split("/"), [fb, kb] = b.split("/");
    return (FAMILY_ORDER[fa] ?? 9) - (FAMILY_ORDER[fb] ?? 9) || fa.localeCompare(fb) || rank(ka) - rank(kb) || ka.localeCompare(kb);
  });
}

function ensurePanels() {
  const keys = panelKeys();
  const box = $("panels");
  let added = false;
  for (const key of keys) {
    if (state.panels.has(key)) continue;
    const readout = el("span", { class: "readout" });
    const svg = svgEl("svg", { viewBox: "0 0 360 200", preserveAspectRatio: "none" });
    const panel = el("div", { class: "panel", "data-metric": key, "data-points": "0" }, el("h3", {}, el("span", { text: key }), readout), svg);
    svg.addEventListener("mousemove", (ev) => hover(key, ev));
    svg.addEventListener("mouseleave", () => { readout.textContent = ""; const g = svg.querySelector(".cursor"); if (g) g.remove(); });
    state.panels.set(key, { el: panel, svg, readout, view: null });
    state.dirty.add(key);
    added = true;
  }
  if (added) for (const key of keys) box.append(state.panels.get(key).el); // keep the sorted order
  applyFilter();
}

function applyFilter() {
  const f = $("metric-filter").value.trim().toLowerCase();
  for (const [key, p] of state.panels) p.el.hidden = f !== "" && !key.toLowerCase().includes(f);
}

function markAllDirty() { for (const k of state.panels.keys()) state.dirty.add(k); drawDirty(); }

function drawDirty() {
  for (const key of state.dirty) if (state.panels.has(key)) drawPanel(key);
  state.dirty.clear();
}

// series returns one run's raw points of a panel, x by the chosen axis.
function series(r, key) {
  const [fam, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
  const wall = $("xaxis").value === "wall";
  const pts = [];
  for (const rec of r.records) {
    if (family(rec.phase) !== fam || !(name in rec.values)) continue;
    const x = wall ? ((rec.time || r.t0 || 0) - (r.t0 || 0)) / 60 : rec.step;
    pts.push([x, rec.values[name]]);
  }
  return pts;
}

// smooth is TensorBoard's debiased exponential moving average.
function smooth(pts, w) {
  if (w <= 0) return pts;
  let last = 0, n = 0;
  return pts.map(([x, y]) => { last = last * w + (1 - w) * y; n++; return [x, last / (1 - Math.pow(w, n))]; });
}

// bandsOf aligns a group's smoothed series on their common x values: mean, min and max.
function bandsOf(list) {
  const maps = list.map((pts) => new Map(pts.map(([x, y]) => [x, y])));
  const xs = [...maps[0].keys()].filter((x) => maps.every((m) => m.has(x))).sort((a, b) => a - b);
  return xs.map((x) => {
    const ys = maps.map((m) => m.get(x));
    return [x, ys.reduce((a, b) => a + b, 0) / ys.length, Math.min(...ys), Math.max(...ys)];
  });
}

// niceTicks widens a flat range (a constant metric, or one that varies only in its last bits) and
// returns about n round tick values.
function niceTicks(lo, hi, n) {
  if (!(hi - lo > 1e-9 * Math.max(Math.abs(lo), Math.abs(hi)))) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  const first = Math.ceil(lo / step);
  for (let i = 0; i <= n + 1; i++) {
    const t = (first + i) * step;
    if (t > hi + step * 1e-9) break;
    ticks.push(+t.toPrecision(12));
  }
  return { lo, hi, ticks };
}

function drawPanel(key) {
  const p = state.panels.get(key);
  const W = 360, H = 200, L = 44, R = 8, T = 6, B = 20;
  const w = +$("smoothing").value;
  const useBands = $("bands").checked;
  const lines = []; // {color, pts, raw, band}
  let total = 0;
  const byGroup = new Map();
  for (const r of state.runs) {
    if (!r.visible) continue;
    const raw = series(r, key);
    total += raw.length;
    if (!raw.length) continue;
    const sm = smooth(raw, w);
    if (useBands) {
      if (!byGroup.has(r.group)) byGroup.set(r.group, { color: r.groupColor, runs: [] });
      byGroup.get(r.group).runs.push({ r, raw, sm });
    } else {
      lines.push({ name: r.name, color: r.color, raw, pts: sm });
    }
  }
  for (const [g, { color, runs }] of byGroup) {
    if (runs.length === 1) { lines.push({ name: runs[0].r.name, color, raw: runs[0].raw, pts: runs[0].sm }); continue; }
    const b = bandsOf(runs.map((x) => x.sm));
    lines.push({ name: g + " (mean of " + runs.length + ")", color, raw: [], pts: b.map(([x, m]) => [x, m]), band: b });
  }
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  for (const l of lines) {
    for (const [x, y] of l.raw.concat(l.pts)) { xlo = Math.min(xlo, x); xhi = Math.max(xhi, x); ylo = Math.min(ylo, y); yhi = Math.max(yhi, y); }
    if (l.band) for (const [, , lo, hi] of l.band) { ylo = Math.min(ylo, lo); yhi = Math.max(yhi, hi); }
  }
  const svg = p.svg;
  svg.replaceChildren();
  p.el.dataset.points = String(total);
  if (!lines.length) return;
  const xt = niceTicks(xlo, xhi, 5), yt = niceTicks(ylo, yhi, 4);
  const sx = (x) => L + (x - xt.lo) / (xt.hi - xt.lo) * (W - L - R);
  const sy = (y) => T + (1 - (y - yt.lo) / (yt.hi - yt.lo)) * (H - T - B);
  p.view = { sx, sy, xt, yt, lines, W, H, L, R, T, B };
  for (const t of yt.ticks) {
    svg.append(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: sy(t), y2: sy(t) }));
    const tx = svgEl("text", { x: L - 4, y: sy(t) + 3, "text-anchor": "end" }); tx.textContent = fmt(t); svg.append(tx);
  }
  for (const t of xt.ticks) {
    const tx = svgEl("text", { x: sx(t), y: H - 6, "text-anchor": "middle" }); tx.textContent = fmt(t); svg.append(tx);
  }
  svg.append(svgEl("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(svgEl("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const path = (pts) => pts.map(([x, y], i) => (i ? "L" : "M") + sx(x).toFixed(1) + "," + sy(y).toFixed(1)).join("");
  for (const l of lines) {
    if (l.band) {
      const d = path(l.band.map(([x, , , hi]) => [x, hi])) + path(l.band.slice().reverse().map(([x, , lo]) => [x, lo])).replace(/^M/, "L") + "Z";
      svg.append(svgEl("path", { d, fill: l.color, "fill-opacity": 0.18, stroke: "none", class: "band" }));
    }
    if (w > 0 && l.raw.length > 1) svg.append(svgEl("path", { d: path(l.raw), fill: "none", stroke: l.color, "stroke-opacity": 0.25, "stroke-width": 1, "vector-effect": "non-scaling-stroke" }));
    if (l.pts.length === 1 || (l.pts.length < 12 && key.startsWith("eval/"))) {
      for (const [x, y] of l.pts) svg.append(svgEl("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: l.color }));
    }
    if (l.pts.length > 1) svg.append(svgEl("path", { d: path(l.pts), fill: "none", stroke: l.color, "stroke-width": 1.6, "vector-effect": "non-scaling-stroke", class: "line", "data-run": l.name }));
  }
}

function hover(key, ev) {
  const p = state.panels.get(key);
  if (!p.view) return;
  const { sx, xt, lines, W, L, R, T, H, B } = p.view;
  const rect = p.svg.getBoundingClientRect();
  const vx = (ev.clientX - rect.left) / rect.width * W;
  const x = xt.lo + (vx - L) / (W - L - R) * (xt.hi - xt.lo);
  const parts = [];
  let snapped = null;
  for (const l of lines) {
    let best = null;
    for (const pt of l.pts) if (!best || Math.abs(pt[0] - x) < Math.abs(best[0] - x)) best = pt;
    if (best) { parts.push(l.name + " " + fmt(best[1])); snapped = snapped ?? best[0]; }
  }
  p.readout.textContent = snapped === null ? "" : "x=" + fmt(snapped) + ": " + parts.join(", ");
  let c = p.svg.querySelector(".cursor");
  if (!c) { c = svgEl("line", { class: "cursor", stroke: "#9ca3af", "stroke-dasharray": "3,3", y1: T, y2: H - B }); p.svg.append(c); }
  if (snapped !== null) { c.setAttribute("x1", sx(snapped)); c.setAttribute("x2", sx(snapped)); }
}

// ---- samples ------------------------------------------------------------------------------------

let samplesSeq = 0;
async function loadSamples(resetSelection) {
  const run = $("s-run").value;
  if (run === "") return;
  const q = new URLSearchParams({ run, kind: $("s-kind").value, step: $("s-step").value, min: $("s-min").value, max: $("s-max").value, q: $("s-text").value, limit: "300" });
  const seq = ++samplesSeq;
  let ans;
  try { ans = await getJSON("api/samples?" + q); } catch (e) { $("s-count").textContent = e.message; return; }
  if (seq !== samplesSeq) return; // a newer request is on its way
  fillSelect($("s-kind"), ans.kinds, "all");
  fillSelect($("s-step"), ans.steps.slice().reverse().map(String), "all");
  $("s-count").textContent = `${ans.samples.length} shown of ${ans.total} matching`;
  const body = $("samples-table").tBodies[0];
  body.replaceChildren();
  ans.samples.forEach((s, i) => {
    const tr = el("tr", { "data-index": String(i) },
      el("td", { text: String(s.step) }), el("td", { text: s.kind }),
      el("td", { class: s.correct ? "good" : "bad", text: fmt(s.reward) }), el("td", { text: fmt(s.advantage) }),
      el("td", { text: String(s.length) }), el("td", { text: s.finish }),
      el("td", { text: s.prompt, title: s.prompt }), el("td", { text: s.response, title: s.response }));
    tr.addEventListener("click", () => {
      for (const x of body.querySelectorAll("tr.selected")) x.classList.remove("selected");
      tr.classList.add("selected");
      state.selectedSample = s;
      showSample(s);
    });
    body.append(tr);
  });
  if (resetSelection) { state.selectedSample = null; $("sample-detail").replaceChildren(el("p", { class: "hint", text: "Click a row to see its tokens." })); }
}

function fillSelect(sel, values, allLabel) {
  const cur = sel.value;
  const want = [""].concat(values);
  const have = [...sel.options].map((o) => o.value);
  if (want.join("\u0000") === have.join("\u0000")) return;
  sel.replaceChildren(...want.map((v) => el("option", { value: v, text: v === "" ? allLabel : v })));
  sel.value = want.includes(cur) ? cur : "";
}

// heatColor maps a token's value to a background: log-prob (low = red), entropy (high = blue),
// advantage (negative red, positive green, by the response's largest magnitude).
function heatColor(measure, v, scale) {
  if (v === undefined) return "transparent";
  let t, rgb;
  if (measure === "logprobs") { t = Math.min(1, -v / 5); rgb = [220, 38, 38]; }
  else if (measure === "entropy") { t = Math.min(1, v / scale); rgb = [37, 99, 235]; }
  else { t = Math.min(1, Math.abs(v) / scale); rgb = v < 0 ? [220, 38, 38] : [22, 163, 74]; }
  return `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${(0.08 + 0.72 * t).toFixed(3)})`;
}

function showSample(s) {
  const box = $("sample-detail");
  const measure = $("s-measure").value;
  const vals = s[measure] || [];
  const scale = Math.max(1e-9, ...vals.map(Math.abs));
  const heat = el("div", { class: "heat", id: "heatmap" });
  const tokens = s.tokens || [];
  tokens.forEach((tok, i) => {
    const v = vals[i];
    heat.append(el("span", { style: "background:" + heatColor(measure, v, scale), title: `${JSON.stringify(tok)} ${measure} ${fmt(v)}`, "data-value": v === undefined ? "" : String(v) }, tok));
  });
  if (!tokens.length) heat.append(el("span", { class: "hint", text: s.response + "  (no per-token data: log.sample_tokens is off)" }));
  const comps = s.components ? Object.entries(s.components).map(([k, v]) => `${k} ${fmt(v)}`).join(", ") : "";
  const legend = measure === "logprobs" ? "red = unlikely token (log-prob ≤ −5)" : measure === "entropy" ? `blue = uncertain (max ${fmt(scale)} nats)` : `green/red = positive/negative advantage (max |${fmt(scale)}|)`;
  box.replaceChildren(
    el("div", { class: "legend", text: `step ${s.step} · ${s.kind} · ${s.phase} · group ${s.group} · reward ${fmt(s.reward)}${comps ? " (" + comps + ")" : ""} · advantage ${fmt(s.advantage)} · ${s.length} tokens · ${s.finish}` }),
    el("h4", { text: "prompt" }), el("pre", { text: s.prompt }),
    el("h4", { text: "response" }), heat,
    el("p", { class: "legend", text: legend }));
}

// ---- config and checkpoints ---------------------------------------------------------------------

async function loadConfig() {
  const a = $("c-run").value, b = $("c-other").value;
  if (a === "") return;
  try { $("config-yaml").textContent = (await getJSON("api/config?run=" + a)).yaml; } catch (e) { $("config-yaml").textContent = e.message; }
  const body = $("config-diff").tBodies[0];
  body.replaceChildren();
  if (b === "") return;
  const name = (id) => (state.runs.find((r) => String(r.id) === id) || {}).name || id;
  $("c-a-name").textContent = name(a);
  $("c-b-name").textContent = name(b);
  try {
    const diff = await getJSON(`api/diff?a=${a}&b=${b}`);
    if (!diff.length) body.append(el("tr", {}, el("td", { colspan: "3", text: "the configs are identical" })));
    for (const d of diff) body.append(el("tr", {}, el("td", { text: d.key }), el("td", { text: d.a }), el("td", { text: d.b })));
  } catch (e) { body.append(el("tr", {}, el("td", { colspan: "3", text: e.message }))); }
}

async function loadCheckpoints() {
  const box = $("checkpoints");
  const parts = [];
  for (const r of state.runs) {
    let list = [];
    try { list = await getJSON("api/checkpoints?run=" + r.id); } catch (e) { continue; }
    const t = el("table", { class: "ckpt" }, el("thead", {}, el("tr", {}, ...["checkpoint", "phase", "step", "written", "size", ""].map((h) => el("th", { text: h })))));
    const body = el("tbody");
    for (const c of list) {
      body.append(el("tr", {}, el("td", { text: c.name }), el("td", { text: c.phase }), el("td", { text: String(c.step) }),
        el("td", { text: new Date(c.time * 1000).toLocaleString() }), el("td", { text: (c.bytes / 1e6).toFixed(2) + " MB" }),
        el("td", { text: c.latest ? "latest" : "" })));
    }
    if (!list.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "no checkpoint yet" })));
    t.append(body);
    parts.push(el("h3", { text: r.name }), t);
  }
  box.replaceChildren(...parts);
}

// ---- wiring -------------------------------------------------------------------------------------

function showTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + name;
  if (name === "samples") loadSamples(false);
  if (name === "config") loadConfig();
  if (name === "checkpoints") loadCheckpoints();
  if (name === "charts") markAllDirty();
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
}

function wire() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("smoothing").addEventListener("input", () => { $("smoothing-value").textContent = (+$("smoothing").value).toFixed(2); markAllDirty(); });
  $("xaxis").addEventListener("change", markAllDirty);
  $("bands").addEventListener("change", () => { renderRunList(); markAllDirty(); });
  $("metric-filter").addEventListener("input", applyFilter);
  for (const id of ["s-run", "s-kind", "s-step", "s-min", "s-max", "s-text"]) $(id).addEventListener(id === "s-text" || id === "s-min" || id === "s-max" ? "input" : "change", () => loadSamples(true));
  $("s-measure").addEventListener("change", () => { if (state.selectedSample) showSample(state.selectedSample); });
  $("c-run").addEventListener("change", loadConfig);
  $("c-other").addEventListener("change", loadConfig);
}

async function main() {
  wire();
  await refreshRuns();
  if (state.runs.length > 1) $("c-other").value = String(state.runs[1].id);
  await pollAll();
  document.body.dataset.ready = "1";
  const tab = location.hash.slice(1);
  if (["samples", "config", "checkpoints"].includes(tab)) showTab(tab);
  setInterval(pollAll, 1000);
  setInterval(() => refreshRuns().catch(() => {}), 5000);
}
main();
