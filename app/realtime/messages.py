"""What the broker carries between processes: the realtime layer's own message types.

Nothing here knows what a booking or a payment is. A `Delivery` is what one commit stored:
groups of frames that share everything but their recipient's id, seq and unread count. The
notifications side builds these from its rows; the hub turns them into frame text with
`protocol` and offers them to sockets.

Ordering contract (DESIGN.md, "Delivery across processes"): every row carries the recipient's
`seq`, which grows by exactly one per stored notification of that user, in commit order. A
broker may reorder, repeat or drop messages; sockets drop repeats and fill gaps from the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# (notification id, recipient user id, recipient's seq, recipient's unread count after it)
Row = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class DeliveryGroup:
    """One send: the same frame for each recipient row, in seq order per user."""

    type: str
    event: str  # metrics label
    key: str | None
    raw_data: str  # the `data` JSON text, passed through to every frame unchanged
    created_at: str
    rows: tuple[Row, ...]

    def only(self, user_ids: frozenset[int] | set[int]) -> DeliveryGroup | None:
        """The same group restricted to these recipients (None when none of them)."""
        rows = tuple(row for row in self.rows if row[1] in user_ids)
        if not rows:
            return None
        return DeliveryGroup(self.type, self.event, self.key, self.raw_data, self.created_at, rows)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Committed notifications, in commit order."""

    groups: tuple[DeliveryGroup, ...]

    def user_ids(self) -> Iterator[int]:
        for group in self.groups:
            for row in group.rows:
                yield row[1]


@dataclass(frozen=True, slots=True)
class Marked:
    """Some of a user's notifications were read or seen (`ids` None: all of them)."""

    user_id: int
    mark: str  # "read" or "seen"
    ids: tuple[int, ...] | None
    unread: int


@dataclass(frozen=True, slots=True)
class SessionsEnded:
    """Sessions revoked or expired: their sockets must close with 4401."""

    session_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Ephemeral:
    """Frames that are never stored: each (topic, frame text) goes to the sockets subscribed
    to that topic (typing in a conversation, a user's presence), except those of
    `exclude_user` (0: none). Lost if the broker loses it, dropped first under back-pressure,
    never replayed: only for what is stale a few seconds later anyway."""

    items: tuple[tuple[str, str], ...]
    exclude_user: int = 0


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Local only, never encoded: the broker may have missed messages (it reconnected).
    Every socket checks the store for notifications past the last seq it sent."""


BrokerMessage = Delivery | Marked | SessionsEnded | Ephemeral | CatchUp
