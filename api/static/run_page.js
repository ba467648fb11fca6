// Run page: edits through the MLflow REST API (postJson, app.js).
"use strict";

const API = "/ajax-api/2.0/mlflow/";

function runId() {
  return document.querySelector("main [data-run-id]").dataset.runId;
}

function showStatus(status, message) {
  if (!status) return;
  status.textContent = message;
  status.hidden = !message;
  status.classList.toggle("error", Boolean(message));
}

// Each form.run-edit posts its fields (with the run's id) to its data-api route; on success the page
// is loaded again (it shows the change and the new audit entry), on refusal the server's message is
// shown in the form's own status line.
function wireRunEdits() {
  document.querySelectorAll("form.run-edit").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector(".edit-status") || form.closest(".run-actions, .card").querySelector(".edit-status");
      const fields = Object.fromEntries(new FormData(form).entries());
      if (fields.run_name !== undefined) fields.run_name = fields.run_name.trim();
      let route = form.dataset.api;
      if ("note" in form.dataset && !fields.value.trim()) {
        if (!form.dataset.hasNote) { form.hidden = true; return; }
        route = "runs/delete-tag";  // an emptied description removes the tag
        delete fields.value;
      }
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await postJson(API + route, { run_id: runId(), ...fields });
      } catch (err) {
        showStatus(status, err.status ? `${err.message} (${err.status})` : err.message);
        buttons.forEach((b) => { b.disabled = false; });
        return;
      }
      window.location.reload();
    });
  });
  // Buttons that open and close a form (rename, description).
  document.querySelectorAll("[data-opens]").forEach((button) => {
    button.addEventListener("click", () => {
      const form = document.getElementById(button.dataset.opens);
      form.hidden = false;
      const field = form.querySelector("input:not([type=hidden]), textarea");
      if (field) { field.focus(); field.select?.(); }
    });
  });
  document.querySelectorAll("[data-closes]").forEach((button) => {
    button.addEventListener("click", () => {
      const form = document.getElementById(button.dataset.closes);
      form.hidden = true;
      showStatus(form.querySelector(".edit-status"), "");
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireRunEdits();
});
