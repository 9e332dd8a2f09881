"""What only the PostgreSQL store has: `?` translation, statement splitting around `$$`
bodies, the notification trigger's ordering under concurrent transactions, connection errors."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest

from app.db import DatabaseError, PostgresDatabase
from app.db.postgres import redacted, split_statements, translate
from app.notifications import store
from app.notifications.models import stored_ids
from app.notifications.store import NewGroup
from tests.pg import Cluster
from tests.ws_helpers import eventually

NOW = "2026-12-01T00:00:00Z"


# --- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ? + ?", "SELECT $1 + $2"),
        ("WHERE a = '?' AND b = ?", "WHERE a = '?' AND b = $1"),
        ("WHERE a = 'it''s ?' AND b = ?", "WHERE a = 'it''s ?' AND b = $1"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = $1'),
        ("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ $1"),
        ("SELECT $$ ? $$, $tag$ '?' $tag$, ?", "SELECT $$ ? $$, $tag$ '?' $tag$, $1"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_question_marks_become_numbered_placeholders_outside_quotes_and_comments(
    sql: str, expected: str
) -> None:
    assert translate(sql) == expected


def test_a_script_is_split_at_semicolons_outside_strings_comments_and_function_bodies() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE a (x TEXT DEFAULT ';');
        CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE a SET x = 'y;z';
            RETURN NEW;
        END
        $$;
        /* block; comment */
        INSERT INTO a VALUES ($body$;$body$);
        -- trailing comment only
    """

    statements = split_statements(script)

    assert len(statements) == 3
    assert statements[0].endswith("CREATE TABLE a (x TEXT DEFAULT ';');")
    assert "UPDATE a SET x = 'y;z';" in statements[1]
    assert statements[1].endswith("$$;")
    assert statements[2].endswith("INSERT INTO a VALUES ($body$;$body$);")


def test_a_script_whose_last_statement_has_no_semicolon_is_refused() -> None:
    with pytest.raises(ValueError, match="semicolon"):
        split_statements("CREATE TABLE a (x INTEGER);\nCREATE TABLE b (y INTEGER)\n-- end\n")


def test_the_password_is_left_out_of_database_urls_in_messages() -> None:
    assert redacted("postgresql://app:s3cret@db.internal:5432/market") == (
        "postgresql://app@db.internal:5432/market"
    )
    assert redacted("postgresql://db.internal/market") == "postgresql://db.internal/market"


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    db = PostgresDatabase("postgresql://app:s3cret@127.0.0.1:1/market")

    with pytest.raises(DatabaseError) as caught:
        await db.open()

    assert "cannot connect to PostgreSQL at postgresql://app@127.0.0.1:1/market" in str(
        caught.value
    )
    assert "s3cret" not in str(caught.value)


# --- against the test cluster ------------------------------------------------------------------


@pytest.fixture
async def pg(postgres_cluster: Cluster) -> AsyncIterator[PostgresDatabase]:
    url = postgres_cluster.create_database()
    db = PostgresDatabase(url)
    await db.open()
    yield db
    await db.close()
    postgres_cluster.drop_database(url)


async def add_user(db: PostgresDatabase, email: str) -> int:
    rows = await db.write_statement(
        "INSERT INTO users (email, name, password_hash, created_at)"
        " VALUES (?, 'Someone', 'x', ?) RETURNING id",
        (email, NOW),
    )
    return int(rows[0]["id"])


async def waiting_for_a_lock(db: PostgresDatabase) -> bool:
    """Whether a session of this database waits for a lock. Asked outside the test's open
    transaction: inside one, pg_stat_activity would keep showing its first snapshot."""
    rows = await asyncio.get_running_loop().create_task(
        db.fetch_all(
            "SELECT 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ),
        context=contextvars.Context(),
    )
    return bool(rows)


async def test_a_second_transaction_storing_for_the_same_user_waits_and_gets_the_next_id_and_seq(
    pg: PostgresDatabase,
) -> None:
    user = await add_user(pg, "u@example.com")
    other = await add_user(pg, "o@example.com")
    group = NewGroup([user], "notification", "notification", None, "{}")

    async with pg.transaction():
        [first] = await store.insert_groups(pg, [group])
        # Another request (a task without this transaction) stores for the same user ...
        second_task = asyncio.get_running_loop().create_task(
            store.insert_groups(pg, [group]), context=contextvars.Context()
        )
        await eventually(lambda: waiting_for_a_lock(pg), what="the second insert waiting")
        # ... while someone else's notification goes through at once, id drawn meanwhile.
        [unrelated] = await asyncio.get_running_loop().create_task(
            store.insert_groups(pg, [NewGroup([other], "notification", "n", None, "{}")]),
            context=contextvars.Context(),
        )
        assert not second_task.done()
    [second] = await second_task

    assert stored_ids(first)[0] < stored_ids(unrelated)[0] < stored_ids(second)[0]
    rows = await pg.fetch_all(
        "SELECT id, seq FROM notifications WHERE user_id = ? ORDER BY id", (user,)
    )
    assert [(row["id"], row["seq"]) for row in rows] == [
        (stored_ids(first)[0], 1),
        (stored_ids(second)[0], 2),
    ]
    assert await pg.fetch_value("SELECT last_seq FROM users WHERE id = ?", (user,)) == 2


async def test_the_trigger_numbers_seq_itself_whatever_the_insert_says(
    pg: PostgresDatabase,
) -> None:
    user = await add_user(pg, "s@example.com")

    rows = await pg.write_statement(
        "INSERT INTO notifications (user_id, type, event, data, created_at, seq)"
        " VALUES (?, 'notification', 'n', '{}', ?, 999), (?, 'notification', 'n', '{}', ?, 999)"
        " RETURNING seq",
        (user, NOW, user, NOW),
    )

    assert [row["seq"] for row in rows] == [1, 2]


async def test_read_marks_and_deletes_keep_the_unread_count(pg: PostgresDatabase) -> None:
    user = await add_user(pg, "r@example.com")
    [group] = await store.insert_groups(
        pg, [NewGroup([user, user, user], "notification", "n", None, "{}")]
    )
    first, second, third = stored_ids(group)

    async with pg.transaction() as tx:
        marked = await store.mark_read(tx, user, [first, second])
    assert marked.unread == 1
    await pg.write_statement("UPDATE notifications SET read_at = NULL WHERE id = ?", (second,))
    assert await store.unread_count(pg, user) == 2
    await pg.write_statement("DELETE FROM notifications WHERE id IN (?, ?)", (first, third))
    assert await store.unread_count(pg, user) == 1
    # Deleting the user takes its notifications along without tripping over the counter.
    await pg.write_statement("DELETE FROM users WHERE id = ?", (user,))
    assert await pg.fetch_value("SELECT count(*) FROM notifications") == 0
