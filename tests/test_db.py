"""The Database interface, the same on both stores: rows, errors, transactions as units of
work, locks, and the SQL that differs (the dialect's fragments)."""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app.db import (
    ConflictError,
    Database,
    DatabaseError,
    Transaction,
    current_transaction,
    database_from_settings,
)
from app.migrate import migrate
from app.notifications import store
from app.notifications.store import NewGroup
from tests.conftest import MakeSettings

T = TypeVar("T")
NOW = "2026-12-01T00:00:00Z"


@pytest.fixture
async def database(make_settings: MakeSettings) -> AsyncIterator[Database]:
    db = database_from_settings(make_settings())
    await db.open()
    await migrate(db)
    yield db
    await db.close()


async def add_user(db: Database, email: str) -> int:
    async with db.transaction() as tx:
        user_id = await tx.fetch_value(
            "INSERT INTO users (email, name, password_hash, created_at)"
            " VALUES (?, 'Someone', 'x', ?) RETURNING id",
            (email, NOW),
        )
    return int(user_id)


def elsewhere(awaitable: Awaitable[T]) -> asyncio.Task[T]:
    """Run as another request would: a task without this one's open transaction."""

    async def run() -> T:
        return await awaitable

    return asyncio.get_running_loop().create_task(run(), context=contextvars.Context())


async def test_rows_are_read_by_column_name_or_position(database: Database) -> None:
    user_id = await add_user(database, "row@example.com")

    row = await database.fetch_one("SELECT id, email FROM users WHERE id = ?", (user_id,))

    assert row is not None
    assert (row["id"], row["email"]) == (user_id, "row@example.com")
    assert (row[0], row[1]) == (user_id, "row@example.com")
    assert dict(row) == {"id": user_id, "email": "row@example.com"}
    assert tuple(row) == (user_id, "row@example.com")
    assert await database.fetch_one("SELECT id FROM users WHERE id = ?", (user_id + 1,)) is None
    assert await database.fetch_value("SELECT count(*) FROM users") == 1


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (  # unique, whatever the case of the email
            "INSERT INTO users (email, name, password_hash, created_at) VALUES (?, 'B', 'x', ?)",
            ("Taken@Example.com", NOW),
        ),
        (  # foreign key
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)"
            " VALUES ('t', 999999, ?, ?, ?)",
            (NOW, NOW, NOW),
        ),
        (  # check
            "INSERT INTO services (provider_id, name, price_cents, duration_minutes,"
            " created_at, updated_at) VALUES (1, 'Free', 0, 60, ?, ?)",
            (NOW, NOW),
        ),
    ],
    ids=["unique", "foreign-key", "check"],
)
async def test_a_constraint_violation_is_a_conflict_error_and_its_transaction_changes_nothing(
    database: Database, sql: str, params: tuple[Any, ...]
) -> None:
    await add_user(database, "taken@example.com")

    with pytest.raises(ConflictError):
        async with database.transaction() as tx:
            await tx.execute("UPDATE users SET name = 'Changed'")
            await tx.execute(sql, params)

    assert await database.fetch_value("SELECT name FROM users") == "Someone"
    assert await database.fetch_value("SELECT count(*) FROM users") == 1


async def test_any_other_database_error_is_a_database_error(database: Database) -> None:
    with pytest.raises(DatabaseError) as caught:
        await database.fetch_all("SELECT no_such_column FROM users")
    assert not isinstance(caught.value, ConflictError)


async def test_emails_are_found_whatever_their_case(database: Database) -> None:
    user_id = await add_user(database, "case@example.com")

    found = await database.fetch_value(
        f"SELECT id FROM users WHERE {database.dialect.email_equals}", ("CASE@Example.COM",)
    )

    assert found == user_id


async def test_the_like_of_the_dialect_ignores_case(database: Database) -> None:
    rows = await database.fetch_all(
        f"SELECT 1 WHERE 'House Cleaning' {database.dialect.like} ? ESCAPE '\\'", ("%clean%",)
    )
    assert len(rows) == 1


async def test_question_marks_inside_string_literals_are_not_placeholders(
    database: Database,
) -> None:
    row = await database.fetch_one("SELECT 'why?', CAST(? AS TEXT), 'it''s ?'", ("answer",))
    assert row is not None
    assert tuple(row) == ("why?", "answer", "it's ?")


async def test_execute_reports_how_many_rows_it_changed(database: Database) -> None:
    for n in range(3):
        await add_user(database, f"u{n}@example.com")

    async with database.transaction() as tx:
        updated = await tx.execute(
            "UPDATE users SET name = 'N' WHERE email <> ?", ("u0@example.com",)
        )
        ignored = await tx.execute(
            "INSERT INTO notification_preferences (user_id, event, in_app, desktop)"
            " SELECT id, 'notification', 1, 1 FROM users WHERE true"
            " ON CONFLICT DO NOTHING"
        )
        again = await tx.execute(
            "INSERT INTO notification_preferences (user_id, event, in_app, desktop)"
            " SELECT id, 'notification', 0, 0 FROM users WHERE true"
            " ON CONFLICT DO NOTHING"
        )

    assert (updated.rowcount, ignored.rowcount, again.rowcount) == (2, 3, 0)


async def test_a_write_statement_commits_on_its_own_and_returns_its_rows(
    database: Database,
) -> None:
    user_id = await add_user(database, "w@example.com")

    rows = await database.write_statement(
        "UPDATE users SET name = ? WHERE id = ? RETURNING id, name", ("Written", user_id)
    )

    assert [tuple(row) for row in rows] == [(user_id, "Written")]
    assert await elsewhere(database.fetch_value("SELECT name FROM users")) == "Written"


async def test_a_nested_transaction_joins_the_outer_one_and_callbacks_run_after_commit(
    database: Database,
) -> None:
    events: list[str] = []

    async def committed() -> None:
        visible = await elsewhere(database.fetch_value("SELECT count(*) FROM users"))
        events.append(f"after commit, others see {visible}")

    async with database.transaction() as outer:
        async with database.transaction() as inner:
            assert inner is outer
            assert current_transaction() is outer
            await inner.execute(
                "INSERT INTO users (email, name, password_hash, created_at)"
                " VALUES ('n@example.com', 'N', 'x', ?)",
                (NOW,),
            )
            inner.after_commit(committed)
        # The inner block's end committed nothing: other connections do not see the row yet.
        assert await elsewhere(database.fetch_value("SELECT count(*) FROM users")) == 0
        events.append("outer block ends")

    assert current_transaction() is None
    assert events == ["outer block ends", "after commit, others see 1"]


async def test_a_rolled_back_transaction_runs_no_callback_and_leaves_nothing(
    database: Database,
) -> None:
    called: list[bool] = []

    async def callback() -> None:
        called.append(True)

    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await add_user(database, "gone@example.com")  # joins this transaction
            tx.after_commit(callback)
            raise RuntimeError("changed my mind")

    assert called == []
    assert await database.fetch_value("SELECT count(*) FROM users") == 0


async def test_transactions_locking_one_name_take_turns_so_check_then_write_holds(
    database: Database,
) -> None:
    """Twenty transactions each count the rows and add one only if there are fewer than
    five: under the lock exactly five are added (without it, on PostgreSQL, all twenty
    would count the same committed rows)."""

    async def reserve(tx: Transaction) -> None:
        await tx.lock("test:quota")
        count = await tx.fetch_value("SELECT count(*) FROM job_leases")
        await asyncio.sleep(0)  # let the others run into the lock
        if count < 5:
            await tx.execute(
                "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, 'x', 0)",
                (f"slot-{count}",),
            )

    async def one() -> None:
        async with database.transaction() as tx:
            await reserve(tx)

    await asyncio.gather(*(elsewhere(one()) for _ in range(20)))

    assert await database.fetch_value("SELECT count(*) FROM job_leases") == 5


async def test_each_stored_notification_carries_its_users_unread_count_including_itself(
    database: Database,
) -> None:
    first = await add_user(database, "a@example.com")
    second = await add_user(database, "b@example.com")

    [one, two] = await store.insert_groups(
        database,
        [
            NewGroup([first, second, first], "notification", "notification", None, "{}"),
            NewGroup([first], "notification", "notification", None, "{}"),
        ],
    )

    assert [(user, seq, unread) for _id, user, seq, unread in one.rows] == [
        (first, 1, 1),
        (second, 1, 1),
        (first, 2, 2),
    ]
    assert [(user, seq, unread) for _id, user, seq, unread in two.rows] == [(first, 3, 3)]
    firsts = [row for row in one.rows + two.rows if row[1] == first]
    assert [row[0] for row in firsts] == sorted(row[0] for row in firsts)  # id order = seq order
    assert await store.unread_count(database, first) == 3


async def test_rows_are_stored_in_user_order_and_come_back_in_the_callers_order(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several statements in one transaction, users given in descending order: rows are
    # inserted by user id (no two writers lock users in opposite orders), and each group
    # still answers in the order it was asked.
    monkeypatch.setattr(store, "_INSERT_CHUNK", 2)
    users = [await add_user(database, f"u{n}@example.com") for n in range(5)]
    wanted = list(reversed(users))

    [one, two] = await store.insert_groups(
        database,
        [
            NewGroup(wanted, "notification", "notification", None, '{"n": 1}'),
            NewGroup([users[2], users[0]], "notification", "notification", None, '{"n": 2}'),
        ],
    )

    assert [row[1] for row in one.rows] == wanted
    assert [row[1] for row in two.rows] == [users[2], users[0]]
    assert all(row[2] == 1 for row in one.rows) and all(row[2] == 2 for row in two.rows)
    for group, n in ((one, 1), (two, 2)):
        for notification_id, user_id, seq, _unread in group.rows:
            stored = await database.fetch_one(
                "SELECT user_id, seq, data FROM notifications WHERE id = ?", (notification_id,)
            )
            assert stored is not None
            assert (stored["user_id"], stored["seq"], stored["data"]) == (
                user_id,
                seq,
                f'{{"n": {n}}}',
            )
    by_user = await database.fetch_all("SELECT id, user_id FROM notifications ORDER BY id")
    assert [row["user_id"] for row in by_user] == sorted(row["user_id"] for row in by_user)


async def test_a_notification_for_an_unknown_user_is_a_conflict_and_stores_nothing(
    database: Database,
) -> None:
    known = await add_user(database, "k@example.com")

    with pytest.raises(ConflictError):
        await store.insert_groups(
            database, [NewGroup([known, 424242], "notification", "notification", None, "{}")]
        )

    assert await database.fetch_value("SELECT count(*) FROM notifications") == 0
    assert await store.unread_count(database, known) == 0


def test_no_driver_or_driver_type_is_used_outside_the_database_package() -> None:
    app = Path(__file__).resolve().parent.parent / "app"
    banned = re.compile(
        r"\b(import (sqlite3|aiosqlite|asyncpg)|from (sqlite3|aiosqlite|asyncpg)\b|lastrowid)"
    )
    offenders = [
        f"{path.relative_to(app)}:{number}"
        for path in app.rglob("*.py")
        if path.parent.name != "db"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if banned.search(line)
    ]
    assert offenders == []
