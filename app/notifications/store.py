"""Notification rows: inserting them with the unread counter, the inbox queries, read marks.

Every function takes the owner's user id and filters by it, so no query here can reach
another person's notifications. `users.unread_count` is kept in the same transaction as every
insert and read mark, so it is always exactly the number of unread rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.clock import now_text
from app.db import Database, Row, Transaction, chunks, placeholders
from app.errors import NotFound
from app.notifications.models import ENVELOPE_TYPES, STREAM_ONLY_TYPES, Notification, StoredGroup
from app.realtime.history import Position

PAGE_SIZE = 20
# SQLite allows 32,766 bound variables per statement (asyncpg 32,767); 7 per inserted row.
_INSERT_CHUNK = 5000
_IN_CHUNK = 900
MAX_MARK_IDS = 500
# The inbox shows notifications, not the conversation rows that share the user's stream.
_IN_INBOX = "type <> 'message'"


@dataclass(frozen=True)
class NewGroup:
    """One send: the same notification for each of `user_ids`."""

    user_ids: Sequence[int]
    type: str
    event: str
    key: str | None
    raw_data: str


@dataclass(frozen=True)
class InboxPage:
    """One page of the inbox, newest first: the notifications older than `before` (None: the
    newest), and the cursor of the next older page (None: this is the last one)."""

    items: list[Notification]
    kind: str | None
    before: int | None
    next_before: int | None


@dataclass(frozen=True)
class Marked:
    """What a read or seen mark changed: the ids, their events, the unread count after."""

    ids: list[int]
    events: list[str]
    unread: int


def _insert_sql(db: Database, count: int) -> str:
    # The BEFORE INSERT trigger has already moved the user's counters on when RETURNING is
    # computed for the row: they give the row's seq and the unread count right after it.
    dialect = db.dialect
    return (
        "INSERT INTO notifications (user_id, type, event, key, data, created_at, read_at)"
        " VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * count)
        + f" RETURNING id, user_id, {dialect.seq_after_insert}, {dialect.unread_after_insert}"
    )


def _row_params(group: NewGroup, user_id: int, created_at: str) -> tuple[object, ...]:
    # Stream-only rows (conversation messages and receipts) are born read: they are never an
    # unread notification.
    read_at = created_at if group.type in STREAM_ONLY_TYPES else None
    return (user_id, group.type, group.event, group.key, group.raw_data, created_at, read_at)


async def insert_groups(db: Database, groups: Sequence[NewGroup]) -> list[StoredGroup]:
    """Insert every group's rows, atomically; each stored row carries its user's seq and
    unread count right after it, and each group's rows come back in its `user_ids` order.
    Joins the task's open transaction if there is one. Raises ConflictError (and stores
    nothing) when a user does not exist.

    Rows are inserted in user id order (stable, so one user's rows keep the groups' order):
    on PostgreSQL each row locks its user's row, and two processes storing for the same users
    in different orders would otherwise deadlock."""
    created_at = now_text()
    # (user id, group index, position in group), sorted by user id, stable.
    entries = sorted(
        (
            (user_id, index, position)
            for index, group in enumerate(groups)
            for position, user_id in enumerate(group.user_ids)
        ),
        key=lambda entry: entry[0],
    )
    # Statements of at most _INSERT_CHUNK rows.
    chunks = [
        entries[start : start + _INSERT_CHUNK] for start in range(0, len(entries), _INSERT_CHUNK)
    ]
    statements = [
        [
            value
            for user_id, index, _ in chunk
            for value in _row_params(groups[index], user_id, created_at)
        ]
        for chunk in chunks
    ]
    returned: list[list[Row]] = []
    if len(statements) == 1:
        returned = [await db.write_statement(_insert_sql(db, len(chunks[0])), statements[0])]
    elif statements:
        async with db.transaction() as tx:
            for params, chunk in zip(statements, chunks, strict=True):
                returned.append(await tx.fetch_all(_insert_sql(db, len(chunk)), params))
    # Both stores insert the VALUES rows in order, so a statement's rows sorted by id line up
    # with its entries.
    placed: list[list[tuple[int, int, int, int]]] = [
        [(0, 0, 0, 0)] * len(group.user_ids) for group in groups
    ]
    for chunk, rows in zip(chunks, returned, strict=True):
        ordered = sorted((r[0], r[1], r[2], r[3]) for r in rows)
        for (_user_id, index, position), row in zip(chunk, ordered, strict=True):
            placed[index][position] = row
    return [
        StoredGroup(group.type, group.event, group.key, group.raw_data, created_at, tuple(rows))
        for group, rows in zip(groups, placed, strict=True)
    ]


async def unknown_users(db: Database, user_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(user_ids))
    known: set[int] = set()
    for chunk in chunks(wanted, _IN_CHUNK):
        rows = await db.fetch_all(
            f"SELECT id FROM users WHERE id IN ({placeholders(len(chunk))})", chunk
        )
        known.update(r[0] for r in rows)
    return [user_id for user_id in wanted if user_id not in known]


async def unread_count(db: Database, user_id: int) -> int:
    value = await db.fetch_value("SELECT unread_count FROM users WHERE id = ?", (user_id,))
    return int(value or 0)


async def positions(db: Database, user_ids: Sequence[int]) -> dict[int, Position]:
    """Each user's position: unread count, newest id and seq (users not found: left out)."""
    found: dict[int, Position] = {}
    for chunk in chunks(user_ids, _IN_CHUNK):
        rows = await db.fetch_all(
            "SELECT id, unread_count, last_seq,"
            " (SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = users.id),"
            f" unread_messages FROM users WHERE id IN ({placeholders(len(chunk))})",
            chunk,
        )
        for row in rows:
            found[int(row[0])] = Position(
                int(row[1]), int(row[3]), int(row[2]), (("unread_messages", int(row[4])),)
            )
    return found


async def seq_at(db: Database, user_id: int, notification_id: int) -> int:
    """The seq of the user's newest notification with id <= notification_id (0: none):
    per user, id order is seq order, so resuming from an id is resuming from this seq."""
    value = await db.fetch_value(
        "SELECT coalesce(max(seq), 0) FROM notifications WHERE user_id = ? AND id <= ?",
        (user_id, notification_id),
    )
    return int(value or 0)


async def id_at(db: Database, user_id: int, seq: int) -> int:
    """The id of the user's notification with this seq (0: none)."""
    value = await db.fetch_value(
        "SELECT id FROM notifications WHERE user_id = ? AND seq = ?", (user_id, seq)
    )
    return int(value or 0)


async def between_seqs(
    db: Database, user_id: int, after_seq: int, upto_seq: int, limit: int
) -> list[StoredGroup]:
    """The user's notifications with after_seq < seq <= upto_seq, in seq order, at most
    `limit`, one group each, with the user's unread count now."""
    rows = await db.fetch_all(
        "SELECT n.id, n.seq, n.type, n.event, n.key, n.data, n.created_at, u.unread_count"
        " FROM notifications n JOIN users u ON u.id = n.user_id"
        " WHERE n.user_id = ? AND n.seq > ? AND n.seq <= ? ORDER BY n.seq LIMIT ?",
        (user_id, after_seq, upto_seq, limit),
    )
    return [
        StoredGroup(
            r["type"],
            r["event"],
            r["key"],
            r["data"],
            r["created_at"],
            ((r["id"], user_id, r["seq"], r["unread_count"]),),
        )
        for r in rows
    ]


async def last_seqs(db: Database, user_ids: Sequence[int]) -> dict[int, int]:
    """Each user's newest seq (users without notifications: 0)."""
    found: dict[int, int] = {}
    for chunk in chunks(sorted(set(user_ids)), _IN_CHUNK):
        rows = await db.fetch_all(
            f"SELECT id, last_seq FROM users WHERE id IN ({placeholders(len(chunk))})", chunk
        )
        found.update((int(r[0]), int(r[1])) for r in rows)
    return found


async def list_page(
    db: Database,
    user_id: int,
    *,
    before: int | None = None,
    kind: str | None = None,
    size: int = PAGE_SIZE,
) -> InboxPage:
    """Newest first, `size` at most, only ids below `before` when given; `kind` is an envelope
    type or None for all. A cursor rather than a page number: new notifications arriving at
    the top do not shift the older pages, so "Load more" neither repeats nor skips one."""
    if kind is not None and kind not in ENVELOPE_TYPES:
        kind = None
    where = f"user_id = ? AND {_IN_INBOX}"
    params: list[object] = [user_id]
    if kind:
        where += " AND type = ?"
        params.append(kind)
    if before is not None:
        where += " AND id < ?"
        params.append(before)
    # One row more than the page: whether an older page exists, without counting them all.
    rows = await db.fetch_all(
        f"SELECT * FROM notifications WHERE {where} ORDER BY id DESC LIMIT ?", [*params, size + 1]
    )
    items = [Notification.from_row(row) for row in rows[:size]]
    next_before = items[-1].id if len(rows) > size else None
    return InboxPage(items, kind, before, next_before)


async def latest(db: Database, user_id: int, limit: int = 8) -> list[Notification]:
    rows = await db.fetch_all(
        f"SELECT * FROM notifications WHERE user_id = ? AND {_IN_INBOX} ORDER BY id DESC LIMIT ?",
        (user_id, limit),
    )
    return [Notification.from_row(row) for row in rows]


async def get(db: Database, user_id: int, notification_id: int) -> Notification:
    row = await db.fetch_one(
        f"SELECT * FROM notifications WHERE id = ? AND user_id = ? AND {_IN_INBOX}",
        (notification_id, user_id),
    )
    if row is None:
        raise NotFound("That notification does not exist.")
    return Notification.from_row(row)


async def claim_client_message(
    tx: Transaction, user_id: int, client_msg_id: str, keep: int
) -> bool:
    """True the first time this client message id is seen for the user, False after.

    Each user keeps only the newest `keep` ids: a client's offline queue is far shorter, and
    every distinct id would otherwise be a row for good."""
    result = await tx.execute(
        "INSERT INTO client_messages (user_id, client_msg_id, created_at)"
        " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (user_id, client_msg_id, now_text()),
    )
    if result.rowcount != 1:
        return False
    await tx.execute(
        "DELETE FROM client_messages WHERE user_id = ? AND id <= ("
        " SELECT id FROM client_messages WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (user_id, user_id, keep),
    )
    return True


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
            f" WHERE user_id = ? AND read_at IS NULL AND id IN ({placeholders(len(wanted))})"
            " RETURNING id, event",
            [now, now, user_id, *wanted],
        )
    return Marked(sorted(r[0] for r in rows), [r[1] for r in rows], await _unread_in(tx, user_id))


async def mark_key_read(tx: Transaction, user_id: int, key: str) -> Marked:
    """Mark the user's unread notifications with this collapse key read (a conversation the
    person has now read: its `new_message` notifications are done)."""
    now = now_text()
    rows = await tx.fetch_all(
        "UPDATE notifications SET read_at = ?, seen_at = coalesce(seen_at, ?)"
        f" WHERE user_id = ? AND key = ? AND read_at IS NULL AND {_IN_INBOX}"
        " RETURNING id, event",
        (now, now, user_id, key),
    )
    return Marked(sorted(r[0] for r in rows), [r[1] for r in rows], await _unread_in(tx, user_id))


async def mark_seen(tx: Transaction, user_id: int, ids: Sequence[int]) -> Marked:
    wanted = sorted(set(ids))[:MAX_MARK_IDS]
    rows = []
    if wanted:
        rows = await tx.fetch_all(
            "UPDATE notifications SET seen_at = ?"
            f" WHERE user_id = ? AND seen_at IS NULL AND id IN ({placeholders(len(wanted))})"
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
