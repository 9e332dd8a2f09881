"""A throwaway PostgreSQL cluster for the test session, from Debian's `postgresql` package.

`initdb` makes it in a temporary directory (as the `postgres` OS user when the tests run as
root: PostgreSQL refuses to run as root), `pg_ctl` starts it on a free 127.0.0.1 port with
durability turned off for speed, and it is stopped and deleted when the session ends. The app
connects as the role `marketplace` with a password (scram-sha-256 over TCP, as a deployment
would); the fixtures administer the cluster as the superuser over its Unix socket.

Each test gets a database of its own, copied from a template that already has the migrations
applied (`CREATE DATABASE ... TEMPLATE`), and dropped afterwards. A copy takes a few hundred
milliseconds on a busy machine, so the next ones are made in the background while tests run.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from app.db import PostgresDatabase
from app.db.postgres import translate
from app.migrate import migrate
from tests.net import free_port

T = TypeVar("T")

ROLE = "marketplace"
PASSWORD = "marketplace-test-password"
PREPARED_AHEAD = 2  # migrated databases kept ready for the next tests
MIGRATED = "marketplace_migrated"  # the template every test database is copied from
EMPTY = "marketplace_empty"  # no tables: for tests of the migrations themselves
SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "autovacuum=off",
    "jit=off",
    "max_connections=300",
    "shared_buffers=64MB",
    # A deadlock is reported after this long; tests that provoke one should not wait 1 s.
    "deadlock_timeout=200ms",
)


class Unavailable(Exception):
    """PostgreSQL cannot be run here; the message says why and how to get it."""


def find_bindir() -> Path:
    """The newest installed server's bin directory (Debian keeps it off PATH)."""
    override = os.environ.get("PG_BINDIR")
    candidates = [override] if override else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise Unavailable("PostgreSQL is not installed: apt-get install postgresql")


class _Loop:
    """An event loop on a thread of its own: admin work from sync fixtures and from tests
    running in any loop (or in Playwright's), without touching theirs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pg-admin", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="marketplace-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._as_postgres: list[str] = []
        self._names = itertools.count(1)
        self._loop: _Loop | None = None
        self._admin: Any = None
        self._version = 0
        self._ready: asyncio.Queue[str] | None = None
        self._maker: asyncio.Task[None] | None = None

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: the cluster belongs to `postgres`.
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no `postgres` user") from None
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.base}"]
            + [f"-c {setting}" for setting in SETTINGS]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self._loop = _Loop()
        self._admin = self._loop.run(self._connect_admin())
        self._version = int(self._admin.get_server_version().major)
        self.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        self.admin(f"CREATE DATABASE {EMPTY} OWNER {ROLE} TEMPLATE template0")
        self.admin(f"CREATE DATABASE {MIGRATED} OWNER {ROLE} TEMPLATE template0")
        self._loop.run(self._migrate(self.url(MIGRATED)))
        self._loop.run(self._start_maker())

    async def _connect_admin(self) -> Any:
        return await asyncpg.connect(
            host=str(self.base), port=self.port, user="postgres", database="postgres"
        )

    async def _start_maker(self) -> None:
        self._ready = asyncio.Queue(PREPARED_AHEAD)
        self._maker = asyncio.create_task(self._make_ahead(await self._connect_admin()))

    async def _make_ahead(self, conn: Any) -> None:
        """Keeps PREPARED_AHEAD migrated databases waiting (on a connection of its own)."""
        assert self._ready is not None
        try:
            while True:
                name, sql = self._create_sql(migrated=True)
                await conn.execute(sql)
                await self._ready.put(name)
        finally:
            await conn.close()

    @staticmethod
    async def _migrate(url: str) -> None:
        db = PostgresDatabase(url)
        await db.open()
        try:
            await migrate(db)
        finally:
            await db.close()

    def stop(self) -> None:
        if self._loop is not None:
            if self._maker is not None:
                self._maker.cancel()
                self._loop.run(asyncio.wait([self._maker]))
            if self._admin is not None:
                self._loop.run(self._admin.close())
            self._loop.stop()
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [*self._as_postgres, str(self.bindir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise Unavailable(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{log[-2000:]}"
            )

    # --- databases ---------------------------------------------------------------------

    def admin(self, sql: str) -> None:
        assert self._loop is not None
        self._loop.run(self._admin.execute(sql))

    def url(self, name: str) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def _create_sql(self, *, migrated: bool) -> tuple[str, str]:
        name = f"test_{next(self._names)}"
        template = MIGRATED if migrated else EMPTY
        # FILE_COPY (PostgreSQL 15's default is WAL_LOG): a plain copy of the template's
        # files, faster than logging them.
        strategy = " STRATEGY FILE_COPY" if self._version >= 15 else ""
        return name, f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE {template}{strategy}"

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database (with the migrations applied, or empty); returns its URL."""
        assert self._loop is not None and self._ready is not None
        if migrated:
            return self.url(self._loop.run(self._ready.get()))
        name, sql = self._create_sql(migrated=False)
        self.admin(sql)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        # FORCE: a connection the test left open must not keep the database alive.
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def query(self, url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read (with `?` placeholders) from outside the app, as rows of tuples."""
        assert self._loop is not None
        return self._loop.run(_query(url, sql, params))


async def _query(url: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(translate(sql), *params)]
    finally:
        await conn.close()
