"""The database interface every store implements, and the unit of work shared by both.

- SQL is written once, with `?` placeholders, and runs on every store: an implementation
  translates it to its driver's form. What genuinely differs between SQL dialects is a
  fragment on the store's `Dialect`, never an `if postgres:` in domain code.
- Rows come back as mappings (`row["column"]`; `row[0]` also works on both drivers).
- A unique, foreign-key, check or not-null violation raises `ConflictError`; any other error
  the database reports raises `DatabaseError`. Driver exceptions do not leave `app.db`.
- Every write happens inside `Database.transaction()`, or is one `write_statement` that
  commits on its own. Reads outside a transaction see only committed data.
- A transaction is also a unit of work: code running inside it may register `after_commit`
  callbacks (the notification service hands stored notifications to live delivery that way),
  and those run only once the commit succeeded, never after a rollback.
- A `transaction()` entered while the same task already has one open joins it: the outer block
  owns the commit. That is how the notification service writes its rows in the same transaction
  as the booking change that called it.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

Params = Sequence[Any]
AfterCommit = Callable[[], Awaitable[None]]


class Row(Protocol):
    """A result row: by column name or by position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Result:
    """What a write statement reports: the rows it changed (-1 when the driver cannot say)."""

    rowcount: int


class DatabaseError(Exception):
    """The database refused or failed a statement."""


class ConflictError(DatabaseError):
    """A constraint refused the change: unique, foreign key, check or not null."""


class RetryableError(DatabaseError):
    """The database gave up on the transaction to let another one through (a deadlock, a
    serialisation failure, a lock wait that timed out). Nothing was changed; trying again may
    succeed."""


@dataclass(frozen=True)
class Dialect:
    """The SQL that differs between stores, in one place per store."""

    # "sqlite" or "postgresql"; also the directory of its migrations under `migrations/`.
    name: str
    # A migration script cut into statements; ValueError when the last one is unterminated.
    split_statements: Callable[[str], list[str]]
    # `users.email` compared with one bound value, case-insensitively, through an index.
    email_equals: str
    # Case-insensitive LIKE (SQLite's LIKE already is, for ASCII).
    like: str
    # In `INSERT INTO notifications ... RETURNING`: the row's seq, and the user's unread count
    # including the row.
    seq_after_insert: str
    unread_after_insert: str


class Transaction(ABC):
    """An open transaction. Each method is one round trip to the database."""

    def __init__(self) -> None:
        self._after_commit: list[AfterCommit] = []

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> Result: ...

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    @abstractmethod
    async def lock(self, *names: str) -> None:
        """Serialise with every other transaction (of any process) that locks one of these
        names, until this one ends. For check-then-write sequences that no constraint guards,
        such as counting login attempts before reserving one."""

    def after_commit(self, callback: AfterCommit) -> None:
        self._after_commit.append(callback)

    async def run_after_commit(self) -> None:
        for callback in self._after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after-commit callback failed")


_current: ContextVar[Transaction | None] = ContextVar("current_transaction", default=None)


def current_transaction() -> Transaction | None:
    """The transaction this task has open, if any."""
    return _current.get()


class Database(ABC):
    """A store: reads, single-statement writes and transactions, on SQLite or PostgreSQL."""

    dialect: Dialect

    @abstractmethod
    def describe(self) -> str:
        """Which database this is, for logs (never with a password)."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _fetch_committed(self, sql: str, params: Params) -> list[Row]:
        """A read outside any transaction: committed data only."""

    @abstractmethod
    async def _write_alone(self, sql: str, params: Params) -> list[Row]:
        """One statement committed on its own."""

    @abstractmethod
    def _begin(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A new transaction: committed when the block ends, rolled back when it raises."""

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        tx = _current.get()
        if tx is not None:
            return await tx.fetch_all(sql, params)
        return await self._fetch_committed(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def write_statement(self, sql: str, params: Params = ()) -> list[Row]:
        """One write statement, atomic on its own: in the open transaction if this task has
        one, else committed by itself (no BEGIN and COMMIT round trips). Returns its rows
        (`RETURNING`); when it returns, the change is committed."""
        tx = _current.get()
        if tx is not None:
            return await tx.fetch_all(sql, params)
        return await self._write_alone(sql, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A new transaction, or the one this task already has open."""
        outer = _current.get()
        if outer is not None:
            yield outer
            return
        async with self._begin() as tx:
            token = _current.set(tx)
            try:
                yield tx
            finally:
                _current.reset(token)
        await tx.run_after_commit()


def placeholders(count: int) -> str:
    """`?, ?, ?` for an `IN (...)` of `count` bound values."""
    return ", ".join("?" * count)


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """`items` in slices of at most `size`: a statement binds a bounded number of values."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
