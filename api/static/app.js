// trackledger web page: the little behaviour the server-rendered pages need. No framework, no build step.
"use strict";

// The page's writes to the REST API (`/ajax-api/2.0/mlflow/...`): the body as JSON, the answer parsed.
// A refusal throws an ApiError carrying the server's own message (e.g. "Run ... not found"), its
// HTTP status and MLflow error code, for the page to show where the user acted. The browser adds the
// page's Origin, which the server checks (cross-site writes are refused).
class ApiError extends Error {
  constructor(message, status, errorCode) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errorCode = errorCode;
  }
}

async function postJson(path, body, { method = "POST" } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body ?? {}),
    });
  } catch (err) {
    throw new ApiError(`The server did not answer (${err.message})`, 0, "NETWORK_ERROR");
  }
  const text = await response.text();
  let answer = {};
  try { answer = text ? JSON.parse(text) : {}; } catch { answer = { message: text.slice(0, 300) }; }
  if (!response.ok) {
    throw new ApiError(answer.message || `Error ${response.status}`, response.status, answer.error_code || "");
  }
  return answer;
}

// Artifact previews (any page with the artifact browser of _artifacts.html): the server renders the
// preview (escaped) and it is shown beside the tree.
function wirePreviews() {
  const panel = document.getElementById("artifact-preview");
  if (!panel) return;
  document.querySelectorAll("button.preview-button").forEach((button) => {
    button.addEventListener("click", async () => {
      document.querySelectorAll("button.preview-button[aria-pressed=true]").forEach((b) => b.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      panel.hidden = false;
      panel.setAttribute("aria-busy", "true");
      panel.textContent = "Loading…";
      try {
        const response = await fetch(button.dataset.preview, { headers: { Accept: "text/html" } });
        const text = await response.text();
        if (response.ok) {
          panel.innerHTML = text;  // the server's own template: every value in it is escaped
        } else {
          let message = `Error ${response.status}`;
          try { message = `${JSON.parse(text).message} (${response.status})`; } catch { /* not JSON */ }
          const error = document.createElement("p");
          error.className = "error preview-error";
          error.textContent = message;
          panel.replaceChildren(error);
        }
      } catch (err) {
        panel.textContent = `The server did not answer: ${err.message}`;
      } finally {
        panel.removeAttribute("aria-busy");
      }
    });
  });
}

// Live pages: an element with data-live follows the ledger's event stream (EventSource resumes
// after a dropped connection by itself, with Last-Event-ID).
function follow(element, types, onEvent) {
  if (!element || !element.dataset.live || typeof EventSource === "undefined") return;
  const source = new EventSource(element.dataset.live);
  types.forEach((type) => source.addEventListener(type, (message) => onEvent(JSON.parse(message.data))));
  window.addEventListener("pagehide", () => source.close());
}

// Replace the element matching selector with its current version from the server, at most every 2 s;
// swap(current, fresh) may carry state over (it is called just before the replacement).
function refresher(selector, swap) {
  let scheduled = false;
  let last = 0;
  return () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(async () => {
      last = Date.now();
      try {
        const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector(selector);
        const current = document.querySelector(selector);
        if (fresh && current) {
          swap(current, fresh);
          current.replaceWith(fresh);
        }
      } finally {
        scheduled = false;
      }
    }, Math.max(0, last + 2000 - Date.now()));
  };
}

// Experiment page: the runs table is fetched again (keeping ticked runs) when its runs change.
function followRunsTable() {
  const region = document.getElementById("runs-region");
  if (!region) return;
  const refresh = refresher("#runs-region", (current, fresh) => {
    const ticked = new Set(Array.from(current.querySelectorAll('input[name="run"]:checked')).map((box) => box.value));
    fresh.querySelectorAll('input[name="run"]').forEach((box) => { box.checked = ticked.has(box.value); });
    setTimeout(() => { wireRunSelection(); wireRunTree(); });
  });
  const types = ["run_created", "run_updated", "run_deleted", "run_restored", "batch_logged", "run_tag_deleted"];
  follow(region, types, refresh);
}

// Runs table: "Compare selected" is enabled once two runs are ticked.
function wireRunSelection() {
  const button = document.getElementById("compare-button");
  if (!button) return;
  const boxes = Array.from(document.querySelectorAll('input[name="run"][form="compare-form"]'));
  const update = () => {
    const n = boxes.filter((b) => b.checked).length;
    button.disabled = n < 2;
    button.textContent = n ? `Compare ${n} selected` : "Compare selected";
  };
  boxes.forEach((b) => b.addEventListener("change", update));
  const all = document.getElementById("select-all");
  const shown = () => boxes.filter((b) => !b.closest("tr").hidden);  // not those under a folded parent
  if (all) all.addEventListener("change", () => { shown().forEach((b) => { b.checked = all.checked; }); update(); });
  update();
}

// Runs table: a parent run's toggle folds the runs under it. The folded parents are kept per
// experiment for the browser tab (sessionStorage), so paging, sorting and live refreshes keep them.
function wireRunTree() {
  const table = document.getElementById("runs");
  if (!table) return;
  const key = `trackledger.folded:${window.location.pathname}`;
  const folded = new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
  const rows = Array.from(table.querySelectorAll("tbody tr[data-run]"));
  const apply = () => {
    const under = new Set();  // runs whose children are out of sight (rows come in tree order)
    rows.forEach((row) => {
      row.hidden = row.dataset.parent !== undefined && under.has(row.dataset.parent);
      if (row.hidden || folded.has(row.dataset.run)) under.add(row.dataset.run);
      const toggle = row.querySelector(".tree-toggle");
      if (toggle) toggle.setAttribute("aria-expanded", String(!folded.has(row.dataset.run)));
    });
  };
  rows.forEach((row) => {
    const toggle = row.querySelector(".tree-toggle");
    if (!toggle) return;
    toggle.addEventListener("click", () => {
      const run = row.dataset.run;
      if (!folded.delete(run)) folded.add(run);
      sessionStorage.setItem(key, JSON.stringify(Array.from(folded)));
      apply();
    });
  });
  apply();
}

// Runs table: the column chooser's search box shows only the columns whose key contains its text.
function wireColumnChooser() {
  const search = document.getElementById("chooser-search");
  if (!search) return;
  const panel = search.closest(".chooser-panel");
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  search.addEventListener("input", () => {
    const needle = search.value.trim().toLowerCase();
    let found = 0;
    panel.querySelectorAll("fieldset").forEach((set) => {
      const labels = Array.from(set.querySelectorAll("label"));
      labels.forEach((label) => { label.hidden = !label.textContent.toLowerCase().includes(needle); });
      const shown = labels.filter((label) => !label.hidden).length;
      set.hidden = needle !== "" && shown === 0;
      found += shown;
    });
    panel.querySelector(".chooser-none").hidden = found > 0 || needle === "";
  });
}

// Compare page: hide rows whose values are the same in every run.
function wireDifferenceToggle() {
  const toggle = document.getElementById("only-differences");
  if (!toggle) return;
  toggle.addEventListener("change", () => {
    document.querySelectorAll("table.compare").forEach((t) => t.classList.toggle("only-differences", toggle.checked));
  });
}

// SQL page: post the query to the read-only SQL endpoint and show the rows as a table.
function wireSqlForm() {
  const form = document.getElementById("sql-form");
  if (!form) return;
  const textarea = form.querySelector("textarea");
  const status = document.getElementById("sql-status");
  const result = document.getElementById("sql-result");
  const show = (message, isError) => { status.textContent = message; status.classList.toggle("error", isError); };
  const cell = (tag, text) => { const el = document.createElement(tag); el.textContent = text; return el; };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("Running…", false);
    result.replaceChildren();
    const started = performance.now();
    let response, body;
    try {
      response = await fetch(form.action, {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ query: textarea.value }),
      });
      body = await response.json();
    } catch (err) {
      show(`The server did not answer: ${err}`, true);
      return;
    }
    if (!response.ok) { show(body.message || `Error ${response.status}`, true); return; }
    const ms = Math.round(performance.now() - started);
    const rows = body.rows || [];
    const table = document.createElement("table");
    table.className = "data-table";
    table.id = "sql-table";
    const head = document.createElement("tr");
    (body.columns || []).forEach((c) => head.appendChild(cell("th", typeof c === "string" ? c : c.name)));
    table.createTHead().appendChild(head);
    const tbody = table.createTBody();
    rows.forEach((row) => {
      const tr = tbody.insertRow();
      row.forEach((v) => tr.appendChild(cell("td", v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v))));
    });
    result.appendChild(table);
    const capped = body.truncated ? ` (stopped at the ${rows.length.toLocaleString()}-row cap)` : "";
    show(`${rows.length.toLocaleString()} row${rows.length === 1 ? "" : "s"}${capped} in ${ms} ms`, false);
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
}

// The mlflow client prints MLflow-UI links ("View run at http://host/#/experiments/1/runs/<id>"): follow them.
function followMlflowLink() {
  const match = window.location.hash.match(/^#\/experiments\/([^/]+)(?:\/runs\/([0-9a-f]+))?/);
  if (match) window.location.replace(match[2] ? `/runs/${match[2]}` : `/experiments/${match[1]}`);
}

document.addEventListener("DOMContentLoaded", () => {
  followMlflowLink();
  wireRunSelection();
  wireRunTree();
  wireColumnChooser();
  wireDifferenceToggle();
  wireSqlForm();
  followRunsTable();
  wireApiForms();
  wirePreviews();
});

// Admin page: each form posts its fields as JSON to the API route in data-api, then reloads.
function wireApiForms() {
  const status = document.getElementById("admin-status");
  document.querySelectorAll("form.api-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(new FormData(form).entries());
      try {
        await postJson(form.dataset.api, body, { method: form.dataset.method || "POST" });
      } catch (err) {
        status.textContent = err.message;
        status.classList.add("error");
        return;
      }
      window.location.reload();
    });
  });
}
