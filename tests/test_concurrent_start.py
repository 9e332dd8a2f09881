"""Several processes starting at once on a fresh directory: one secret key, each migration
applied once (two `Database` objects on one file play two processes)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.config import load_secret_key
from app.db import SqliteDatabase
from app.migrate import discover, migrate, migrations_dir


async def test_two_processes_migrating_one_fresh_file_apply_each_migration_once(
    tmp_path: Path,
) -> None:
    first, second = SqliteDatabase(tmp_path / "app.db"), SqliteDatabase(tmp_path / "app.db")
    await first.open()
    await second.open()
    try:
        applied = await asyncio.gather(migrate(first), migrate(second))
        names = [m.name for m in discover(migrations_dir(first.dialect))]
        assert sorted(applied[0] + applied[1]) == sorted(names)  # once each, between them
        rows = await first.fetch_all("SELECT name FROM schema_migrations ORDER BY version")
        assert [row["name"] for row in rows] == names
    finally:
        await first.close()
        await second.close()


def test_processes_creating_the_secret_key_at_once_all_get_the_one_that_won(
    tmp_path: Path,
) -> None:
    for attempt in range(20):
        path = tmp_path / str(attempt) / "secret.key"
        with ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(lambda _: load_secret_key(path, {}), range(8)))
        assert len(set(keys)) == 1 and len(keys[0]) == 64
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no leftovers
