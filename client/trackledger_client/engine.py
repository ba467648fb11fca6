"""One spool and its shipper per spool directory, shared by every store of a process, with what
the process created (for reads while the server is out) and what it does at exit."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from functools import partial

from mlflow.entities import LoggedModel
from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import get_default_host_creds

from trackledger_client.local import LocalRun
from trackledger_client.server import Server
from trackledger_client.settings import Settings
from trackledger_client.shipper import Shipper
from trackledger_client.spool import Spool

log = logging.getLogger("trackledger_client")


class Engine:
    _all: dict = {}
    _lock = threading.Lock()

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.spool = Spool(settings.spool_dir, url, settings.budget_bytes)
        self.server = Server(partial(get_default_host_creds, url), settings.request_timeout_s)
        self.shipper = Shipper(self.spool, self.server, settings.max_backoff_s)
        self.runs: dict[str, LocalRun] = {}
        self.models: dict[str, LoggedModel] = {}
        self.provisional: dict[str, str] = {}  # provisional experiment id -> name
        self.artifact_roots: dict[str, str] = {}  # experiment id -> its artifact location
        self.spool.adopt_leftovers()  # before anything waits for a flush: leftovers ship first
        self.shipper.start()
        atexit.register(self.at_exit)

    @classmethod
    def for_url(cls, url: str) -> Engine:
        settings = Settings.from_env(url)
        with cls._lock:
            engine = cls._all.get(settings.spool_dir)
            if engine is None:
                engine = cls._all[settings.spool_dir] = cls(url, settings)
            return engine

    def raise_refusals(self) -> None:
        """A write the server refused is the caller's mistake: raise it (the first; all are logged)."""
        if self.shipper.refusals:
            refusals, self.shipper.refusals = self.shipper.refusals, []
            raise refusals[0].error

    def flush_for_read(self) -> bool:
        return self.shipper.flush(self.settings.read_wait_s, give_up_when_unreachable=True)

    def at_exit(self) -> None:
        import mlflow

        try:  # mlflow's own exit hook ends the active run too, but it runs after this one
            if mlflow.active_run() is not None:
                mlflow.end_run()
        except MlflowException as e:
            log.error("trackledger: %s", e.message)
        shipped = self.shipper.flush(self.settings.exit_flush_s, give_up_when_unreachable=False)
        self.shipper.stop()
        for refusal in self.shipper.refusals:
            log.error("trackledger: refused by the server: %s", refusal.error.message)
        left = self.spool.unshipped_bytes()
        dropped = self.spool.dropped_points
        self.spool.close()
        if not shipped or left or dropped:
            print(
                f"trackledger: {left} bytes of logging not shipped yet stay in {self.spool.directory}"
                + (f" ({dropped} metric points dropped past the disk budget)" if dropped else "")
                + f"; the next process using it ships them, or run `trackledger sync {self.spool.directory}`",
                file=sys.stderr,
            )
