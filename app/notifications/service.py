"""The one way to notify someone: persist first, then publish for delivery after commit.

Called inside a booking or payment transaction, the notification rows join that transaction
(see `Database.transaction`) and are published only once it has committed, never if it rolled
back. Called on its own, a send is queued for the batch writer: one task that takes every send
waiting at that moment and stores them all in one transaction, so concurrent publishes share a
commit (a single-row transaction through aiosqlite costs about a millisecond) while each caller
still gets its own rows back, persisted, before anything is sent.

Read and seen marks go through here too, so every device of the user hears of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db import Database, current_transaction
from app.metrics import Metrics
from app.notifications import store
from app.notifications.models import (
    ENVELOPE_TYPES,
    STREAM_ONLY_TYPES,
    Notification,
    StoredGroup,
    dump_data,
    stored_notifications,
)
from app.notifications.store import Marked, NewGroup
from app.realtime.broker import Broker
from app.realtime.messages import Delivery
from app.realtime.messages import Marked as MarkedMessage
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# One batch is one INSERT statement, committed on its own (store._INSERT_CHUNK rows).
MAX_BATCH_ROWS = 5_000


def collapse_key(data: dict[str, Any]) -> str | None:
    """`payment:7` or `booking:42` from the ids in `data`, so updates of one thing group."""
    for name, prefix in (("payment_id", "payment"), ("booking_id", "booking")):
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{prefix}:{value}"
    return None


def _new_group(
    user_ids: Sequence[int], type: str, data: dict[str, Any], key: str | None
) -> NewGroup:
    if type not in ENVELOPE_TYPES and type not in STREAM_ONLY_TYPES:
        raise ValueError(f"unknown notification type {type!r}")
    event = data.get("type")
    event = event if isinstance(event, str) and event else type
    key = key if key is not None else collapse_key(data)
    return NewGroup(user_ids, type, event, key, dump_data(data))


@dataclass
class _Send:
    group: NewGroup
    done: asyncio.Future[StoredGroup]


class NotificationService:
    def __init__(
        self,
        db: Database,
        broker: Broker,
        metrics: Metrics,
        *,
        client_messages_per_user: int = 1000,
    ) -> None:
        self._db = db
        self._client_messages_per_user = client_messages_per_user
        self._broker = broker
        self._metrics = metrics
        self._queue: asyncio.Queue[_Send] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="notification-writer")

    async def close(self) -> None:
        """Finish every send already queued, then stop the writer."""
        if self._writer is None:
            return
        await self._queue.join()
        await cancel_and_wait(self._writer)
        self._writer = None

    # --- the seed's API ---------------------------------------------------------------

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
        """Store one notification per user; returns them in `user_ids` order, with ids."""
        return stored_notifications(await self.publish(user_ids, type, data, key=key))

    async def publish(
        self,
        user_ids: Sequence[int],
        type: str,
        data: dict[str, Any],
        *,
        key: str | None = None,
    ) -> StoredGroup:
        """`send_to_users` without building an object per recipient (the fan-out path)."""
        group = _new_group(user_ids, type, data, key)
        if current_transaction() is not None or self._writer is None:
            [stored] = await self._store([group])
            return stored
        done: asyncio.Future[StoredGroup] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Send(group, done))
        return await done

    async def publish_in_transaction(
        self, sends: Sequence[tuple[Sequence[int], str, dict[str, Any], str | None]]
    ) -> list[StoredGroup]:
        """Several different sends, (user ids, type, data, key) each, stored with one INSERT
        in the caller's open transaction and published once it commits."""
        if current_transaction() is None:
            raise RuntimeError("publish_in_transaction needs an open transaction")
        return await self._store([_new_group(*send) for send in sends])

    async def unknown_users(self, user_ids: Sequence[int]) -> list[int]:
        return await store.unknown_users(self._db, user_ids)

    # --- read marks -------------------------------------------------------------------

    async def mark_read(
        self, user_id: int, ids: Sequence[int], *, client_msg_id: str | None = None
    ) -> Marked | None:
        return await self._mark(user_id, "read", ids, client_msg_id)

    async def mark_all_read(
        self, user_id: int, *, client_msg_id: str | None = None
    ) -> Marked | None:
        return await self._mark(user_id, "read", None, client_msg_id)

    async def mark_seen(
        self, user_id: int, ids: Sequence[int], *, client_msg_id: str | None = None
    ) -> Marked | None:
        return await self._mark(user_id, "seen", ids, client_msg_id)

    async def mark_key_read(self, user_id: int, key: str) -> Marked:
        """Mark the user's unread notifications with this collapse key read; every device
        hears of it once the (caller's, if open) transaction commits."""
        async with self._db.transaction() as tx:
            marked = await store.mark_key_read(tx, user_id, key)
            if marked.ids:
                tx.after_commit(
                    functools.partial(self._marked, user_id, "read", marked.ids, marked)
                )
        return marked

    async def _mark(
        self, user_id: int, mark: str, ids: Sequence[int] | None, client_msg_id: str | None
    ) -> Marked | None:
        """Apply a mark; None when `client_msg_id` was applied before (nothing changes)."""
        async with self._db.transaction() as tx:
            if client_msg_id is not None and not await store.claim_client_message(
                tx, user_id, client_msg_id, self._client_messages_per_user
            ):
                return None
            if mark == "read":
                marked = await store.mark_read(tx, user_id, ids)
            else:
                marked = await store.mark_seen(tx, user_id, ids or ())
            if marked.ids:
                tx.after_commit(functools.partial(self._marked, user_id, mark, ids, marked))
        return marked

    async def _marked(
        self, user_id: int, mark: str, ids: Sequence[int] | None, marked: Marked
    ) -> None:
        counter = (
            self._metrics.notifications_read if mark == "read" else self._metrics.notifications_seen
        )
        for event in marked.events:
            counter.labels(event).inc()
        await self._broker.publish(
            MarkedMessage(user_id, mark, None if ids is None else tuple(marked.ids), marked.unread)
        )

    # --- the batch writer -------------------------------------------------------------

    async def _published(self, stored: list[StoredGroup]) -> None:
        for group in stored:
            self._metrics.notifications_created.labels(group.event).inc(len(group.rows))
        await self._broker.publish(Delivery(tuple(stored)))

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            size = len(first.group.user_ids)
            while size < MAX_BATCH_ROWS and not self._queue.empty():
                send = self._queue.get_nowait()
                batch.append(send)
                size += len(send.group.user_ids)
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _store(self, groups: Sequence[NewGroup]) -> list[StoredGroup]:
        """Insert, then publish once committed: now, or when the open transaction commits."""
        tx = current_transaction()
        stored = await store.insert_groups(self._db, groups)
        if tx is not None:
            tx.after_commit(functools.partial(self._published, stored))
        else:
            await self._published(stored)
        return stored

    async def _write(self, batch: list[_Send]) -> None:
        try:
            stored = await self._store([send.group for send in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].done.done():
                    batch[0].done.set_exception(exc)
                return
            # One bad send must not fail the others: write them one by one.
            for send in batch:
                await self._write([send])
            return
        for send, group in zip(batch, stored, strict=True):
            if not send.done.done():
                send.done.set_result(group)
