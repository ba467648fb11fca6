"""What this process logged to its runs, for reads while the server is out (``log_model`` reads
the run's params and metrics back; the server may not have them yet)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunStatus, RunTag
from mlflow.store.entities.paged_list import PagedList

from trackledger_client.spool import Spool


@dataclass
class LocalRun:
    info: RunInfo
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)  # the latest point of each key
    outputs: list = field(default_factory=list)

    def metric(self, metric: Metric) -> None:
        latest = self.metrics.get(metric.key)
        if latest is None or (metric.step, metric.timestamp) >= (latest.step, latest.timestamp):
            self.metrics[metric.key] = metric

    def update(self, status, end_time, run_name) -> RunInfo:
        info = self.info
        info._status = RunStatus.to_string(status)
        if end_time is not None:
            info._end_time = end_time
        if run_name:
            info._run_name = run_name
            self.tags["mlflow.runName"] = run_name
        return info

    def as_run(self) -> Run:
        data = RunData(
            metrics=list(self.metrics.values()),
            params=[Param(k, v) for k, v in self.params.items()],
            tags=[RunTag(k, v) for k, v in self.tags.items()],
        )
        return Run(self.info, data)


def local_metric_history(spool: Spool, run_id: str, key: str) -> PagedList[Metric]:
    """Every point of a metric this process spooled, read back from its segments."""
    points = []
    for segment in spool.snapshot():
        for _, _, record in segment.read(0, segment.size):
            if record[0] == "m" and record[1] == run_id and record[2] == key:
                _, _, _, value, timestamp, step, extra = record
                points.append(Metric(key, float(value), timestamp, step, **extra))
    return PagedList(points, None)
