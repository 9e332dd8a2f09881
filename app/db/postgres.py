"""PostgreSQL through an asyncpg connection pool: the store for a site on more than one host.

Concurrency model:

- Each transaction holds one pooled connection from BEGIN to COMMIT, at READ COMMITTED.
  Unlike SQLite, transactions run side by side; what must not interleave is kept apart by the
  database itself: conditional updates (`... WHERE status = 'pending'`, whose row lock makes a
  racing second update see the first one's result), unique constraints (`ConflictError`), the
  notification trigger's lock on the user's row, and `Transaction.lock` (advisory locks) for
  check-then-write sequences no constraint covers.
- Reads and single-statement writes outside a transaction take any pooled connection in
  autocommit: they see committed data only.
- SQL is written with `?` placeholders everywhere; `translate` turns them into `$1..$n`
  (skipping string literals, quoted names, comments and dollar-quoted bodies), once per SQL
  text.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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

log = logging.getLogger(__name__)

# PostgreSQL's default max_connections is 100: ten per process leaves room for several
# processes and an administrator.
POOL_MAX_SIZE = 10
# A single autocommit statement refused as a deadlock victim changed nothing: run it again.
WRITE_ATTEMPTS = 3

# What `?` must not be looked for inside, and the two characters that matter outside.
_TOKENS = re.compile(
    r"""
      '(?:[^']|'')*'                              # string literal ('' is a quote inside)
    | "(?:[^"]|"")*"                              # quoted identifier
    | --[^\n]*                                    # line comment
    | /\*.*?\*/                                   # block comment
    | \$(?P<tag>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?\$(?P=tag)\$   # dollar-quoted body
    | \?                                          # placeholder
    | ;                                           # end of statement
    """,
    re.DOTALL | re.VERBOSE,
)
_PLAIN = re.compile(r"""['"$]|--|/\*""")


@functools.lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`, ... in order of appearance."""
    if _PLAIN.search(sql) is None:  # the common case: nothing to skip over
        parts = sql.split("?")
        return "".join(
            part if index == 0 else f"${index}{part}" for index, part in enumerate(parts)
        )
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _TOKENS.sub(number, sql)


def _code(text: str) -> str:
    """The text without comments, semicolons and surrounding space."""
    kept = _TOKENS.sub(lambda m: "" if m.group().startswith(("--", "/*")) else m.group(), text)
    return kept.strip().strip(";").strip()


def split_statements(script: str) -> list[str]:
    """Cut a script at the semicolons that end statements: not those inside strings,
    comments or `$$`-quoted function bodies."""
    statements: list[str] = []
    start = 0
    for match in _TOKENS.finditer(script):
        if match.group() == ";":
            statement = script[start : match.end()].strip()
            if _code(statement):
                statements.append(statement)
            start = match.end()
    if _code(script[start:]):
        raise ValueError("the last statement has no closing semicolon")
    return statements


DIALECT = Dialect(
    name="postgresql",
    split_statements=split_statements,
    # Uniqueness is a unique index on lower(email) (migration 001); this uses it.
    email_equals="lower(email) = lower(?)",
    like="ILIKE",
    # A subquery here would see the users row as it was before the statement; a volatile
    # function reads it afresh, after this row's BEFORE INSERT trigger counted it.
    seq_after_insert="seq",  # set by the BEFORE INSERT trigger
    unread_after_insert="unread_count_of(notifications.user_id)",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """asyncpg's exceptions as ours."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise ConflictError(str(exc)) from exc
    except (asyncpg.TransactionRollbackError, asyncpg.LockNotAvailableError) as exc:
        raise RetryableError(str(exc)) from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseError(str(exc)) from exc


def _rowcount(status: str) -> int:
    """The row count from a command tag: 'UPDATE 3', 'INSERT 0 1', 'DELETE 0'."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else -1


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresTransaction(Transaction):
    def __init__(self, conn: Any) -> None:
        super().__init__()
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> Result:
        with _translated():
            if params:
                status = await self._conn.execute(translate(sql), *params)
            else:
                # No parameters: the simple protocol, which also runs DDL without preparing it.
                status = await self._conn.execute(sql)
        return Result(_rowcount(status))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _translated():
            await self._conn.executemany(translate(sql), rows)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        with _translated():
            return cast(list[Row], await self._conn.fetch(translate(sql), *params))

    async def lock(self, *names: str) -> None:
        # Transaction-scoped advisory locks, released at COMMIT or ROLLBACK. Taken in one
        # order everywhere, so two transactions locking the same names cannot deadlock.
        for name in sorted(set(names)):
            with _translated():
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name
                )


class PostgresDatabase(Database):
    dialect = DIALECT

    def __init__(self, url: str, *, max_connections: int = POOL_MAX_SIZE) -> None:
        self.url = url
        self._max_connections = max_connections
        self._pool: Any = None

    def describe(self) -> str:
        return f"PostgreSQL at {redacted(self.url)}"

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._max_connections,
                server_settings={"application_name": "marketplace"},
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {redacted(self.url)}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def _fetch_committed(self, sql: str, params: Params) -> list[Row]:
        with _translated():
            return cast(list[Row], await self.pool.fetch(translate(sql), *params))

    async def _write_alone(self, sql: str, params: Params) -> list[Row]:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await self._fetch_committed(sql, params)
            except RetryableError:
                # Two statements locking the same users' rows in opposite orders (fan-outs
                # from two processes): PostgreSQL rolled this one back entirely.
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.warning("write refused as a deadlock victim; trying again (%d)", attempt)
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as conn:
            with _translated():
                await conn.execute("BEGIN")
            try:
                yield PostgresTransaction(conn)
                with _translated():
                    await conn.execute("COMMIT")
            except BaseException:
                if conn.is_in_transaction():
                    # If this fails too (a broken connection), the pool's reset on release
                    # rolls back or discards the connection; the original error matters.
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                raise
