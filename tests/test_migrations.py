"""Schema migrations: each file applied once, in order, all or nothing; a failure stops start-up.

Every test runs on both stores, each with its own migration directory; schema introspection is
the only part written per store (below).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from app import create_app
from app.db import Database, PostgresDatabase, SqliteDatabase, database_from_settings
from app.migrate import MIGRATIONS_ROOT, MigrationError, discover, migrate, migrations_dir
from tests.conftest import MakeSettings
from tests.pg import Cluster

APP_TABLES = {
    "users",
    "sessions",
    "services",
    "bookings",
    "payments",
    "notifications",
    "notification_preferences",
}


@pytest.fixture
def empty_database_url(store: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (a new file is empty), else a PostgreSQL database without tables."""
    if store == "sqlite":
        yield None
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database(migrated=False)
    try:
        yield url
    finally:
        cluster.drop_database(url)


@pytest.fixture
async def fresh_db(tmp_path: Path, empty_database_url: str | None) -> AsyncIterator[Database]:
    db: Database
    if empty_database_url is None:
        db = SqliteDatabase(tmp_path / "fresh.db")
    else:
        db = PostgresDatabase(empty_database_url)
    await db.open()
    yield db
    await db.close()


# --- introspection, per store -----------------------------------------------------------------

_PG_SCHEMA = """
    SELECT 'column', table_name || '.' || column_name,
           data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
      FROM information_schema.columns WHERE table_schema = current_schema()
    UNION ALL
    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
    UNION ALL
    SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function', proname, prosrc FROM pg_proc
     WHERE pronamespace = current_schema()::regnamespace
    ORDER BY 1, 2
"""


async def schema(db: Database) -> list[tuple[str, str, str]]:
    if isinstance(db, SqliteDatabase):
        sql = "SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name"
    else:
        sql = _PG_SCHEMA
    return [(row[0], row[1], row[2]) for row in await db.fetch_all(sql)]


async def tables(db: Database) -> set[str]:
    if isinstance(db, SqliteDatabase):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    return {row[0] for row in await db.fetch_all(sql)}


async def columns(db: Database, table: str) -> list[str]:
    if isinstance(db, SqliteDatabase):
        return [row[1] for row in await db.fetch_all(f"PRAGMA table_info({table})")]
    rows = await db.fetch_all(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [row[0] for row in rows]


async def recorded(db: Database) -> list[tuple[int, str]]:
    rows = await db.fetch_all("SELECT version, name FROM schema_migrations ORDER BY version")
    return [(row[0], row[1]) for row in rows]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


async def test_a_fresh_database_gets_every_table_and_one_record_per_migration_file(
    fresh_db: Database,
) -> None:
    directory = migrations_dir(fresh_db.dialect)
    files = sorted(directory.glob("*.sql"))
    assert files, "the project ships migrations"

    applied = await migrate(fresh_db)

    assert applied == [path.stem for path in files]
    assert APP_TABLES | {"schema_migrations"} <= await tables(fresh_db)
    assert await recorded(fresh_db) == [(m.version, m.name) for m in discover(directory)]
    assert [name for _, name in await recorded(fresh_db)] == [path.stem for path in files]


async def test_migrating_twice_applies_nothing_the_second_time(fresh_db: Database) -> None:
    assert await migrate(fresh_db)
    before = (await schema(fresh_db), await recorded(fresh_db))

    assert await migrate(fresh_db) == []

    assert (await schema(fresh_db), await recorded(fresh_db)) == before


async def test_only_new_migration_files_are_applied_in_version_order(
    fresh_db: Database, tmp_path: Path
) -> None:
    directory = write(tmp_path / "m", {"001_first.sql": "CREATE TABLE a (x INTEGER);"})
    assert await migrate(fresh_db, directory) == ["001_first"]
    write(
        directory,
        {
            "003_third.sql": "ALTER TABLE a ADD COLUMN z INTEGER;",
            "002_second.sql": "ALTER TABLE a ADD COLUMN y INTEGER;",
        },
    )

    assert await migrate(fresh_db, directory) == ["002_second", "003_third"]

    assert await columns(fresh_db, "a") == ["x", "y", "z"]
    assert await recorded(fresh_db) == [(1, "001_first"), (2, "002_second"), (3, "003_third")]


async def test_a_broken_migration_names_its_file_and_leaves_the_database_as_it_was(
    fresh_db: Database, tmp_path: Path
) -> None:
    directory = write(
        tmp_path / "m",
        {
            "001_good.sql": "CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n",
            "002_broken.sql": "-- adds b, then fails\nCREATE TABLE b (y INTEGER);\n"
            "INSERT INTO a VALUES (2);\nTHIS IS NOT SQL;\n",
        },
    )

    with pytest.raises(MigrationError, match=r"002_broken\.sql"):
        await migrate(fresh_db, directory)

    assert "b" not in await tables(fresh_db)
    assert [row[0] for row in await fresh_db.fetch_all("SELECT x FROM a")] == [1]
    assert await recorded(fresh_db) == [(1, "001_good")]

    # Once the file is fixed, the next start applies it.
    write(directory, {"002_broken.sql": "CREATE TABLE b (y INTEGER);\n"})
    assert await migrate(fresh_db, directory) == ["002_broken"]
    assert "b" in await tables(fresh_db)


@pytest.mark.parametrize(
    ("name", "message"),
    [("1_short.sql", "NNN_name.sql"), ("001_Bad-Name.sql", "NNN_name.sql")],
)
async def test_a_misnamed_migration_file_stops_migrating_before_anything_runs(
    fresh_db: Database, tmp_path: Path, name: str, message: str
) -> None:
    directory = write(
        tmp_path / "m", {"002_fine.sql": "CREATE TABLE a (x INTEGER);", name: "SELECT 1;"}
    )

    with pytest.raises(MigrationError, match=message):
        await migrate(fresh_db, directory)

    assert "a" not in await tables(fresh_db)


async def test_two_files_with_one_version_number_are_refused(
    fresh_db: Database, tmp_path: Path
) -> None:
    directory = write(
        tmp_path / "m",
        {"001_a.sql": "CREATE TABLE a (x INTEGER);", "001_b.sql": "CREATE TABLE b (x INTEGER);"},
    )

    with pytest.raises(MigrationError, match="share a version"):
        await migrate(fresh_db, directory)

    assert not {"a", "b"} & await tables(fresh_db)


async def test_a_migration_without_its_closing_semicolon_is_refused(
    fresh_db: Database, tmp_path: Path
) -> None:
    directory = write(tmp_path / "m", {"001_open.sql": "CREATE TABLE a (x INTEGER)"})

    with pytest.raises(MigrationError, match="semicolon"):
        await migrate(fresh_db, directory)

    assert "a" not in await tables(fresh_db)


async def test_the_app_does_not_start_when_a_migration_fails(
    make_settings: MakeSettings, empty_database_url: str | None
) -> None:
    # A database someone else created a `users` table in: 001_initial cannot apply.
    settings = make_settings(database_url=empty_database_url)
    squatter = database_from_settings(settings)
    await squatter.open()
    async with squatter.transaction() as tx:
        await tx.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    await squatter.close()

    runner = web.AppRunner(create_app(settings))
    try:
        with pytest.raises(MigrationError, match=r"001_initial\.sql"):
            await runner.setup()
    finally:
        await runner.cleanup()

    check = database_from_settings(settings)
    await check.open()
    try:
        assert "sessions" not in await tables(check)
        assert await check.fetch_all("SELECT * FROM schema_migrations") == []
    finally:
        await check.close()


def test_each_store_has_its_own_directory_of_migrations() -> None:
    for dialect in ("sqlite", "postgresql"):
        assert discover(MIGRATIONS_ROOT / dialect), dialect
    assert not list(MIGRATIONS_ROOT.glob("*.sql")), "migrations live in a directory per store"


async def test_processes_starting_together_apply_each_migration_once(fresh_db: Database) -> None:
    # Another process (or host) on the same database, starting at the same moment.
    if isinstance(fresh_db, PostgresDatabase):
        other: Database = PostgresDatabase(fresh_db.url)
    else:
        assert isinstance(fresh_db, SqliteDatabase)
        other = SqliteDatabase(fresh_db.path)
    await other.open()
    try:
        first, second = await asyncio.gather(migrate(fresh_db), migrate(other))
    finally:
        await other.close()

    names = [m.name for m in discover(migrations_dir(fresh_db.dialect))]
    assert sorted(first + second) == names
    assert [name for _, name in await recorded(fresh_db)] == names
