"""The database: one writer connection, a few reader connections, and the unit of work.

Concurrency model (SQLite in WAL mode through aiosqlite):

- Every write happens inside `Database.transaction()`, on the single writer connection, behind an
  asyncio lock, opened with `BEGIN IMMEDIATE` so SQLite takes its write lock up front (a deferred
  transaction that reads and then writes fails at once with "database is locked" when another
  process holds the lock, whatever the busy timeout).
- Reads outside a transaction go to reader connections and see only committed data. aiosqlite
  serialises calls on one connection but does not isolate them, so a read sharing the writer
  connection could see rows that are later rolled back.
- A transaction is also a unit of work: code running inside it may register `after_commit`
  callbacks (the notification service hands stored notifications to live delivery that way), and
  those run only once the commit succeeded, never after a rollback.
- Several processes may share the file (`--workers`): SQLite waits up to `busy_timeout` for
  another process's write lock, and `retry_busy` retries `BEGIN IMMEDIATE`, `COMMIT` and
  single-statement writes a few times more, with backoff, when that wait runs out
  (SQLITE_BUSY, "database is locked").
- A `transaction()` entered while the same task already has one open joins it: the outer block
  owns the commit. That is how the notification service writes its rows in the same transaction
  as the booking change that called it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
CHECKPOINT_SECONDS = 1.0
AfterCommit = Callable[[], Awaitable[None]]

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    # FULL: a notification we told a client about must survive a power cut, not only a crash.
    "PRAGMA synchronous = FULL",
)
BUSY_TIMEOUT_MS = 5000
# Several processes share the file (--workers): SQLite waits `busy_timeout` for another
# process's write lock, and a few waits more are cheaper than a failed request.
BUSY_RETRIES = 4
BUSY_BACKOFF_SECONDS = 0.05
BUSY_BACKOFF_CAP_SECONDS = 1.0

T = TypeVar("T")


async def _connect(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in (*PRAGMAS, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
        await conn.execute(pragma)
    return conn


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY (any extended code): another connection holds the lock we need."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)


async def retry_busy(operation: Callable[[], Awaitable[T]], what: str, retries: int) -> T:
    """Run `operation`, again after a growing pause when it fails with SQLITE_BUSY, at most
    `retries` more times. Only for steps that change nothing when they fail that way:
    BEGIN IMMEDIATE, COMMIT (the transaction stays open and may be committed again), and a
    statement committing on its own (its implicit transaction is rolled back)."""
    delay = BUSY_BACKOFF_SECONDS
    attempt = 0
    while True:
        try:
            return await operation()
        except sqlite3.OperationalError as exc:
            if attempt >= retries or not is_busy(exc):
                raise
            attempt += 1
            log.warning(
                "%s: database is locked by another process; retry %d of %d in %.2f s",
                what,
                attempt,
                retries,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BUSY_BACKOFF_CAP_SECONDS)


class Transaction:
    """An open write transaction on the writer connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._after_commit: list[AfterCommit] = []

    # Each call is one hop to the connection's thread (a thread hop is most of the cost).

    async def execute(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        """Run one statement; the returned cursor carries `lastrowid` and `rowcount`."""
        return await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    def after_commit(self, callback: AfterCommit) -> None:
        self._after_commit.append(callback)


_current: ContextVar[Transaction | None] = ContextVar("current_transaction", default=None)


def current_transaction() -> Transaction | None:
    """The transaction this task has open, if any."""
    return _current.get()


class Database:
    def __init__(
        self,
        path: Path,
        readers: int = 3,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        busy_retries: int = BUSY_RETRIES,
    ) -> None:
        self.path = path
        self._reader_count = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._busy_retries = busy_retries
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _connect(self.path, self._busy_timeout_ms)
        # Checkpoints move the WAL into the database file with fsyncs; done at commit time
        # they would stall whichever write hit the threshold (a fan-out waiting 100+ ms).
        # A background task does them on a connection of its own instead.
        await self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = await _connect(self.path, self._busy_timeout_ms)
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="wal-checkpoint")
        for _ in range(self._reader_count):
            reader = await _connect(self.path, self._busy_timeout_ms)
            await reader.execute("PRAGMA query_only = ON")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def _checkpoint_loop(self) -> None:
        conn = self._checkpointer
        assert conn is not None
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                # PASSIVE never waits for (or blocks) readers and writers.
                await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.exception("WAL checkpoint failed")

    async def close(self) -> None:
        await cancel_and_wait(self._checkpoints)
        self._checkpoints = None
        if self._checkpointer is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._checkpointer.close()
            self._checkpointer = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        tx = _current.get()
        if tx is not None:
            return await tx.fetch_all(sql, params)
        async with self._reader() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def write_statement(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """One write statement, atomic on its own: in the open transaction if this task has
        one, else committed by itself (no BEGIN and COMMIT round trips). When it returns, the
        change is committed and nothing else has run since."""
        tx = _current.get()
        if tx is not None:
            return await tx.fetch_all(sql, params)
        async with self._write_lock:
            return await retry_busy(
                lambda: self._fetch_all_on_writer(sql, params), "write", self._busy_retries
            )

    async def _fetch_all_on_writer(self, sql: str, params: Params) -> list[sqlite3.Row]:
        return list(await self.writer.execute_fetchall(sql, params))

    async def _execute_on_writer(self, sql: str) -> None:
        await self.writer.execute(sql)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A `BEGIN IMMEDIATE` transaction, or the one this task already has open."""
        outer = _current.get()
        if outer is not None:
            yield outer
            return
        async with self._write_lock:
            tx = Transaction(self.writer)
            token = _current.set(tx)
            try:
                await retry_busy(
                    lambda: self._execute_on_writer("BEGIN IMMEDIATE"), "begin", self._busy_retries
                )
                try:
                    yield tx
                    await retry_busy(
                        lambda: self._execute_on_writer("COMMIT"), "commit", self._busy_retries
                    )
                except BaseException:
                    if self.writer.in_transaction:
                        # A COMMIT interrupted by cancellation may still complete in the
                        # connection's thread, and then this ROLLBACK finds no transaction:
                        # that error must not replace the exception being raised (a swallowed
                        # CancelledError leaves a task that never stops).
                        with contextlib.suppress(sqlite3.Error):
                            await self.writer.execute("ROLLBACK")
                    raise
            finally:
                _current.reset(token)
        for callback in tx._after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after-commit callback failed")
