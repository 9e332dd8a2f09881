"""Inbox queries: one user's notifications, their unread count, and read/seen marks.

Every function takes the owner's user id and filters by it, so no query here can reach
another person's notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.clock import now_text
from app.db import Database
from app.errors import NotFound
from app.notifications.models import ENVELOPE_TYPES, Notification

PAGE_SIZE = 20


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    page: int
    pages: int
    total: int
    kind: str | None


async def unread_count(db: Database, user_id: int) -> int:
    value = await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND read_at IS NULL", (user_id,)
    )
    return int(value)


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


async def mark_read(db: Database, user_id: int, ids: Sequence[int]) -> list[int]:
    """Mark the user's notifications among `ids` read (and seen); returns those that changed."""
    return await _mark(db, user_id, ids, "read_at")


async def mark_seen(db: Database, user_id: int, ids: Sequence[int]) -> list[int]:
    return await _mark(db, user_id, ids, "seen_at")


async def mark_all_read(db: Database, user_id: int) -> int:
    now = now_text()
    async with db.transaction() as tx:
        cursor = await tx.execute(
            "UPDATE notifications SET read_at = ?, seen_at = coalesce(seen_at, ?)"
            " WHERE user_id = ? AND read_at IS NULL",
            (now, now, user_id),
        )
    return cursor.rowcount


async def _mark(db: Database, user_id: int, ids: Sequence[int], column: str) -> list[int]:
    if column not in ("read_at", "seen_at"):
        raise ValueError(column)
    wanted = sorted(set(ids))[:500]
    if not wanted:
        return []
    now = now_text()
    marks = "?, " * (len(wanted) - 1) + "?"
    also_seen = ", seen_at = coalesce(seen_at, ?)" if column == "read_at" else ""
    extra: list[object] = [now] if also_seen else []
    async with db.transaction() as tx:
        rows = await tx.fetch_all(
            f"UPDATE notifications SET {column} = ?{also_seen}"
            f" WHERE user_id = ? AND {column} IS NULL AND id IN ({marks}) RETURNING id",
            [now, *extra, user_id, *wanted],
        )
    return sorted(row[0] for row in rows)
