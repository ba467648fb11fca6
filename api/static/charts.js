// trackledger charts: metric lines (run and compare pages) and an experiment's chart view.
// Loaded only by pages with charts; plotly.js itself is fetched after the first paint, so no page
// waits for it. Every name from user data reaches plotly escaped (see plotText).
"use strict";

const PLOTLY_SRC = "/vendor/plotly.min.js";
const PALETTE_SIZE = 20;  // style.css's --series-1 to --series-20; a 21st run repeats
const MARKERS_UP_TO = 30;  // lines with more points than this are drawn without markers
const LEGEND_UP_TO = 20;  // more runs than this: no legend beside the plot, names on hover
const FADED = 0.15;

let plotlyLoading = null;

function loadPlotly() {
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      if (window.Plotly) { resolve(window.Plotly); return; }
      const script = document.createElement("script");
      script.src = PLOTLY_SRC;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js could not be loaded"));
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}

// After the first paint: a requestAnimationFrame callback runs just before a frame, a timeout after it.
function afterFirstPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// Plotly reads a few HTML-like tags in its texts (<b>, <a href>, <br>): a run, param or metric
// name is shown as it was written, never as markup.
function plotText(value) {
  return String(value ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// The runs' colours, from the stylesheet: they follow its light and dark themes.
function palette() {
  return Array.from({ length: PALETTE_SIZE }, (_, i) => cssVar(`--series-${i + 1}`));
}

// Colours come from style.css's custom properties, so the charts follow its light and dark themes.
function baseLayout() {
  const ink = cssVar("--chart-ink", "#344054");
  const grid = cssVar("--chart-grid", "#eef1f5");
  const card = cssVar("--chart-bg", "#ffffff");
  return {
    margin: { l: 60, r: 16, t: 8, b: 44 }, hovermode: "closest", colorway: palette(),
    font: { family: "system-ui, sans-serif", size: 12, color: ink },
    paper_bgcolor: card, plot_bgcolor: card,
    xaxis: { zeroline: false, gridcolor: grid, linecolor: grid, automargin: true },
    yaxis: { zeroline: false, gridcolor: grid, linecolor: grid, exponentformat: "e", automargin: true },
    hoverlabel: { namelength: -1 },
  };
}

const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

function openRunOnClick(canvas) {
  canvas.on("plotly_click", (event) => {
    const point = event.points && event.points[0];
    const runId = point && (point.customdata || point.data.meta);
    if (runId) window.location.href = `/runs/${encodeURIComponent(runId)}`;
  });
}

// Hovering a line brings it forward and fades the others; leaving restores them.
function highlightOnHover(canvas) {
  canvas.on("plotly_hover", (event) => {
    const hovered = event.points[0].curveNumber;
    const n = canvas.data.length;
    if (n < 2) return;
    Plotly.restyle(canvas, {
      opacity: canvas.data.map((_, i) => (i === hovered ? 1 : FADED)),
      "line.width": canvas.data.map((_, i) => (i === hovered ? 3 : 1.5)),
    });
  });
  canvas.on("plotly_unhover", () => {
    if (canvas.data.length < 2) return;
    Plotly.restyle(canvas, { opacity: 1, "line.width": 1.5 });
  });
}

// Metric lines ------------------------------------------------------------------------------

// Exponential moving average, debiased at the start (as TensorBoard draws it); gaps stay gaps.
function smooth(values, weight) {
  if (!weight) return values;
  let average = 0;
  let seen = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    average = average * weight + (1 - weight) * v;
    seen += 1;
    return average / (1 - weight ** seen);
  });
}

function lineControls() {
  const smoothing = document.getElementById("smoothing");
  const log = document.getElementById("log-scale");
  const xAxis = document.getElementById("x-axis");
  return {
    smoothing: smoothing ? Number(smoothing.value) : 0,
    log: log ? log.checked : false,
    x: xAxis ? xAxis.value : "step",
  };
}

const X_TITLES = { step: "step", wall: "wall time (UTC)", relative: "time since the run started (s)" };

function xValues(mode, run, steps, times) {
  if (mode === "wall") return times.map((t) => new Date(t));
  if (mode === "relative") {
    const start = run.start ?? times[0];
    return times.map((t) => (t - start) / 1000);
  }
  return steps;
}

function lineTraces(runs, lines, controls) {
  const colours = palette();
  return lines.map(([at, steps, times, values]) => {
    const run = runs[at];
    const colour = colours[at % colours.length];
    return {
      type: "scatter", name: plotText(run.label), meta: run.id, opacity: 1, connectgaps: false,
      x: xValues(controls.x, run, steps, times), y: smooth(values, controls.smoothing),
      mode: steps.length > MARKERS_UP_TO ? "lines" : "lines+markers",
      marker: { size: 5, color: colour }, line: { width: 1.5, color: colour },
      hovertemplate: "%{fullData.name}<br>%{x}: %{y:.5g}<extra></extra>",
    };
  });
}

function lineLayout(runs, key, controls) {
  const layout = baseLayout();
  const legend = runs.length > 1 && runs.length <= LEGEND_UP_TO;
  layout.height = 320;
  layout.showlegend = legend;
  if (legend) {
    layout.legend = { orientation: "v", x: 1.02, y: 1, xanchor: "left", font: { size: 11 } };
    layout.margin.r = 8;
  }
  layout.xaxis.title = { text: X_TITLES[controls.x] };
  if (controls.x === "wall") layout.xaxis.type = "date";
  layout.yaxis.title = { text: plotText(key) };
  layout.yaxis.type = controls.log ? "log" : "linear";
  if (controls.log) layout.yaxis.tickformat = ".2~g";  // 0.2, not plotly's bare "2" for 2×10⁻¹
  return layout;
}

async function drawLineChart(canvas, key, runs, lines) {
  const Plotly = await loadPlotly();
  const controls = lineControls();
  const drawn = canvas.classList.contains("js-plotly-plot");
  await Plotly.react(canvas, lineTraces(runs, lines, controls), lineLayout(runs, key, controls), PLOT_CONFIG);
  if (!drawn) {
    openRunOnClick(canvas);
    highlightOnHover(canvas);
  }
}

// Draw each figure[data-key] in container from data ({runs, lines: {series: {key: lines}}}).
function drawLineCharts(container, data) {
  container.querySelectorAll("figure.chart[data-key]").forEach((figure) => {
    const lines = data.lines.series[figure.dataset.key] || [];
    drawLineChart(figure.querySelector(".chart-canvas"), figure.dataset.key, data.runs, lines);
  });
}

function wireLineControls(redraw) {
  const smoothing = document.getElementById("smoothing");
  const shown = document.getElementById("smoothing-value");
  if (smoothing) {
    smoothing.addEventListener("input", () => {
      shown.textContent = Number(smoothing.value) ? smoothing.value : "off";
      redraw();
    });
  }
  ["log-scale", "x-axis"].forEach((id) => {
    const control = document.getElementById(id);
    if (control) control.addEventListener("change", redraw);
  });
}

// Run and compare pages: the charts' data is embedded in the page.
function drawEmbeddedCharts() {
  const source = document.getElementById("chart-data");
  if (!source) return null;
  const data = JSON.parse(source.textContent);
  const section = source.closest("section") || document;
  const redraw = () => drawLineCharts(section, data);
  wireLineControls(redraw);
  afterFirstPaint().then(redraw);
  return { data, redraw };
}

// Run page: points extend their metric's line as they are logged; a new metric reloads the charts.
function followRunCharts(charts) {
  const section = document.querySelector("section#charts[data-live]");
  if (!section || typeof follow === "undefined") return;
  const reload = refresher("section#charts", () => setTimeout(() => { current = drawEmbeddedCharts(); }));
  let current = charts;
  let pending = false;
  follow(section, ["batch_logged"], (event) => {
    (event.metrics || []).forEach((point) => {
      const line = current && (current.data.lines.series[point.key] || [])[0];
      if (!line) { reload(); return; }
      line[1].push(point.step || 0);
      line[2].push(point.timestamp);
      line[3].push(Number.isFinite(point.value) ? point.value : null);
    });
    if (!pending && current) {
      pending = true;
      requestAnimationFrame(() => { pending = false; current.redraw(); });
    }
  });
}

// The chart view --------------------------------------------------------------------------

function option(select, value, label, selected) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  element.selected = Boolean(selected);
  select.appendChild(element);
}

function numericValues(values) {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  if (!present.length || !present.every((v) => Number.isFinite(Number(v)))) return null;
  return values.map((v) => (v === null || v === undefined || v === "" ? null : Number(v)));
}

// A column of the view: numbers if every value reads as one, else categories (sorted names).
function column(data, kind, key) {
  const raw = kind === "param" ? data.params[key] : data.metrics[key];
  const numbers = numericValues(raw);
  if (numbers) return { kind, key, numeric: true, values: numbers };
  const categories = [...new Set(raw.filter((v) => v !== null))].map(String).sort();
  return { kind, key, numeric: false, values: raw.map((v) => (v === null ? null : String(v))), categories };
}

// Positive numbers over two orders of magnitude or more (learning rates): read on a log axis.
function isLogSpread(c) {
  const present = c.numeric ? c.values.filter((v) => v !== null) : [];
  return present.length > 1 && present.every((v) => v > 0) && Math.max(...present) / Math.min(...present) >= 100;
}

function distinctCount(values) { return new Set(values.filter((v) => v !== null)).size; }

function columnId(kind, key) { return `${kind}:${key}`; }

function findColumn(data, id) {
  const [kind, ...rest] = id.split(":");
  return column(data, kind, rest.join(":"));
}

function drawParallel(Plotly, data, colourKey) {
  const canvas = document.getElementById("parallel");
  const columns = [
    ...Object.keys(data.params).map((k) => column(data, "param", k)),
    ...Object.keys(data.metrics).map((k) => column(data, "metric", k)),
  ];
  if (!columns.length) {  // runs without params or metrics: nothing to draw
    document.getElementById("parallel-panel").hidden = true;
    return;
  }
  const dimensions = columns.map((c) => {
    // Parallel coordinates write their labels and ticks as plain text: no escaping here.
    const label = c.kind === "metric" ? `${c.key} (latest)` : c.key;
    if (c.numeric && isLogSpread(c)) {
      const powers = [...new Set(c.values.filter((v) => v !== null).map((v) => Math.floor(Math.log10(v))))];
      return {
        label: `${label} (log)`, values: c.values.map((v) => (v === null ? NaN : Math.log10(v))),
        tickvals: powers, ticktext: powers.map((p) => String(10 ** p)),
      };
    }
    if (c.numeric) return { label, values: c.values.map((v) => (v === null ? NaN : v)) };
    const index = new Map(c.categories.map((name, i) => [name, i]));
    return {
      label, values: c.values.map((v) => (v === null ? NaN : index.get(v))),
      tickvals: c.categories.map((_, i) => i), ticktext: c.categories,
    };
  });
  const colour = colourKey ? (numericValues(data.metrics[colourKey]) || []) : [];
  const layout = baseLayout();
  layout.margin = { l: 70, r: 70, t: 48, b: 24 };
  layout.height = 420;
  const line = colour.length
    ? { color: colour.map((v) => (v === null ? NaN : v)), colorscale: "Viridis", showscale: true,
        colorbar: { title: { text: plotText(colourKey) }, thickness: 12 } }
    : { color: cssVar("--accent", "#2f6fde") };
  canvas.replaceChildren();
  Plotly.react(canvas, [{ type: "parcoords", dimensions, line, labelangle: -12,
    labelfont: { size: 12 }, tickfont: { size: 11 } }], layout, PLOT_CONFIG);
  canvas.removeAllListeners && canvas.removeAllListeners("plotly_restyle");
  canvas.on("plotly_restyle", () => listPicked(canvas, data, columns));
  listPicked(canvas, data, columns);
}

// The runs whose lines pass every range picked on the parallel axes, as links to them.
function listPicked(canvas, data, columns) {
  const picked = document.getElementById("parallel-picked");
  const dimensions = canvas.data[0].dimensions;
  const ranges = dimensions.map((d) => d.constraintrange).map((r) => (r && !Array.isArray(r[0]) ? [r] : r));
  const chosen = data.runs.map((run, i) => i).filter((i) => ranges.every((r, d) => {
    if (!r) return true;
    const v = dimensions[d].values[i];
    return r.some(([lo, hi]) => v >= lo && v <= hi);
  }));
  picked.replaceChildren();
  if (!ranges.some(Boolean)) {
    picked.textContent = "Drag along an axis to list the runs in that range.";
    return;
  }
  const title = document.createElement("p");
  title.textContent = `${chosen.length} run${chosen.length === 1 ? "" : "s"} in the picked ranges` +
    (chosen.length > 50 ? " (the first 50 listed):" : ":");
  picked.appendChild(title);
  const list = document.createElement("ul");
  chosen.slice(0, 50).forEach((i) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(data.runs[i].id)}`;
    link.textContent = data.runs[i].label;
    item.appendChild(link);
    list.appendChild(item);
  });
  picked.appendChild(list);
}

function drawScatter(Plotly, data, xId, yId) {
  const canvas = document.getElementById("scatter");
  const x = findColumn(data, xId);
  const y = findColumn(data, yId);
  const keep = data.runs.map((_, i) => i).filter((i) => x.values[i] !== null && y.values[i] !== null);
  const failed = (i) => data.runs[i].status === "FAILED";
  const [accent, error, card] = [cssVar("--accent", "#2f6fde"), cssVar("--error", "#b42318"), cssVar("--chart-bg", "#fff")];
  const trace = {
    type: "scatter", mode: "markers",
    x: keep.map((i) => x.values[i]), y: keep.map((i) => y.values[i]),
    customdata: keep.map((i) => data.runs[i].id),
    text: keep.map((i) => plotText(data.runs[i].label + (failed(i) ? " (failed)" : ""))),
    marker: {
      size: 9, opacity: 0.85, line: { width: 1, color: card },
      color: keep.map((i) => (failed(i) ? error : accent)),
      symbol: keep.map((i) => (failed(i) ? "x" : "circle")),
    },
    hovertemplate: `%{text}<br>${plotText(x.key)}: %{x}<br>${plotText(y.key)}: %{y:.5g}<extra></extra>`,
  };
  const layout = baseLayout();
  layout.height = 380;
  layout.xaxis.title = { text: plotText(x.key + (x.kind === "metric" ? " (latest)" : "")) };
  layout.yaxis.title = { text: plotText(y.key + (y.kind === "metric" ? " (latest)" : "")) };
  if (!x.numeric) {
    layout.xaxis.type = "category";
    layout.xaxis.categoryorder = "array";
    layout.xaxis.categoryarray = x.categories;
    trace.x = trace.x.map(plotText);
    layout.xaxis.categoryarray = x.categories.map(plotText);
  }
  if (isLogSpread(x)) layout.xaxis.type = "log";
  const drawn = canvas.classList.contains("js-plotly-plot");
  canvas.querySelectorAll("p").forEach((p) => p.remove());
  Plotly.react(canvas, [trace], layout, PLOT_CONFIG);
  if (!drawn) openRunOnClick(canvas);
}

function drawBars(Plotly, data, key) {
  const canvas = document.getElementById("bars");
  const values = data.metrics[key];
  const order = data.runs.map((_, i) => i).filter((i) => values[i] !== null).sort((a, b) => values[b] - values[a]);
  const colours = palette();
  const trace = {
    type: "bar",
    x: order.map((i) => plotText(data.runs[i].label)), y: order.map((i) => values[i]),
    customdata: order.map((i) => data.runs[i].id),
    marker: { color: order.map((i) => colours[i % colours.length]) },
    text: order.map((i) => Number(values[i]).toPrecision(4)), textposition: order.length <= 40 ? "outside" : "none",
    cliponaxis: false,
    hovertemplate: `%{x}<br>${plotText(key)}: %{y:.5g}<extra></extra>`,
  };
  const layout = baseLayout();
  layout.height = 340;
  layout.yaxis.title = { text: plotText(key) };
  layout.xaxis.type = "category";
  layout.xaxis.showticklabels = order.length <= 40;
  layout.bargap = 0.35;
  const drawn = canvas.classList.contains("js-plotly-plot");
  Plotly.react(canvas, [trace], layout, PLOT_CONFIG);
  if (!drawn) openRunOnClick(canvas);
}

function lineFigures(data) {
  const grid = document.getElementById("line-charts");
  grid.replaceChildren();
  data.lines.keys.forEach((key) => {
    const figure = document.createElement("figure");
    figure.className = "chart card";
    figure.dataset.key = key;
    const caption = document.createElement("figcaption");
    caption.textContent = key;
    const canvas = document.createElement("div");
    canvas.className = "chart-canvas";
    canvas.setAttribute("aria-label", `${key} by step`);
    figure.append(caption, canvas);
    grid.appendChild(figure);
  });
  drawLineCharts(grid, data);
}

function wireLineKeys(view, data, maxCharts) {
  const box = document.getElementById("line-keys");
  box.replaceChildren();
  const legend = document.createElement("legend");
  legend.textContent = "Metrics";
  box.appendChild(legend);
  data.series.forEach((key) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = key;
    input.checked = data.lines.keys.includes(key);
    label.append(input, ` ${key}`);
    box.appendChild(label);
  });
  box.addEventListener("change", async () => {
    const chosen = Array.from(box.querySelectorAll("input:checked")).map((i) => i.value).slice(0, maxCharts);
    const url = new URL(view.dataset.source, window.location.href);
    url.searchParams.delete("line");
    chosen.forEach((key) => url.searchParams.append("line", key));
    const fresh = await (await fetch(url, { headers: { Accept: "application/json" } })).json();
    data.lines = chosen.length ? fresh.lines : { ...fresh.lines, keys: [], series: {} };
    lineFigures(data);
  });
}

async function drawChartView() {
  const view = document.getElementById("chart-view");
  if (!view) return;
  const [response] = await Promise.all([fetch(view.dataset.source, { headers: { Accept: "application/json" } }),
    afterFirstPaint()]);
  const data = await response.json();
  if (!response.ok) {
    view.replaceChildren(Object.assign(document.createElement("p"), {
      className: "filter-error", textContent: data.message || `Error ${response.status}`,
    }));
    return;
  }
  const Plotly = await loadPlotly();
  const metricKeys = Object.keys(data.metrics);
  const paramKeys = Object.keys(data.params);
  const preferred = data.series[data.series.length - 1] || metricKeys[0];

  const colour = document.getElementById("parallel-colour");
  option(colour, "", "none", false);
  metricKeys.forEach((k) => option(colour, k, k, k === preferred));
  colour.addEventListener("change", () => drawParallel(Plotly, data, colour.value));
  drawParallel(Plotly, data, colour.value);

  const xSelect = document.getElementById("scatter-x");
  const ySelect = document.getElementById("scatter-y");
  // The param that varies most is the likeliest question ("how does val_acc follow lr?").
  const varied = paramKeys.reduce((best, k) => (best === null ||
    distinctCount(data.params[k]) > distinctCount(data.params[best]) ? k : best), null);
  paramKeys.forEach((k) => option(xSelect, columnId("param", k), `${k} (param)`, k === varied));
  metricKeys.forEach((k) => option(xSelect, columnId("metric", k), `${k} (metric)`, !paramKeys.length && k !== preferred));
  metricKeys.forEach((k) => option(ySelect, columnId("metric", k), k, k === preferred));
  const scatter = () => drawScatter(Plotly, data, xSelect.value, ySelect.value);
  xSelect.addEventListener("change", scatter);
  ySelect.addEventListener("change", scatter);
  if (metricKeys.length) scatter();
  else document.getElementById("scatter-panel").hidden = true;

  if (data.single.length) {
    const panel = document.getElementById("bars-panel");
    panel.hidden = false;
    const metric = document.getElementById("bars-metric");
    data.single.forEach((k, i) => option(metric, k, k, i === 0));
    metric.addEventListener("change", () => drawBars(Plotly, data, metric.value));
    drawBars(Plotly, data, metric.value);
  }

  if (data.series.length) {
    wireLineKeys(view, data, Number(view.dataset.maxLines || 4));
    wireLineControls(() => drawLineCharts(document.getElementById("line-charts"), data));
    lineFigures(data);
  } else {
    document.getElementById("lines-panel").hidden = true;
  }
  view.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  followRunCharts(drawEmbeddedCharts());
  drawChartView();
});
