"""What the realtime layer needs from the store, injected by the side that owns it.

The hub and the client sessions read a user's stored notifications through this interface
only (welcome position, replay, gap fills, catch-up after a broker outage), so the realtime
layer never imports the notification store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.realtime.messages import DeliveryGroup


@dataclass(frozen=True, slots=True)
class Position:
    """Where a user's notifications stand: unread count, newest id and seq (0: none yet), and
    the store's other counters the welcome frame carries (`unread_messages`)."""

    unread: int
    last_id: int
    last_seq: int
    counts: tuple[tuple[str, int], ...] = ()


class History(Protocol):
    async def positions(self, user_ids: Sequence[int]) -> dict[int, Position]:
        """Each user's position (a user without notifications: Position(0, 0, 0); one that
        does not exist is left out). The hub asks for the users of sockets opening at the
        same moment in one call."""
        ...

    async def seq_at(self, user_id: int, notification_id: int) -> int:
        """The seq of the user's newest notification with id <= notification_id (0: none)."""
        ...

    async def id_at(self, user_id: int, seq: int) -> int:
        """The id of the user's notification with this seq (0: none)."""
        ...

    async def between(
        self, user_id: int, after_seq: int, upto_seq: int, limit: int
    ) -> list[DeliveryGroup]:
        """The user's notifications with after_seq < seq <= upto_seq in seq order, at most
        `limit`, one single-row group each, with the user's current unread count."""
        ...

    async def last_seqs(self, user_ids: Sequence[int]) -> dict[int, int]:
        """Each user's newest seq."""
        ...
