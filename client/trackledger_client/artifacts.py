"""The artifact repository for ``trackledger-artifacts:`` locations (the plugin's name for the
server's ``mlflow-artifacts:``; mlflow's own repository for those refuses a ``trackledger+http``
tracking URI).

Uploads go straight to the server's artifact proxy while it answers; when it does not (or the run
or model was created offline and its location is not known yet), the files are copied into the
spool and uploaded later by the shipper, so ``log_model`` never fails a finished training.
"""

from __future__ import annotations

import os
import shutil
import uuid

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
from mlflow.tracking._tracking_service.utils import _get_store, get_tracking_uri

from trackledger_client.server import Unavailable, upload
from trackledger_client.spool import ARTIFACTS_DIR
from trackledger_client.store import ARTIFACT_SCHEME, PENDING, SpoolingStore

DIRECT_UPLOAD_WAIT_S = 5.0


class SpoolingArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        store = _get_store(tracking_uri or get_tracking_uri())
        if not isinstance(store, SpoolingStore):
            raise MlflowException(
                f"{artifact_uri}: {ARTIFACT_SCHEME} locations need a trackledger+http(s) tracking URI"
            )
        self.store = store
        self.engine = store.engine
        # (kind, id) of a run or model created offline, whose location only the server knows yet
        self.pending: tuple[str, str] | None = None
        self.path = ""
        if artifact_uri.startswith(PENDING + "/"):
            kind, entity_id, *rest = artifact_uri.removeprefix(PENDING + "/").split("/")
            self.pending = (kind.removesuffix("s"), entity_id)
            self.path = "/".join(rest[1:])  # after ".../artifacts"

    def _location(self) -> str:
        """The server's ``mlflow-artifacts:`` location (asking the server for an offline one)."""
        if self.pending is None:
            return "mlflow-artifacts" + self.artifact_uri.removeprefix(ARTIFACT_SCHEME)
        kind, entity_id = self.pending
        if kind == "run":
            base = self.store.get_run(entity_id).info.artifact_uri
        else:
            base = self.store.get_logged_model(entity_id).artifact_location
        if base.startswith(PENDING):
            raise MlflowException(f"{self.artifact_uri}: not on the server yet (it is out)")
        base = "mlflow-artifacts" + base.removeprefix(ARTIFACT_SCHEME)
        return f"{base}/{self.path}" if self.path else base

    def _inner(self) -> MlflowArtifactsRepository:
        return MlflowArtifactsRepository(self._location(), tracking_uri=self.store.url)

    # Writes -------------------------------------------------------------------------------

    def log_artifact(self, local_file, artifact_path=None):
        self._log([(local_file, os.path.basename(local_file))], artifact_path)

    def log_artifacts(self, local_dir, artifact_path=None):
        files = []
        for folder, _, names in os.walk(local_dir):
            for name in names:
                source = os.path.join(folder, name)
                files.append((source, os.path.relpath(source, local_dir).replace(os.sep, "/")))
        self._log(sorted(files, key=lambda f: f[1]), artifact_path)

    def _log(self, files: list[tuple[str, str]], artifact_path: str | None) -> None:
        prefix = "/".join(p for p in (self.path if self.pending else "", artifact_path or "") if p)
        remaining = files
        # Directly while the server answers and the spool ahead of these files (the run's or model's
        # creation) has shipped within a moment; else after it, in order, from the spool.
        if self.pending is None and self.engine.shipper.flush(
            DIRECT_UPLOAD_WAIT_S, give_up_when_unreachable=True
        ):
            location = self._location()
            while remaining:
                source, name = remaining[0]
                destination = "/".join(p for p in (artifact_path or "", name) if p)
                try:
                    upload(self.engine.server, location, destination, source, key=None)
                except Unavailable as e:
                    self.engine.shipper.mark_unreachable(str(e))
                    break
                remaining = remaining[1:]
        if remaining:
            self._spool(remaining, prefix)

    def _spool(self, files: list[tuple[str, str]], prefix: str) -> None:
        folder = uuid.uuid4().hex
        root = self.engine.spool.directory / ARTIFACTS_DIR / folder
        for source, name in files:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        if self.pending is not None:
            kind, entity_id = self.pending
        else:
            kind, entity_id = "uri", "mlflow-artifacts" + self.artifact_uri.removeprefix(ARTIFACT_SCHEME)
        # Recorded after the copy: a record never names a file that is not there.
        self.engine.spool.append(["art", kind, entity_id, prefix, folder, [name for _, name in files]])

    # Reads (the server's) -------------------------------------------------------------------

    def list_artifacts(self, path=None):
        return self._inner().list_artifacts(path)

    def _download_file(self, remote_file_path, local_path):
        return self._inner()._download_file(remote_file_path, local_path)

    def delete_artifacts(self, artifact_path=None):
        return self._inner().delete_artifacts(artifact_path)
