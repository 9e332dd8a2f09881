"""Notification rows: inserting them with the unread counter, the inbox queries, read marks.

Every function takes the owner's user id and filters by it, so no query here can reach
another person's notifications. `users.unread_count` is kept in the same transaction as every
insert and read mark, so it is always exactly the number of unread rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.clock import now_text
from app.db import Database, Transaction
from app.errors import NotFound
from app.notifications.models import ENVELOPE_TYPES, Notification

PAGE_SIZE = 20
# SQLite allows 32,766 bound variables per statement; 6 per inserted row.
_INSERT_CHUNK = 5000
_IN_CHUNK = 900
MAX_MARK_IDS = 500


@dataclass(frozen=True)
class NewNotification:
    user_id: int
    type: str
    event: str
    key: str | None
    raw_data: str


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    page: int
    pages: int
    total: int
    kind: str | None


@dataclass(frozen=True)
class Marked:
    """What a read or seen mark changed: the ids, their events, the unread count after."""

    ids: list[int]
    events: list[str]
    unread: int


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _insert_sql(count: int) -> str:
    # The BEFORE INSERT trigger has already counted the row when RETURNING is computed.
    return (
        "INSERT INTO notifications (user_id, type, event, key, data, created_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)
        + " RETURNING id, user_id,"
        " (SELECT unread_count FROM users WHERE users.id = notifications.user_id)"
    )


async def insert_notifications(db: Database, rows: Sequence[NewNotification]) -> list[Notification]:
    """Insert in order, atomically; each returned notification carries its user's unread count
    right after it. Joins the task's open transaction if there is one. Raises
    sqlite3.IntegrityError (and stores nothing) when a user does not exist."""
    if not rows:
        return []
    created_at = now_text()
    chunks = [rows[i : i + _INSERT_CHUNK] for i in range(0, len(rows), _INSERT_CHUNK)]
    returned: list[sqlite3.Row] = []
    if len(chunks) == 1:
        returned = await db.write_statement(_insert_sql(len(rows)), _params(rows, created_at))
    else:
        async with db.transaction() as tx:
            for chunk in chunks:
                returned += await tx.fetch_all(_insert_sql(len(chunk)), _params(chunk, created_at))
    # SQLite inserts the VALUES rows in order, so sorted ids line up with them.
    returned.sort(key=lambda r: r[0])
    return [
        Notification(
            id=r[0],
            user_id=row.user_id,
            type=row.type,
            event=row.event,
            key=row.key,
            raw_data=row.raw_data,
            created_at=created_at,
            unread=r[2],
        )
        for r, row in zip(returned, rows, strict=True)
    ]


def _params(rows: Sequence[NewNotification], created_at: str) -> list[object]:
    params: list[object] = []
    for row in rows:
        params += (row.user_id, row.type, row.event, row.key, row.raw_data, created_at)
    return params


async def unknown_users(db: Database, user_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(user_ids))
    known: set[int] = set()
    for chunk in _chunks(wanted, _IN_CHUNK):
        rows = await db.fetch_all(f"SELECT id FROM users WHERE id IN ({_marks(len(chunk))})", chunk)
        known.update(r[0] for r in rows)
    return [user_id for user_id in wanted if user_id not in known]


async def unread_count(db: Database, user_id: int) -> int:
    value = await db.fetch_value("SELECT unread_count FROM users WHERE id = ?", (user_id,))
    return int(value or 0)


async def unread_and_newest(db: Database, user_id: int) -> tuple[int, int]:
    """(unread count, id of the newest notification or 0)."""
    row = await db.fetch_one(
        "SELECT unread_count,"
        " (SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = users.id)"
        " FROM users WHERE id = ?",
        (user_id,),
    )
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def after(db: Database, user_id: int, after_id: int, limit: int) -> list[Notification]:
    """The user's notifications with id > after_id, oldest first."""
    rows = await db.fetch_all(
        "SELECT * FROM notifications WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
        (user_id, after_id, limit),
    )
    return [Notification.from_row(row) for row in rows]


async def list_page(
    db: Database, user_id: int, *, page: int = 1, kind: str | None = None, size: int = PAGE_SIZE
) -> InboxPage:
    """Newest first; `kind` is an envelope type or None for all."""
    if kind is not None and kind not in ENVELOPE_TYPES:
        kind = None
    where = "user_id = ?" + (" AND type = ?" if kind else "")
    params: list[object] = [user_id] + ([kind] if kind else [])
    total = int(await db.fetch_value(f"SELECT count(*) FROM notifications WHERE {where}", params))
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    rows = await db.fetch_all(
        f"SELECT * FROM notifications WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, size, (page - 1) * size],
    )
    return InboxPage([Notification.from_row(row) for row in rows], page, pages, total, kind)


async def latest(db: Database, user_id: int, limit: int = 8) -> list[Notification]:
    rows = await db.fetch_all(
        "SELECT * FROM notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit)
    )
    return [Notification.from_row(row) for row in rows]


async def get(db: Database, user_id: int, notification_id: int) -> Notification:
    row = await db.fetch_one(
        "SELECT * FROM notifications WHERE id = ? AND user_id = ?", (notification_id, user_id)
    )
    if row is None:
        raise NotFound("That notification does not exist.")
    return Notification.from_row(row)


async def claim_client_message(tx: Transaction, user_id: int, client_msg_id: str) -> bool:
    """True the first time this client message id is seen for the user, False after."""
    cursor = await tx.execute(
        "INSERT OR IGNORE INTO client_messages (user_id, client_msg_id, created_at)"
        " VALUES (?, ?, ?)",
        (user_id, client_msg_id, now_text()),
    )
    return cursor.rowcount == 1


async def mark_read(tx: Transaction, user_id: int, ids: Sequence[int] | None) -> Marked:
    """Mark the user's notifications among `ids` (None: all) read, and seen if not yet."""
    now = now_text()
    if ids is None:
        rows = await tx.fetch_all(
            "UPDATE notifications SET read_at = ?, seen_at = coalesce(seen_at, ?)"
            " WHERE user_id = ? AND read_at IS NULL RETURNING id, event",
            (now, now, user_id),
        )
    else:
        wanted = sorted(set(ids))[:MAX_MARK_IDS]
        if not wanted:
            return Marked([], [], await _unread_in(tx, user_id))
        rows = await tx.fetch_all(
            "UPDATE notifications SET read_at = ?, seen_at = coalesce(seen_at, ?)"
            f" WHERE user_id = ? AND read_at IS NULL AND id IN ({_marks(len(wanted))})"
            " RETURNING id, event",
            [now, now, user_id, *wanted],
        )
    return Marked(sorted(r[0] for r in rows), [r[1] for r in rows], await _unread_in(tx, user_id))


async def mark_seen(tx: Transaction, user_id: int, ids: Sequence[int]) -> Marked:
    wanted = sorted(set(ids))[:MAX_MARK_IDS]
    rows = []
    if wanted:
        rows = await tx.fetch_all(
            "UPDATE notifications SET seen_at = ?"
            f" WHERE user_id = ? AND seen_at IS NULL AND id IN ({_marks(len(wanted))})"
            " RETURNING id, event",
            [now_text(), user_id, *wanted],
        )
    return Marked(sorted(r[0] for r in rows), [r[1] for r in rows], await _unread_in(tx, user_id))


async def _unread_in(tx: Transaction, user_id: int) -> int:
    row = await tx.fetch_one("SELECT unread_count FROM users WHERE id = ?", (user_id,))
    return 0 if row is None else int(row[0])


async def forget_client_messages(db: Database, older_than: str) -> None:
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM client_messages WHERE created_at < ?", (older_than,))
