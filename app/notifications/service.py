"""The one way to notify someone: persist first, then hand on for delivery after commit.

Called inside a booking or payment transaction, the notification row joins that transaction
(see `Database.transaction`); the delivery listeners hear of it only once the transaction has
committed, and never if it rolled back. Called on its own, it opens and commits a transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app.clock import now_text
from app.db import Database, Transaction
from app.notifications.models import ENVELOPE_TYPES, Notification, dump_data

DeliveryListener = Callable[[list[Notification]], Awaitable[None]]


def collapse_key(data: dict[str, Any]) -> str | None:
    """`payment:7` or `booking:42` from the ids in `data`, so updates of one thing group."""
    for name, prefix in (("payment_id", "payment"), ("booking_id", "booking")):
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{prefix}:{value}"
    return None


class NotificationService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[DeliveryListener] = []

    def add_listener(self, listener: DeliveryListener) -> None:
        """`listener` receives every batch of notifications once it has been committed."""
        self._listeners.append(listener)

    async def send_to_user(
        self, user_id: int, type: str, data: dict[str, Any], *, key: str | None = None
    ) -> Notification:
        [notification] = await self.send_to_users([user_id], type, data, key=key)
        return notification

    async def send_booking_update(self, user_id: int, data: dict[str, Any]) -> Notification:
        return await self.send_to_user(user_id, "booking_update", data)

    async def send_payment_update(self, user_id: int, data: dict[str, Any]) -> Notification:
        return await self.send_to_user(user_id, "payment_update", data)

    async def send_to_users(
        self,
        user_ids: Sequence[int],
        type: str,
        data: dict[str, Any],
        *,
        key: str | None = None,
    ) -> list[Notification]:
        """Store one notification per user in one transaction; returns them in `user_ids` order."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown notification type {type!r}")
        event = data.get("type")
        event = event if isinstance(event, str) and event else type
        key = key if key is not None else collapse_key(data)
        payload = dump_data(data)
        created_at = now_text()
        stored: list[Notification] = []
        async with self._db.transaction() as tx:
            for user_id in user_ids:
                cursor = await tx.execute(
                    "INSERT INTO notifications (user_id, type, event, key, data, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, type, event, key, payload, created_at),
                )
                assert cursor.lastrowid is not None
                stored.append(
                    Notification(cursor.lastrowid, user_id, type, event, key, data, created_at)
                )
            self._deliver_after_commit(tx, stored)
        return stored

    def _deliver_after_commit(self, tx: Transaction, batch: list[Notification]) -> None:
        for listener in self._listeners:
            tx.after_commit(functools.partial(listener, batch))
