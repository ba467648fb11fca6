// trackledger web page: the model registry's actions. Each is a JSON call to an MLflow REST route,
// so it goes through the same validation, write service and permission checks as the mlflow client.
"use strict";

const REGISTRY_API = "/ajax-api/2.0/mlflow/";

// {ok, status, body}: the route's JSON answer, or MLflow's error shape when it sent none.
async function sendJson(method, route, body) {
  let response;
  try {
    response = await fetch(REGISTRY_API + route, {
      method, headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0, body: { message: `The server did not answer: ${err}` } };
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok && !answer.message) answer.message = `Error ${response.status}`;
  return { ok: response.ok, status: response.status, body: answer };
}

function showError(form, message) {
  const error = form.querySelector(".form-error");
  error.textContent = message;
  error.hidden = false;
}

// The fields of a form as the route's JSON: checkboxes as booleans, the rest as strings.
function formFields(form) {
  const body = {};
  form.querySelectorAll("input[name], select[name], textarea[name]").forEach((field) => {
    body[field.name] = field.type === "checkbox" ? field.checked : field.value;
  });
  return body;
}

// Model page: each form.registry-form sends its fields to its route, then the page shows the result.
function wireRegistryForms() {
  document.querySelectorAll("form.registry-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const answer = await sendJson(form.dataset.method, form.dataset.api, formFields(form));
      button.disabled = false;
      if (answer.ok) window.location.reload();
      else showError(form, answer.body.message);
    });
  });
}

// Run page: "Register model" creates the model when the name is new (as mlflow.register_model does),
// then a version from the chosen logged model or a path in the run's artifacts, and opens it.
function wireRegisterModel() {
  const form = document.getElementById("register-model");
  if (!form) return;
  const source = form.querySelector("select[name=source]");
  const path = form.querySelector("input[name=path]");
  const togglePath = () => { path.hidden = source.value !== "runs"; path.required = !path.hidden; };
  source.addEventListener("change", togglePath);
  togglePath();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.querySelector("input[name=name]").value;
    const runId = form.dataset.runId;
    const chosen = source.selectedOptions[0];
    const version = { name, run_id: runId };
    if (source.value === "runs") version.source = `runs:/${runId}/${path.value.replace(/^\/+/, "")}`;
    else Object.assign(version, { source: source.value, model_id: chosen.dataset.modelId });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await sendJson("POST", "registered-models/create", { name });
      if (!created.ok && created.body.error_code !== "RESOURCE_ALREADY_EXISTS") {
        showError(form, created.body.message);
        return;
      }
      const registered = await sendJson("POST", "model-versions/create", version);
      if (!registered.ok) { showError(form, registered.body.message); return; }
      const number = registered.body.model_version.version;
      window.location.assign(`/models/${encodeURIComponent(name)}#version-${number}`);
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireRegistryForms();
  wireRegisterModel();
});
