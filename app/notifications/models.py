"""The stored notification, as every layer sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app import strictjson
from app.db import Row
from app.realtime.messages import DeliveryGroup

# What other programs may publish (the publish API) and what the inbox shows.
ENVELOPE_TYPES = ("booking_update", "payment_update", "notification")
# Rows in the user's stream that are not notifications: conversation messages and receipts
# (docs/conversations.md). Born read, never in the inbox.
STREAM_ONLY_TYPES = ("message",)


@dataclass(slots=True)
class Notification:
    """A stored notification. Treated as immutable; not frozen only because a frozen
    dataclass costs twice as much to build, and a fan-out builds one per recipient."""

    id: int
    user_id: int
    type: str
    event: str
    key: str | None
    raw_data: str  # `data` as stored JSON text: passed through to sockets without re-encoding
    created_at: str
    seen_at: str | None = None
    read_at: str | None = None
    delivered_at: str | None = None
    pushed_at: str | None = None
    emailed_at: str | None = None
    seq: int = 0
    unread: int = field(default=0, compare=False)  # the user's unread count right after it
    _data: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self.raw_data)
        return self._data

    @property
    def message(self) -> str:
        message = self.data.get("message")
        return message if isinstance(message, str) else self.event.replace("_", " ").capitalize()

    @property
    def link(self) -> str | None:
        """Where the notification leads: its payment, else its booking."""
        payment_id = self.data.get("payment_id")
        if isinstance(payment_id, int) and not isinstance(payment_id, bool):
            return f"/payments/{payment_id}"
        booking_id = self.data.get("booking_id")
        if isinstance(booking_id, int) and not isinstance(booking_id, bool):
            return f"/bookings/{booking_id}"
        return None

    @property
    def reached_by(self) -> str:
        """How the notification reached the person, in words (the inbox shows it)."""
        ways = [
            text
            for done, text in (
                (self.delivered_at, "shown live"),
                (self.pushed_at, "pushed to your devices"),
                (self.emailed_at, "emailed"),
            )
            if done
        ]
        if not ways:
            return "Waiting in your inbox"
        said = ", ".join(ways[:-1]) + (" and " if len(ways) > 1 else "") + ways[-1]
        return said[0].upper() + said[1:]

    @classmethod
    def from_row(cls, row: Row) -> Notification:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            type=row["type"],
            event=row["event"],
            key=row["key"],
            raw_data=row["data"],
            created_at=row["created_at"],
            seen_at=row["seen_at"],
            read_at=row["read_at"],
            delivered_at=row["delivered_at"],
            pushed_at=row["pushed_at"],
            emailed_at=row["emailed_at"],
            seq=row["seq"],
        )


# What one send stored: everything shared once, then (id, user_id, seq, unread) per recipient,
# in id order. A fan-out to 5,000 users is one of these, not 5,000 objects. It is exactly what
# the realtime layer delivers, so it is the realtime layer's type.
StoredGroup = DeliveryGroup


def stored_ids(group: StoredGroup) -> list[int]:
    return [row[0] for row in group.rows]


def stored_notifications(group: StoredGroup) -> list[Notification]:
    return [
        Notification(
            id=notification_id,
            user_id=user_id,
            type=group.type,
            event=group.event,
            key=group.key,
            raw_data=group.raw_data,
            created_at=group.created_at,
            seq=seq,
            unread=unread,
        )
        for notification_id, user_id, seq, unread in group.rows
    ]


def dump_data(data: dict[str, Any]) -> str:
    """JSON for storage; refuses NaN and Infinity, which no JSON parser downstream accepts."""
    return strictjson.dumps(data)
