"""The ledger: immutable events, a write-ahead log, and Parquet segments on fsspec storage.

``Ledger`` appends and reads one writer's events; ``verify`` checks a store's hash chains;
``open_store`` opens a store URL (local path, ``file://``, ``memory://``, ``s3://``).
"""

from trackledger.ledger.events import EVENT_TYPES, SCHEMA_VERSION, TYPE_BY_TAG, AnyEvent, Event, new_event_id
from trackledger.ledger.ledger import (
    DEFAULT_ROLL_BYTES,
    DEFAULT_ROLL_SECONDS,
    ID_WINDOW,
    Ledger,
    StateDirInUse,
)
from trackledger.ledger.schema import SEGMENT_SCHEMA, events_to_table, table_to_events
from trackledger.ledger.segments import SegmentInfo
from trackledger.ledger.store import Store, open_store
from trackledger.ledger.verify import VerifyReport, verify

__all__ = [
    "DEFAULT_ROLL_BYTES",
    "DEFAULT_ROLL_SECONDS",
    "EVENT_TYPES",
    "ID_WINDOW",
    "SCHEMA_VERSION",
    "SEGMENT_SCHEMA",
    "TYPE_BY_TAG",
    "AnyEvent",
    "Event",
    "Ledger",
    "SegmentInfo",
    "StateDirInUse",
    "Store",
    "VerifyReport",
    "events_to_table",
    "new_event_id",
    "open_store",
    "table_to_events",
    "verify",
]
