"""Two `Database` objects on one SQLite file, as two worker processes have: a write that finds
the other's write lock waits and retries instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db import RetryableError, SqliteDatabase

WAIT = 10.0


@pytest.fixture
async def holder(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "shared.db", readers=1)
    await db.open()
    await db.write_statement("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL)")
    yield db
    await db.close()


async def other(path: Path, retries: int) -> SqliteDatabase:
    # A short busy timeout, so the retries (not SQLite's own wait) are what is tested.
    db = SqliteDatabase(path, readers=1, busy_timeout_ms=20, busy_retries=retries)
    await db.open()
    return db


async def hold_write_lock(db: SqliteDatabase, release: asyncio.Event, held: asyncio.Event) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t (who) VALUES ('holder')")
        held.set()
        await release.wait()


async def wait_for_retry_log(caplog: pytest.LogCaptureFixture, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not any(
        f"{what}: database is locked" in record.getMessage() for record in caplog.records
    ):
        assert time.monotonic() < deadline, "no retry was logged"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", ["transaction", "write_statement"])
async def test_a_write_waits_for_another_processes_lock_and_then_succeeds(
    holder: SqliteDatabase, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.WARNING, "app.db.sqlite")
    second = await other(holder.path, retries=30)
    release, held = asyncio.Event(), asyncio.Event()
    holding = asyncio.create_task(hold_write_lock(holder, release, held))
    try:
        await asyncio.wait_for(held.wait(), WAIT)

        async def write() -> None:
            if kind == "transaction":
                async with second.transaction() as tx:
                    await tx.execute("INSERT INTO t (who) VALUES ('second')")
            else:
                await second.write_statement("INSERT INTO t (who) VALUES ('second')")

        writing = asyncio.create_task(write())
        # It failed at least once with SQLITE_BUSY (20 ms timeout) and is retrying...
        await wait_for_retry_log(caplog, "begin" if kind == "transaction" else "write")
        assert not writing.done()
        release.set()  # ...and gets through once the lock is free.
        await asyncio.wait_for(writing, WAIT)
        await asyncio.wait_for(holding, WAIT)
        rows = await second.fetch_all("SELECT who FROM t ORDER BY id")
        assert [row["who"] for row in rows] == ["holder", "second"]
    finally:
        release.set()
        await second.close()


async def test_the_retries_are_bounded(holder: SqliteDatabase) -> None:
    second = await other(holder.path, retries=2)
    release, held = asyncio.Event(), asyncio.Event()
    holding = asyncio.create_task(hold_write_lock(holder, release, held))
    try:
        await asyncio.wait_for(held.wait(), WAIT)
        started = time.monotonic()
        with pytest.raises(RetryableError):
            async with second.transaction() as tx:
                await tx.execute("INSERT INTO t (who) VALUES ('second')")
        assert time.monotonic() - started < 2  # 3 tries, 20 ms each, 50 + 100 ms apart
        # Nothing half-done is left: the second connection can write once the lock is free.
        release.set()
        await asyncio.wait_for(holding, WAIT)
        await second.write_statement("INSERT INTO t (who) VALUES ('later')")
        assert await second.fetch_value("SELECT count(*) FROM t") == 2
    finally:
        release.set()
        await second.close()
