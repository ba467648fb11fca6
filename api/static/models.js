// trackledger web page: the model registry's actions. Each is a JSON call (app.js's postJson) to an
// MLflow REST route, so it goes through the same validation, write service and permission checks as
// the mlflow client.
"use strict";

const REGISTRY_API = "/ajax-api/2.0/mlflow/";

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
      try {
        await postJson(REGISTRY_API + form.dataset.api, formFields(form), { method: form.dataset.method });
      } catch (err) {
        showError(form, err.message);
        return;
      } finally {
        button.disabled = false;
      }
      window.location.reload();
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
  // A logged model's own "Register" button opens the form with that model chosen.
  document.querySelectorAll("button.register-this").forEach((button) => {
    button.addEventListener("click", () => {
      source.value = `models:/${button.dataset.modelId}`;
      togglePath();
      form.closest("details").open = true;
      form.querySelector("input[name=name]").focus();
    });
  });
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
    let registered;
    try {
      await postJson(REGISTRY_API + "registered-models/create", { name }).catch((err) => {
        if (err.errorCode !== "RESOURCE_ALREADY_EXISTS") throw err;
      });
      registered = await postJson(REGISTRY_API + "model-versions/create", version);
    } catch (err) {
      showError(form, err.message);
      return;
    } finally {
      button.disabled = false;
    }
    const number = registered.model_version.version;
    window.location.assign(`/models/${encodeURIComponent(name)}#version-${number}`);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireRegistryForms();
  wireRegisterModel();
});
