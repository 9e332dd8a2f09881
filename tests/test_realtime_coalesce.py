"""The coalescer behind session and position look-ups: concurrent look-ups share one query,
and a failed or cancelled batch leaves nobody waiting."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping

import pytest

from app.realtime.coalesce import Coalescer


class Source:
    """Squares, fetched many at a time; records each batch's keys."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def fetch_many(self, keys: list[int]) -> Mapping[int, int]:
        self.batches.append(sorted(keys))
        await asyncio.sleep(0)  # a query always waits for its database thread
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {key: key * key for key in keys if key >= 0}


async def test_lookups_made_together_share_one_query() -> None:
    source = Source()
    coalescer = Coalescer(source.fetch_many)
    results = await asyncio.gather(*(coalescer.get(key) for key in (1, 2, 3, 2, -1)))
    assert results == [1, 4, 9, 4, None]  # a key not found is None
    # The first is looked up at once; those made while it runs share the next query, each
    # key once.
    assert source.batches == [[1], [-1, 2, 3]]


async def test_lookups_made_while_a_query_runs_wait_for_the_next() -> None:
    source = Source()
    source.gate = asyncio.Event()
    coalescer = Coalescer(source.fetch_many)
    first = asyncio.ensure_future(coalescer.get(1))
    await asyncio.sleep(0)  # the first batch's query starts
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(coalescer.get(key)) for key in (2, 3)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await first == 1
    assert [await task for task in later] == [4, 9]
    assert source.batches == [[1], [2, 3]]
    # Idle again: the next look-up starts a batch of its own.
    assert await coalescer.get(4) == 16
    assert source.batches[-1] == [4]


async def test_a_failed_query_fails_its_batch_only() -> None:
    source = Source()
    coalescer = Coalescer(source.fetch_many)
    source.error = RuntimeError("database is locked")
    results = await asyncio.gather(coalescer.get(1), coalescer.get(2), return_exceptions=True)
    assert [type(result) for result in results] == [RuntimeError, RuntimeError]
    source.error = None
    assert await coalescer.get(3) == 9


async def test_a_cancelled_caller_does_not_spoil_the_batch() -> None:
    source = Source()
    source.gate = asyncio.Event()
    coalescer = Coalescer(source.fetch_many)
    leaving = asyncio.ensure_future(coalescer.get(1))
    staying = asyncio.ensure_future(coalescer.get(2))
    await asyncio.sleep(0)
    leaving.cancel()
    source.gate.set()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_batches_run_outside_the_callers_context() -> None:
    """A batch serves every caller, so it must not run inside one caller's transaction (the
    database's current transaction is a context variable)."""
    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)
    seen: list[tuple[list[int], str | None]] = []

    async def fetch_many(keys: list[int]) -> Mapping[int, int]:
        seen.append((sorted(keys), current.get()))
        await asyncio.sleep(0)
        return {key: key for key in keys}

    coalescer = Coalescer(fetch_many)
    current.set("a caller's transaction")
    assert await asyncio.gather(coalescer.get(1), coalescer.get(2), coalescer.get(3)) == [1, 2, 3]
    # The lone look-up ran in its caller's task (as a plain query would); the batch did not.
    assert seen == [([1], "a caller's transaction"), ([2, 3], None)]
