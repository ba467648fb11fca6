"""The tracking store behind ``trackledger+http://`` (mlflow's ``mlflow.tracking_store`` entry point).

Writes append a record to the spool and return; reads go to the server, after this process's
writes have shipped (read-your-writes). While the server is out, reads of the runs, models and
experiments this process created are answered from what it logged, so ``log_model`` and
``set_experiment`` work offline; any other read says the server is out.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from functools import partial

from google.protobuf.json_format import Parse
from mlflow.entities import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    RunInfo,
    RunStatus,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.rest_utils import http_request, verify_rest_response

from trackledger_client import ids
from trackledger_client.engine import Engine
from trackledger_client.local import LocalRun, local_metric_history
from trackledger_client.server import short
from trackledger_client.settings import server_url

ARTIFACT_SCHEME = "trackledger-artifacts"
PENDING = f"{ARTIFACT_SCHEME}:/.pending"
RUN_NAME_TAG = "mlflow.runName"
READ_RETRIES = 2
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def tracking_store(store_uri: str, artifact_uri: str | None = None) -> SpoolingStore:
    return SpoolingStore(store_uri)


def registry_store(store_uri: str, tracking_uri: str | None = None, **_) -> RegistryRestStore:
    """The model registry is not spooled: its calls go to the server as with ``http://``."""
    return RegistryRestStore(partial(get_default_host_creds, server_url(store_uri)))


class ServerOut(MlflowException):
    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"trackledger: the tracking server at {url} is out ({detail}); logging goes on into the "
            "spool, but this read needs the server",
            error_code=TEMPORARILY_UNAVAILABLE,
        )


def _out_or_refused(error: MlflowException) -> bool:
    """Whether a read of something this process created may be answered from what it logged: the
    server is out, or it refused the creation (which ``end_run`` raises; the read need not)."""
    return isinstance(error, ServerOut) or error.error_code == "RESOURCE_DOES_NOT_EXIST"


def artifact_uri_for_client(uri: str | None) -> str | None:
    """The server's ``mlflow-artifacts:`` locations, as this plugin's artifact repository takes
    them (mlflow's own refuses a tracking URI that is not plain http)."""
    if uri and uri.startswith("mlflow-artifacts:"):
        return ARTIFACT_SCHEME + uri.removeprefix("mlflow-artifacts")
    return uri


class SpoolingStore(RestStore):
    def __init__(self, store_uri: str) -> None:
        self.url = server_url(store_uri)
        super().__init__(partial(get_default_host_creds, self.url))
        self.engine = Engine.for_url(self.url)
        self.spool = self.engine.spool
        self._capture = threading.local()

    # Requests ---------------------------------------------------------------------------

    def _call_endpoint(
        self, api, json_body=None, endpoint=None, retry_timeout_seconds=None, response_proto=None
    ):
        method_to_info = self._V3_METHOD_TO_INFO if api in self._V3_APIS else self._METHOD_TO_INFO
        default_endpoint, method = method_to_info[api]
        endpoint = endpoint or default_endpoint
        response_proto = response_proto or api.Response()
        if getattr(self._capture, "on", False):
            # A write mlflow's RestStore encoded: spooled as it would have been sent.
            self.spool.append(["req", method, endpoint, json.loads(json_body) if json_body else None])
            return response_proto
        if self.engine.shipper.unreachable:
            raise ServerOut(self.url, "it did not answer the last request")
        body = json.loads(json_body) if json_body else None
        try:
            response = http_request(
                self.get_host_creds(),
                endpoint,
                method,
                max_retries=READ_RETRIES,
                backoff_factor=1,
                **({"params": body} if method == "GET" else {"json": body}),
            )
        except MlflowException as e:
            self.engine.shipper.mark_unreachable(str(e))
            raise ServerOut(self.url, short(str(e))) from None
        response = verify_rest_response(response, endpoint)
        if response.status_code != 204:
            Parse(response.text, response_proto, ignore_unknown_fields=True)
        return response_proto

    def _spooled(self, method, *args, **kwargs):
        self._capture.on = True
        try:
            return method(*args, **kwargs)
        finally:
            self._capture.on = False

    # Experiments ----------------------------------------------------------------------------

    def _provisional_experiment(self, name: str) -> Experiment:
        experiment_id = "pending-" + ids.derived_id(f"experiment:{name}", "experiment")[:16]
        if experiment_id not in self.engine.provisional:
            self.engine.provisional[experiment_id] = name
            self.spool.append(["exp", name])
        return Experiment(experiment_id, name, PENDING, LifecycleStage.ACTIVE)

    def _known(self, experiment: Experiment | None) -> Experiment | None:
        if experiment is not None:
            experiment._artifact_location = artifact_uri_for_client(experiment.artifact_location)
            self.engine.artifact_roots[experiment.experiment_id] = experiment.artifact_location
        return experiment

    def get_experiment_by_name(self, experiment_name):
        try:
            return self._known(super().get_experiment_by_name(experiment_name))
        except ServerOut:
            return self._provisional_experiment(experiment_name)

    def create_experiment(self, name, artifact_location=None, tags=None):
        try:
            return super().create_experiment(name, artifact_location, tags)
        except ServerOut:
            return self._provisional_experiment(name).experiment_id

    def _real_id(self, experiment_id: str) -> str:
        """A provisional experiment id as the server knows it, once the shipper has created it."""
        name = self.engine.provisional.get(experiment_id)
        return self.engine.shipper.experiments.get(name, experiment_id) if name else experiment_id

    def get_experiment(self, experiment_id):
        real = self._real_id(experiment_id)
        if real in self.engine.provisional:
            return Experiment(experiment_id, self.engine.provisional[real], PENDING, LifecycleStage.ACTIVE)
        return self._known(super().get_experiment(real))

    def search_experiments(self, *args, **kwargs):
        self.engine.flush_for_read()
        experiments = super().search_experiments(*args, **kwargs)
        for experiment in experiments:
            self._known(experiment)
        return experiments

    # Runs -----------------------------------------------------------------------------------

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        experiment_id = str(experiment_id)
        key = uuid.uuid4().hex
        run_id = ids.run_id(key)
        tags = list(tags or [])
        tag_name = next((t.value for t in tags if t.key == RUN_NAME_TAG), None)
        run_name = run_name or tag_name or _generate_random_name()
        if tag_name is None:
            tags.append(RunTag(RUN_NAME_TAG, run_name))
        self.spool.append(
            [
                "run",
                key,
                run_id,
                experiment_id,
                self.engine.provisional.get(experiment_id),
                user_id or "",
                start_time,
                run_name,
                [[t.key, t.value] for t in tags],
            ]
        )
        root = self._artifact_root(experiment_id)
        artifact_uri = f"{root}/{run_id}/artifacts" if root else f"{PENDING}/runs/{run_id}/artifacts"
        info = RunInfo(
            run_id, experiment_id, user_id or "", RunStatus.to_string(RunStatus.RUNNING), start_time,
            None, LifecycleStage.ACTIVE, artifact_uri, run_name,
        )  # fmt: skip
        local = self.engine.runs[run_id] = LocalRun(info, {t.key: t.value for t in tags})
        return local.as_run()

    def _artifact_root(self, experiment_id: str) -> str | None:
        if experiment_id in self.engine.provisional:
            return None
        if experiment_id not in self.engine.artifact_roots:
            try:
                self.get_experiment(experiment_id)
            except MlflowException:
                return None
        root = self.engine.artifact_roots.get(experiment_id)
        return root.rstrip("/") if root else None

    def log_metric(self, run_id, metric):
        value = metric.value
        if not math.isfinite(value):
            value = _NONFINITE.get(value, "NaN")
        extra = {}
        if metric.model_id or metric.dataset_name:
            extra = {
                k: v
                for k, v in (
                    ("model_id", metric.model_id),
                    ("dataset_name", metric.dataset_name),
                    ("dataset_digest", metric.dataset_digest),
                )
                if v
            }
        self.spool.append(["m", run_id, metric.key, value, metric.timestamp, metric.step, extra])
        local = self.engine.runs.get(run_id)
        if local is not None:
            local.metric(metric)

    def log_param(self, run_id, param):
        self.spool.append(["p", run_id, param.key, str(param.value)])
        local = self.engine.runs.get(run_id)
        if local is not None:
            local.params.setdefault(param.key, str(param.value))

    def set_tag(self, run_id, tag):
        self.spool.append(["t", run_id, tag.key, str(tag.value)])
        local = self.engine.runs.get(run_id)
        if local is not None:
            local.tags[tag.key] = str(tag.value)
            if tag.key == RUN_NAME_TAG:
                local.info._run_name = str(tag.value)

    def log_batch(self, run_id, metrics, params, tags):
        for param in params:
            self.log_param(run_id, param)
        for metric in metrics:
            self.log_metric(run_id, metric)
        for tag in tags:
            self.set_tag(run_id, tag)

    def delete_tag(self, run_id, key):
        self._spooled(super().delete_tag, run_id, key)
        local = self.engine.runs.get(run_id)
        if local is not None:
            local.tags.pop(key, None)

    def log_inputs(self, run_id, datasets=None, models=None):
        self._spooled(super().log_inputs, run_id, datasets, models)

    def log_outputs(self, run_id, models):
        self._spooled(super().log_outputs, run_id, models)
        local = self.engine.runs.get(run_id)
        if local is not None:
            local.outputs.extend(models)

    def update_run_info(self, run_id, run_status, end_time, run_name):
        body = {"run_id": run_id, "run_uuid": run_id, "status": RunStatus.to_string(run_status)}
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        self.spool.append(["req", "POST", "/api/2.0/mlflow/runs/update", body])
        local = self.engine.runs.get(run_id)
        info = local.update(run_status, end_time, run_name) if local else None
        if RunStatus.is_terminated(run_status):
            # Ending a run is where a refused write surfaces (shipping is waited for while the
            # server answers; an out server does not hold the script).
            self.engine.flush_for_read()
            self.engine.raise_refusals()
        return info or RunInfo(
            run_id,
            "",
            "",
            RunStatus.to_string(run_status),
            0,
            end_time,
            LifecycleStage.ACTIVE,
            None,
            run_name,
        )

    def flush_async_logging(self):
        self.engine.flush_for_read()
        self.engine.raise_refusals()

    def get_run(self, run_id):
        local = self.engine.runs.get(run_id)
        if local is not None and not self.engine.flush_for_read():
            return local.as_run()
        try:
            run = super().get_run(run_id)
        except MlflowException as e:
            if local is None or not _out_or_refused(e):
                raise
            return local.as_run()
        run.info._artifact_uri = artifact_uri_for_client(run.info.artifact_uri)
        return run

    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        if run_id in self.engine.runs and not self.engine.flush_for_read():
            return local_metric_history(self.spool, run_id, metric_key)
        return super().get_metric_history(run_id, metric_key, max_results, page_token)

    def _search_runs(self, experiment_ids, *args, **kwargs):
        self.engine.flush_for_read()
        runs, token = super()._search_runs([self._real_id(i) for i in experiment_ids], *args, **kwargs)
        for run in runs:
            run.info._artifact_uri = artifact_uri_for_client(run.info.artifact_uri)
        return runs, token

    # Logged models --------------------------------------------------------------------------

    def create_logged_model(
        self, experiment_id, name=None, source_run_id=None, tags=None, params=None, model_type=None
    ):
        experiment_id = str(experiment_id)
        key = uuid.uuid4().hex
        model_id = ids.logged_model_id(key)
        name = name or f"model-{model_id[2:10]}"
        body = {
            "name": name,
            "model_type": model_type or "",
            "source_run_id": source_run_id or "",
            "params": [{"key": p.key, "value": p.value} for p in params or []],
            "tags": [{"key": t.key, "value": t.value} for t in tags or []],
        }
        provisional = self.engine.provisional.get(experiment_id)
        self.spool.append(["model", key, model_id, experiment_id, provisional, body])
        root = self._artifact_root(experiment_id)
        location = f"{root}/models/{model_id}/artifacts" if root else f"{PENDING}/models/{model_id}/artifacts"
        now = int(time.time() * 1000)
        model = LoggedModel(
            experiment_id, model_id, name, location, now, now, model_type, source_run_id,
            LoggedModelStatus.PENDING, tags={t.key: t.value for t in tags or []},
            params={p.key: p.value for p in params or []},
        )  # fmt: skip
        self.engine.models[model_id] = model
        return model

    def get_logged_model(self, model_id, allow_deleted=False):
        local = self.engine.models.get(model_id)
        if local is not None and not self.engine.flush_for_read():
            return local
        try:
            model = super().get_logged_model(model_id, allow_deleted)
        except MlflowException as e:
            if local is None or not _out_or_refused(e):
                raise
            return local
        model._artifact_location = artifact_uri_for_client(model.artifact_location)
        return model

    def finalize_logged_model(self, model_id, status):
        self._spooled(super().finalize_logged_model, model_id, status)
        local = self.engine.models.get(model_id)
        if local is not None:
            local._status = status
            return local
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id, tags):
        self._spooled(super().set_logged_model_tags, model_id, tags)
        if (local := self.engine.models.get(model_id)) is not None:
            local._tags.update({t.key: t.value for t in tags})

    def delete_logged_model_tag(self, model_id, key):
        self._spooled(super().delete_logged_model_tag, model_id, key)
        if (local := self.engine.models.get(model_id)) is not None:
            local._tags.pop(key, None)

    def log_logged_model_params(self, model_id, params):
        self._spooled(super().log_logged_model_params, model_id, params)
        if (local := self.engine.models.get(model_id)) is not None:
            local._params.update({p.key: p.value for p in params})

    def search_logged_models(self, *args, **kwargs):
        self.engine.flush_for_read()
        return super().search_logged_models(*args, **kwargs)
