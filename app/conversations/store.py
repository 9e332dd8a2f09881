"""Conversation rows: messages, watermarks, counters. Every query names the person asking
and checks they are a party to the booking, so none can reach another person's thread.

Invariant (docs/conversations.md): sending moves the sender's watermark to their message, so
everything past a person's watermark is from the other party, and their unread count in a
conversation is `conversations.last_seq - read_seq`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from app.clock import from_text, to_text, utc_now
from app.db import Database, Row, Transaction, placeholders
from app.errors import NotFound

PAGE_SIZE = 200
# A conversation stays writable this long after its booking ended (declined, cancelled,
# completed): late questions are normal, an open channel for ever is not.
CLOSES_AFTER = timedelta(days=30)
ENDED_STATUSES = ("declined", "cancelled", "completed")


@dataclass(frozen=True, slots=True)
class Parties:
    """A booking as its conversation sees it, from one party's side."""

    booking_id: int
    service_name: str
    status: str
    updated_at: str
    me: int
    other: int
    my_name: str
    other_name: str

    @property
    def closed(self) -> bool:
        if self.status not in ENDED_STATUSES:
            return False
        return from_text(self.updated_at) + CLOSES_AFTER < utc_now()


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    booking_id: int
    seq: int
    sender_id: int
    sender_name: str
    body: str
    client_msg_id: str | None
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "seq": self.seq,
            "sender_id": self.sender_id,
            "sender_name": self.sender_name,
            "body": self.body,
            "created_at": self.created_at,
            "client_msg_id": self.client_msg_id,
        }


@dataclass(frozen=True, slots=True)
class Thread:
    """What the booking page shows: a page of messages and both watermarks."""

    messages: list[Message]
    last_seq: int
    my_read_seq: int
    other_read_seq: int
    muted: bool
    earlier: int | None  # the seq to page back from, when older messages exist

    @property
    def unread(self) -> int:
        return self.last_seq - self.my_read_seq


async def parties(db: Database, booking_id: int, user_id: int) -> Parties:
    """The booking's parties seen from `user_id`; NotFound for anyone but its two parties."""
    row = await db.fetch_one(
        "SELECT b.id, b.service_name, b.status, b.updated_at, b.client_id, b.provider_id,"
        " c.name AS client_name, p.name AS provider_name"
        " FROM bookings b JOIN users c ON c.id = b.client_id JOIN users p ON p.id = b.provider_id"
        " WHERE b.id = ? AND (b.client_id = ? OR b.provider_id = ?)",
        (booking_id, user_id, user_id),
    )
    if row is None:
        raise NotFound("That booking does not exist.")
    is_client = row["client_id"] == user_id
    return Parties(
        booking_id=row["id"],
        service_name=row["service_name"],
        status=row["status"],
        updated_at=row["updated_at"],
        me=user_id,
        other=row["provider_id"] if is_client else row["client_id"],
        my_name=row["client_name"] if is_client else row["provider_name"],
        other_name=row["provider_name"] if is_client else row["client_name"],
    )


async def others_of(db: Database, booking_ids: Sequence[int], user_id: int) -> dict[int, int]:
    """booking id -> the other party, for the bookings among these that `user_id` is in."""
    if not booking_ids:
        return {}
    marks = placeholders(len(booking_ids))
    rows = await db.fetch_all(
        "SELECT id, client_id, provider_id FROM bookings"
        f" WHERE id IN ({marks}) AND (client_id = ? OR provider_id = ?)",
        [*booking_ids, user_id, user_id],
    )
    return {
        int(r["id"]): int(r["provider_id"] if r["client_id"] == user_id else r["client_id"])
        for r in rows
    }


_MESSAGE = (
    "SELECT m.id, m.booking_id, m.seq, m.sender_id, u.name AS sender_name, m.body,"
    " m.client_msg_id, m.created_at FROM messages m JOIN users u ON u.id = m.sender_id"
)


def _message(row: Row) -> Message:
    return Message(
        id=row["id"],
        booking_id=row["booking_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        body=row["body"],
        client_msg_id=row["client_msg_id"],
        created_at=row["created_at"],
    )


async def thread(
    db: Database, parties: Parties, *, before: int | None = None, size: int = PAGE_SIZE
) -> Thread:
    """The newest `size` messages (before seq `before`, when paging back), oldest first."""
    rows = await db.fetch_all(
        f"{_MESSAGE} WHERE m.booking_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
        (parties.booking_id, before if before is not None else 2**62, size + 1),
    )
    earlier = None
    if len(rows) > size:
        rows = rows[:size]
        earlier = int(rows[-1]["seq"])
    marks = await watermarks(db, parties.booking_id)
    return Thread(
        messages=[_message(row) for row in reversed(rows)],
        last_seq=marks.last_seq,
        my_read_seq=marks.read.get(parties.me, 0),
        other_read_seq=marks.read.get(parties.other, 0),
        muted=marks.muted.get(parties.me, False),
        earlier=earlier,
    )


async def unread_by_booking(db: Database, user_id: int) -> dict[int, int]:
    """booking id -> the person's unread messages there (conversations with some only)."""
    rows = await db.fetch_all(
        "SELECT m.booking_id, c.last_seq - m.read_seq AS unread FROM conversation_members m"
        " JOIN conversations c ON c.booking_id = m.booking_id"
        " WHERE m.user_id = ? AND c.last_seq > m.read_seq",
        (user_id,),
    )
    return {int(r["booking_id"]): int(r["unread"]) for r in rows}


async def unread_messages(db: Database, user_id: int) -> int:
    value = await db.fetch_value("SELECT unread_messages FROM users WHERE id = ?", (user_id,))
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class Watermarks:
    last_seq: int  # 0: no conversation yet
    read: dict[int, int]  # user -> read seq
    muted: dict[int, bool]


async def watermarks(db: Database, booking_id: int) -> Watermarks:
    """Inside the caller's transaction when it has one (`Database.fetch_all`)."""
    rows = await db.fetch_all(
        "SELECT m.user_id, m.read_seq, m.muted, c.last_seq FROM conversation_members m"
        " JOIN conversations c ON c.booking_id = m.booking_id WHERE m.booking_id = ?",
        (booking_id,),
    )
    return Watermarks(
        int(rows[0]["last_seq"]) if rows else 0,
        {int(r["user_id"]): int(r["read_seq"]) for r in rows},
        {int(r["user_id"]): bool(r["muted"]) for r in rows},
    )


# --- inside a transaction (the conversation's lock held) ---------------------------------


async def sender_state(
    tx: Transaction, sender_id: int, client_msg_id: str | None, seconds: int
) -> tuple[int | None, int]:
    """(the id of the sender's message with this client_msg_id, if any; how many messages
    they sent in the last `seconds`, in every conversation), in one round trip."""
    since = to_text(utc_now() - timedelta(seconds=seconds))
    row = await tx.fetch_one(
        "SELECT (SELECT id FROM messages WHERE sender_id = ? AND client_msg_id = ?),"
        " (SELECT count(*) FROM messages WHERE sender_id = ? AND created_at > ?)",
        (sender_id, client_msg_id, sender_id, since),
    )
    assert row is not None
    return (None if row[0] is None else int(row[0])), int(row[1])


async def message(tx: Transaction, message_id: int) -> Message:
    row = await tx.fetch_one(f"{_MESSAGE} WHERE m.id = ?", (message_id,))
    assert row is not None
    return _message(row)


async def open_conversation(tx: Transaction, parties: Parties, now: str) -> None:
    """Make the conversation's rows if this is its first message."""
    await tx.execute(
        "INSERT INTO conversations (booking_id, last_seq, created_at) VALUES (?, 0, ?)"
        " ON CONFLICT DO NOTHING",
        (parties.booking_id, now),
    )
    await tx.execute(
        "INSERT INTO conversation_members (booking_id, user_id) VALUES (?, ?), (?, ?)"
        " ON CONFLICT DO NOTHING",
        (parties.booking_id, parties.me, parties.booking_id, parties.other),
    )


async def insert_message(
    tx: Transaction, parties: Parties, body: str, client_msg_id: str | None, now: str
) -> Message:
    seq = await tx.fetch_value(
        "UPDATE conversations SET last_seq = last_seq + 1 WHERE booking_id = ? RETURNING last_seq",
        (parties.booking_id,),
    )
    message_id = await tx.fetch_value(
        "INSERT INTO messages (booking_id, seq, sender_id, body, client_msg_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (parties.booking_id, seq, parties.me, body, client_msg_id, now),
    )
    return Message(
        id=int(message_id),
        booking_id=parties.booking_id,
        seq=int(seq),
        sender_id=parties.me,
        sender_name=parties.my_name,
        body=body,
        client_msg_id=client_msg_id,
        created_at=now,
    )


async def set_read(tx: Transaction, booking_id: int, user_id: int, read_seq: int) -> None:
    await tx.execute(
        "UPDATE conversation_members SET read_seq = ? WHERE booking_id = ? AND user_id = ?"
        " AND read_seq < ?",
        (read_seq, booking_id, user_id, read_seq),
    )


async def add_unread(tx: Transaction, deltas: dict[int, int]) -> dict[int, int]:
    """Move each person's unread-messages counter; returns the counters after. Users are
    updated in id order: on PostgreSQL every transaction locks user rows in one order."""
    totals: dict[int, int] = {}
    for user_id in sorted(deltas):
        value = await tx.fetch_value(
            "UPDATE users SET unread_messages = unread_messages + ? WHERE id = ?"
            " RETURNING unread_messages",
            (deltas[user_id], user_id),
        )
        totals[user_id] = int(value or 0)
    return totals


async def set_muted(db: Database, booking_id: int, user_id: int, muted: bool, now: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO conversations (booking_id, last_seq, created_at) VALUES (?, 0, ?)"
            " ON CONFLICT DO NOTHING",
            (booking_id, now),
        )
        await tx.execute(
            "INSERT INTO conversation_members (booking_id, user_id, muted) VALUES (?, ?, ?)"
            " ON CONFLICT (booking_id, user_id) DO UPDATE SET muted = excluded.muted",
            (booking_id, user_id, int(muted)),
        )
