"""The notifications side of the realtime layer: the store as its `History`, and the frames
that act on notifications (delivery acks, read and seen marks)."""

from __future__ import annotations

from collections.abc import Sequence

from app.db import Database
from app.notifications import store
from app.notifications.delivery import DeliveryRecorder
from app.notifications.service import NotificationService
from app.realtime.connection import Connection
from app.realtime.history import Position
from app.realtime.messages import DeliveryGroup
from app.realtime.protocol import ClientFrame


class StoreHistory:
    """`app.realtime.history.History` over the notification store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def positions(self, user_ids: Sequence[int]) -> dict[int, Position]:
        return await store.positions(self._db, user_ids)

    async def seq_at(self, user_id: int, notification_id: int) -> int:
        return await store.seq_at(self._db, user_id, notification_id)

    async def id_at(self, user_id: int, seq: int) -> int:
        return await store.id_at(self._db, user_id, seq)

    async def between(
        self, user_id: int, after_seq: int, upto_seq: int, limit: int
    ) -> list[DeliveryGroup]:
        return await store.between_seqs(self._db, user_id, after_seq, upto_seq, limit)

    async def last_seqs(self, user_ids: Sequence[int]) -> dict[int, int]:
        return await store.last_seqs(self._db, user_ids)


class NotificationFrames:
    """Client frames about notifications: `ack`, `mark_read`, `mark_seen`, `mark_all_read`."""

    def __init__(self, notifier: NotificationService, acks: DeliveryRecorder) -> None:
        self._notifier = notifier
        self._acks = acks

    async def __call__(self, conn: Connection, frame: ClientFrame) -> None:
        notifier = self._notifier
        user_id = conn.user_id
        kind = frame.type
        if kind == "ack":
            self._acks.record(user_id, frame.id_field("id"))
        elif kind == "mark_read":
            await notifier.mark_read(user_id, frame.ids(), client_msg_id=frame.client_msg_id)
        elif kind == "mark_seen":
            await notifier.mark_seen(user_id, frame.ids(), client_msg_id=frame.client_msg_id)
        elif kind == "mark_all_read":
            await notifier.mark_all_read(user_id, client_msg_id=frame.client_msg_id)
