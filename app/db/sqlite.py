"""SQLite through aiosqlite: one writer connection, a few reader connections.

Concurrency model (WAL mode):

- Every write happens on the single writer connection, behind an asyncio lock, in a
  `BEGIN IMMEDIATE` transaction so SQLite takes its write lock up front (a deferred
  transaction that reads and then writes fails at once with "database is locked" when another
  process holds the lock, whatever the busy timeout). So transactions are serialised, within
  this process by the lock and across processes by SQLite's: `Transaction.lock` has nothing
  left to do.
- Several processes may share the file (`--workers`): SQLite waits up to the busy timeout for
  another process's write lock, and `BEGIN IMMEDIATE`, `COMMIT` and single-statement writes
  are retried a few times more, with backoff, when that wait runs out (SQLITE_BUSY).
- Reads outside a transaction go to reader connections and see only committed data. aiosqlite
  serialises calls on one connection but does not isolate them, so a read sharing the writer
  connection could see rows that are later rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar, cast

import aiosqlite

from app.db.base import (
    ConflictError,
    Database,
    DatabaseError,
    Dialect,
    Params,
    Result,
    RetryableError,
    Row,
    Transaction,
)
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0

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
        except RetryableError:
            if attempt >= retries:
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


def split_statements(script: str) -> list[str]:
    """Split a script into statements (sqlite3's executescript would commit on its own)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError("the last statement has no closing semicolon")
    return statements


DIALECT = Dialect(
    name="sqlite",
    split_statements=split_statements,
    # The column is COLLATE NOCASE: its unique index compares (and finds) case-insensitively.
    email_equals="email = ?",
    like="LIKE",
    # The BEFORE INSERT trigger has already counted the row when RETURNING is computed.
    # SQLite's triggers cannot set NEW.seq; the BEFORE INSERT trigger has moved the user's
    # counter on for this row, and an AFTER INSERT trigger stores it (migration 005).
    seq_after_insert="(SELECT last_seq FROM users WHERE users.id = notifications.user_id)",
    unread_after_insert="(SELECT unread_count FROM users WHERE users.id = notifications.user_id)",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's exceptions as ours."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConflictError(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        # The primary code: SQLITE_BUSY_SNAPSHOT and the like are busy too.
        if (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise RetryableError(str(exc)) from exc
        raise DatabaseError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc


async def _connect(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in (*PRAGMAS, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
        await conn.execute(pragma)
    return conn


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    with _translated():
        await conn.execute(sql)


async def _fetch(conn: aiosqlite.Connection, sql: str, params: Params) -> list[Row]:
    with _translated():
        return cast(list[Row], list(await conn.execute_fetchall(sql, params)))


class SqliteTransaction(Transaction):
    """An open write transaction on the writer connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__()
        self._conn = conn

    # Each call is one hop to the connection's thread (a thread hop is most of the cost).

    async def execute(self, sql: str, params: Params = ()) -> Result:
        with _translated():
            cursor = await self._conn.execute(sql, params)
        return Result(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _translated():
            await self._conn.executemany(sql, rows)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await _fetch(self._conn, sql, params)

    async def lock(self, *names: str) -> None:
        # BEGIN IMMEDIATE already holds the database's one write lock: every writing
        # transaction, of every process on this file, is serialised with this one.
        return


class SqliteDatabase(Database):
    dialect = DIALECT

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

    def describe(self) -> str:
        return f"SQLite file {self.path}"

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

    async def _fetch_committed(self, sql: str, params: Params) -> list[Row]:
        conn = await self._readers.get()
        try:
            return await _fetch(conn, sql, params)
        finally:
            self._readers.put_nowait(conn)

    async def _write_alone(self, sql: str, params: Params) -> list[Row]:
        async with self._write_lock:
            return await retry_busy(
                lambda: _fetch(self.writer, sql, params), "write", self._busy_retries
            )

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            writer = self.writer
            retries = self._busy_retries
            await retry_busy(lambda: _run(writer, "BEGIN IMMEDIATE"), "begin", retries)
            try:
                yield SqliteTransaction(writer)
                await retry_busy(lambda: _run(writer, "COMMIT"), "commit", retries)
            except BaseException:
                if writer.in_transaction:
                    # A COMMIT interrupted by cancellation may still complete in the
                    # connection's thread, and then this ROLLBACK finds no transaction:
                    # that error must not replace the exception being raised (a swallowed
                    # CancelledError leaves a task that never stops).
                    with contextlib.suppress(sqlite3.Error):
                        await writer.execute("ROLLBACK")
                raise
