"""MLflow's file store (an ``mlruns`` directory), read through MLflow's own lossless migration.

MLflow keeps its file store in maintenance mode and ships ``mlflow migrate-filestore``, which reads
the directory (without changing it) into a new SQLite database. Rather than a second reader of that
format, the import runs it into a temporary database and reads that like any SQL store. It needs
the ``mlflow`` package where the import runs; the temporary database is removed at the end.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

from trackledger.importer.records import SourceError
from trackledger.importer.sqlite_source import SqliteSource


class FileStoreSource(SqliteSource):
    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory.removeprefix("file://"))
        if importlib.util.find_spec("mlflow") is None:
            raise SourceError(
                f"reading the file store {self.directory} needs the mlflow package "
                "(its migrate-filestore); or migrate it to SQLite first and import that"
            )
        self.workdir = tempfile.mkdtemp(prefix="trackledger-filestore-")
        db = os.path.join(self.workdir, "mlflow.db")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlflow",
                "migrate-filestore",
                "--source",
                self.directory,
                "--target",
                f"sqlite:///{db}",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
        )
        if done.returncode != 0:
            shutil.rmtree(self.workdir, ignore_errors=True)
            reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise SourceError(f"{self.directory} could not be read as an MLflow file store: {reason}")
        try:
            super().__init__(f"sqlite:///{db}")
        except SourceError:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def describe(self) -> str:
        return f"file://{self.directory}"

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.workdir, ignore_errors=True)
