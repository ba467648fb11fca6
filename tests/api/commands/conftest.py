"""A small ledger for the sub-commands to read (they run as users run them: `trackledger` in a subprocess)."""

from __future__ import annotations

import pyarrow.parquet as pq
from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, ExperimentCreated, Metric, RunCreated, new_event_id


def log_a_run(ledger: Ledger, points: int = 3) -> None:
    """Experiment 7, its run r1, and ``points`` single-point batches of ``loss``."""
    ledger.append(
        [
            ExperimentCreated(
                id=new_event_id(),
                experiment_id="7",
                name="e",
                artifact_location="a",
                creation_time=1,
                actor="alice",
            )
        ]
    )
    ledger.append(
        [
            RunCreated(
                id=new_event_id(),
                experiment_id="7",
                run_id="r1",
                name="n",
                user_id="alice",
                start_time=1,
                artifact_uri="a",
            )
        ]
    )
    for step in range(points):
        ledger.append(
            [BatchLogged(id=new_event_id(), run_id="r1", metrics=[Metric("loss", 1 / (step + 1), 0, step)])]
        )


def command(capsys, *argv: str) -> tuple[int, str, str]:
    """Run a command line in this process: (exit status, stdout, stderr)."""
    from trackledger.api.cli import execute

    status = execute(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status: int, err: str, *words: str) -> str:
    """The single line of a command's error, checked to name ``words``."""
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trackledger "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def damage(segment) -> None:
    """Change the last byte of a segment's first page of event data: its checksum no longer matches."""
    column = pq.ParquetFile(segment).metadata.row_group(0).column(0)
    data = bytearray(segment.read_bytes())
    data[column.data_page_offset + column.total_compressed_size - 1] ^= 0x40
    segment.write_bytes(bytes(data))
