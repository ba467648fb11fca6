"""The shipper: one background thread that sends the spool to the server, oldest record first.

Consecutive metrics, params and tags of one run travel as one ``log-batch`` (within MLflow's
limits); every other record is a request of its own. Each request carries an ``Idempotency-Key``
derived from where its records sit in the spool, and the range is written to the segment's cursor
before the request is sent, so a resend (after a timeout, a crash, by another process) is the same
request under the same key: the server appends it once. Unreachable, 5xx and 429 mean: back off
with jitter and try again, forever. Any other refusal is the caller's mistake: it is logged, kept
for the writing process to raise, and shipping goes on past it (a refused batch is resent record
by record, so only the refused records are lost).
"""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from dataclasses import dataclass

from mlflow.exceptions import MlflowException, RestException

from trackledger_client.server import Server, Unavailable, short, upload
from trackledger_client.spool import ARTIFACTS_DIR, Segment, Spool

log = logging.getLogger("trackledger_client")
API = "/api/2.0/mlflow"
READ_BYTES = 4 << 20
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
BATCHED = frozenset({"m", "p", "t"})
SYNC_INTERVAL_S = 0.05
ADOPT_INTERVAL_S = 30.0
BUDGET_INTERVAL_S = 1.0
FIRST_BACKOFF_S = 0.25


@dataclass(frozen=True)
class Refusal:
    run_id: str | None
    error: MlflowException


@dataclass
class Unit:
    """Records shipped as one request: ``records`` span [start, end) of a segment."""

    segment: Segment
    start: int
    end: int
    records: list[list]

    @property
    def key(self) -> str:
        first = self.records[0]
        if first[0] in ("run", "model"):
            return first[1]  # the key its id was derived from
        return f"{self.segment.name}:{self.start}-{self.end}"


class Shipper:
    def __init__(self, spool: Spool, server: Server, max_backoff_s: float) -> None:
        self.spool = spool
        self.server = server
        self.max_backoff_s = max_backoff_s
        self.refusals: list[Refusal] = []
        self.unreachable_since: float | None = None
        self.attempted = False  # whether the server has been tried at all
        self.experiments: dict[str, str] = {}  # name -> id on the server
        self._failures = 0
        self._retry_at = 0.0
        self._split_until: dict[str, int] = {}  # segment -> end of a refused batch resent one by one
        self._refused_runs: set[str] = set()  # runs whose creation was refused: the rest of theirs is too
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._urgent = 0
        self._thread = threading.Thread(target=self._loop, name="trackledger-shipper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def unreachable(self) -> bool:
        return self.unreachable_since is not None

    def mark_unreachable(self, why: str) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = time.monotonic()
            log.warning(
                "trackledger: the server is out (%s); logging goes on into %s",
                short(why),
                self.spool.directory,
            )

    # Waiting for it (other threads) -----------------------------------------------------

    def flush(self, timeout_s: float, give_up_when_unreachable: bool) -> bool:
        """Wait until everything appended so far is shipped; False when it is not (timed out,
        or the server is unreachable and ``give_up_when_unreachable``)."""
        marks = {s: s.size for s in self.spool.snapshot()}
        deadline = time.monotonic() + timeout_s
        with self._progress:
            self._urgent += 1
        self._wake.set()
        try:
            with self._progress:
                while True:
                    pending = [s for s in self.spool.snapshot() if s in marks and s.cursor.shipped < marks[s]]
                    if not pending:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or (give_up_when_unreachable and self.unreachable):
                        return False
                    self._progress.wait(min(remaining, 0.1))
        finally:
            with self._progress:
                self._urgent -= 1

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    # The thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        next_adopt = next_budget = 0.0
        while not self._stop.is_set():
            try:
                self.spool.sync()
                now = time.monotonic()
                if now >= next_adopt:
                    self.spool.adopt_leftovers()
                    next_adopt = now + ADOPT_INTERVAL_S
                if now >= next_budget:
                    self.spool.enforce_budget()
                    next_budget = now + BUDGET_INTERVAL_S
                busy = now >= self._retry_at and self.ship_once()
                if not busy and self.unreachable and time.monotonic() >= self._retry_at:
                    self._probe()
            except Exception:  # the thread must outlive anything; the next pass tries again
                log.exception("trackledger: the shipper failed; retrying")
                busy = False
                self._backoff()
            if not busy:
                wait = max(SYNC_INTERVAL_S, min(self._retry_at - time.monotonic(), SYNC_INTERVAL_S * 4))
                self._wake.wait(wait)
                self._wake.clear()

    def ship_once(self) -> bool:
        """Ship one request's worth; False when there was nothing to do or the server is out."""
        for segment in self.spool.snapshot():
            if segment.cursor.shipped >= segment.size:
                if not segment.open_for_append and not self.spool.is_current(segment):
                    self.spool.retire(segment)
                continue
            unit = self._next_unit(segment)
            if unit is None:
                continue
            return self._ship(unit)
        return False

    def ship_all(self) -> bool:
        """Ship until nothing is left (the sync command); False if the server went out first."""
        while True:
            self.spool.sync()
            if self.unreachable and time.monotonic() < self._retry_at:
                return False
            if not self.ship_once():
                return not self.unreachable and all(s.cursor.shipped >= s.size for s in self.spool.snapshot())

    def _next_unit(self, segment: Segment) -> Unit | None:
        cursor = segment.cursor
        if cursor.inflight is not None:
            start, end = cursor.inflight
            return Unit(segment, start, end, [r for _, _, r in segment.read(start, end - start)])
        records = segment.read(cursor.shipped, READ_BYTES)
        if not records:
            return None
        single = cursor.shipped < self._split_until.get(segment.name, 0)
        offset, end, first = records[0]
        if first[0] not in BATCHED or single:
            return Unit(segment, offset, end, [first])
        run_id = first[1]
        counts = {"m": 0, "p": 0, "t": 0}
        seen: set[tuple[str, str]] = set()
        unit = Unit(segment, offset, offset, [])
        for _, record_end, record in records:
            kind = record[0]
            if kind not in BATCHED or record[1] != run_id:
                break
            if kind in "pt" and (kind, record[2]) in seen:
                break  # a batch sets each param and tag once
            counts[kind] += 1
            if counts["m"] > MAX_METRICS or counts["p"] > MAX_PARAMS or counts["t"] > MAX_TAGS:
                break
            if sum(counts.values()) > MAX_METRICS:
                break
            seen.add((kind, record[2]))
            unit.records.append(record)
            unit.end = record_end
        return unit

    def _ship(self, unit: Unit) -> bool:
        segment = unit.segment
        if _run_of(unit.records[0]) in self._refused_runs:
            self._advance(unit)  # its run was refused (and said so): nothing logged to it can land
            return True
        segment.cursor.inflight = (unit.start, unit.end)
        segment.save_cursor()
        self.attempted = True
        try:
            self._send(unit)
        except (Unavailable, OSError, KeyError, ValueError) as e:
            if not isinstance(e, Unavailable):  # kept, and tried again: never skipped
                log.exception("trackledger: could not ship a %s", _what(unit.records[0]))
            elif not e.sent:
                # Never reached the server: the range is free to change (a budget rewrite may
                # drop its metric points); only a range that may have arrived must be resent as is.
                segment.cursor.inflight = None
            self.mark_unreachable(str(e))
            self._backoff()
            return False
        except MlflowException as e:
            if len(unit.records) > 1:
                # Refused as a whole: resend its records one by one, so only the bad ones are lost.
                self._split_until[segment.name] = unit.end
                segment.cursor.inflight = None
                segment.save_cursor()
                return True
            self._refused(unit, e)
        self._reachable()
        self._advance(unit)
        return True

    def _advance(self, unit: Unit) -> None:
        segment = unit.segment
        with self._progress:
            segment.cursor.shipped = unit.end
            segment.cursor.inflight = None
            segment.save_cursor()
            self._progress.notify_all()

    def _probe(self) -> None:
        """Nothing to ship, but the server was out (a read found it so): ask it, so that reads
        go to it again once it is back."""
        try:
            self.server.request("GET", "/health")
        except (Unavailable, MlflowException):
            self._backoff()
            return
        self._reachable()

    def _reachable(self) -> None:
        if self.unreachable_since is not None:
            log.warning("trackledger: the server is back; shipping the spool")
        self.unreachable_since = None
        self._failures = 0
        self._retry_at = 0.0

    def _refused(self, unit: Unit, error: MlflowException) -> None:
        record = unit.records[0]
        run_id = record[2] if record[0] == "run" else _run_of(record)
        if record[0] == "run":
            self._refused_runs.add(run_id)
        log.error("trackledger: the server refused a logged %s: %s", _what(record), error.message)
        self.refusals.append(Refusal(run_id, error))

    def _backoff(self) -> None:
        self._failures += 1
        cap = self.max_backoff_s if self._urgent == 0 else min(self.max_backoff_s, 1.0)
        delay = min(cap, FIRST_BACKOFF_S * 2 ** min(self._failures, 16))
        self._retry_at = time.monotonic() + delay / 2 + random.uniform(0, delay / 2)

    # One request per record kind -----------------------------------------------------------

    def _send(self, unit: Unit) -> None:
        record = unit.records[0]
        kind = record[0]
        if kind in BATCHED:
            self._log_batch(unit)
        elif kind == "exp":
            self.experiment_id(record[1])
        elif kind == "run":
            self._create_run(record)
        elif kind == "model":
            self._create_model(record)
        elif kind == "req":
            _, method, endpoint, body = record
            self.server.request(method, endpoint, body, key=unit.key)
        elif kind == "art":
            self._upload(unit)
        else:
            raise MlflowException(f"unknown spool record {kind!r}")

    def experiment_id(self, name: str) -> str:
        """Get-or-create an experiment by name (two processes that both create it get one)."""
        if name in self.experiments:
            return self.experiments[name]
        try:
            found = self.server.request("POST", f"{API}/experiments/create", {"name": name})
            experiment_id = found["experiment_id"]
        except RestException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = self.server.request("GET", f"{API}/experiments/get-by-name", {"experiment_name": name})
            experiment_id = found["experiment"]["experiment_id"]
        self.experiments[name] = experiment_id
        return experiment_id

    def _experiment(self, experiment_id: str, name: str | None) -> str:
        return self.experiment_id(name) if name else experiment_id

    def _create_run(self, record: list) -> None:
        _, key, run_id, experiment_id, experiment_name, user_id, start_time, run_name, tags = record
        body = {
            "experiment_id": self._experiment(experiment_id, experiment_name),
            "user_id": user_id,
            "start_time": start_time,
            "run_name": run_name,
            "tags": [{"key": k, "value": v} for k, v in tags],
        }
        created = self.server.request("POST", f"{API}/runs/create", body, key=key)
        if created["run"]["info"]["run_id"] != run_id:
            raise MlflowException(
                f"the server gave run {created['run']['info']['run_id']} the id {run_id} was "
                "derived for: its Idempotency-Key rule differs from this client's"
            )

    def _create_model(self, record: list) -> None:
        _, key, model_id, experiment_id, experiment_name, body = record
        body = {**body, "experiment_id": self._experiment(experiment_id, experiment_name)}
        created = self.server.request("POST", f"{API}/logged-models", body, key=key)
        if created["model"]["info"]["model_id"] != model_id:
            raise MlflowException(f"the server gave logged model {model_id} another id")

    def _log_batch(self, unit: Unit) -> None:
        metrics, params, tags = [], [], []
        for record in unit.records:
            if record[0] == "m":
                _, _, key, value, timestamp, step, extra = record
                metrics.append({"key": key, "value": value, "timestamp": timestamp, "step": step, **extra})
            elif record[0] == "p":
                params.append({"key": record[2], "value": record[3]})
            else:
                tags.append({"key": record[2], "value": record[3]})
        body = {"run_id": unit.records[0][1], "metrics": metrics, "params": params, "tags": tags}
        self.server.request("POST", f"{API}/runs/log-batch", body, key=unit.key)

    def _upload(self, unit: Unit) -> None:
        """Files copied into the spool while the server was out; the destination is asked for now
        (a run or model created offline has its artifact location only on the server)."""
        _, target_kind, target_id, artifact_path, folder, files = unit.records[0]
        if target_kind == "uri":
            location = target_id
        elif target_kind == "run":
            found = self.server.request("GET", f"{API}/runs/get", {"run_id": target_id})
            location = found["run"]["info"]["artifact_uri"]
        else:
            found = self.server.request("GET", f"{API}/logged-models/{target_id}")
            location = found["model"]["info"]["artifact_uri"]
        root = self.spool.directory / ARTIFACTS_DIR / folder
        for i, name in enumerate(files):
            destination = "/".join(p for p in (artifact_path, name) if p)
            upload(self.server, location, destination, root / name, key=f"{unit.key}/{i}")
        shutil.rmtree(root, ignore_errors=True)


def _run_of(record: list) -> str | None:
    if record[0] in BATCHED:
        return record[1]
    if record[0] == "run":
        return None  # its own creation is never skipped
    if record[0] == "req":
        return (record[3] or {}).get("run_id")
    return None


def _what(record: list) -> str:
    return {
        "m": "metric",
        "p": "param",
        "t": "tag",
        "run": "run",
        "exp": "experiment",
        "model": "logged model",
        "art": "artifact",
        "req": "request",
    }.get(record[0], record[0])
