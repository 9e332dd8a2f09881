"""Schema migrations: `migrations/<dialect>/NNN_name.sql`, applied in order at start-up, once each.

Each store has its own directory (`migrations/sqlite/`, `migrations/postgresql/`) with the same
numbered files written in its SQL; they are applied the same way. Each file runs inside one
transaction together with the row that records it, so a failed migration leaves the database
as it was and start-up stops with the file's name. Processes starting at once (several hosts
on one PostgreSQL database) take turns: each file's transaction holds the migration lock and
checks again that the file is still pending.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from app.clock import now_text
from app.db import Database, DatabaseError, Dialect

log = logging.getLogger(__name__)

MIGRATIONS_ROOT = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK = "schema_migrations"


class MigrationError(Exception):
    """A migration could not be applied; the database is unchanged by it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def migrations_dir(dialect: Dialect) -> Path:
    return MIGRATIONS_ROOT / dialect.name


def discover(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        found.append(Migration(int(match.group(1)), path.stem, path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


async def migrate(db: Database, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied."""
    migrations = discover(migrations_dir(db.dialect) if directory is None else directory)
    async with db.transaction() as tx:
        await tx.lock(_LOCK)
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    done = {row[0] for row in await db.fetch_all("SELECT version FROM schema_migrations")}
    applied: list[str] = []
    for migration in migrations:
        if migration.version in done:
            continue
        try:
            statements = db.dialect.split_statements(migration.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise MigrationError(f"migration {migration.path.name}: {exc}") from None
        try:
            async with db.transaction() as tx:
                await tx.lock(_LOCK)
                if await tx.fetch_one(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ):
                    continue  # another process applied it meanwhile
                for statement in statements:
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, now_text()),
                )
        except DatabaseError as exc:
            raise MigrationError(f"migration {migration.path.name} failed: {exc}") from exc
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied
