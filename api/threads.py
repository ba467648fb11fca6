"""Where blocking work (ledger syncs, DuckDB, fsspec) runs: executors, off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# A plain executor hop is cheaper than anyio's to_thread.
_executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="trackledger-io")
# The WAL syncs of the writes staged on the event loop, one at a time (each serves every write staged
# before it: group commit), on a thread of their own: never queued behind DuckDB work in the pool.
wal_sync = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trackledger-wal-sync")


async def blocking(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run blocking work off the event loop."""
    call = functools.partial(fn, *args, **kwargs) if kwargs else fn
    return await asyncio.get_running_loop().run_in_executor(_executor, call, *(() if kwargs else args))


async def read_after_writes(ctx, fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` off the event loop once the projection has applied every
    acknowledged write: read-your-writes, for every read of the HTTP API and the web page."""

    def read() -> T:
        ctx.projection.flush()
        return fn(*args, **kwargs)

    return await blocking(read)
