"""Delivery receipts: a device's `ack` marks notifications delivered (first time only).

Acks arrive for every notification on every device, so they are coalesced in memory (the
highest id per user) and written once a second in one transaction.
"""

from __future__ import annotations

import asyncio
import logging

from app.clock import now_text
from app.db import Database
from app.metrics import Metrics
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class DeliveryRecorder:
    def __init__(self, db: Database, metrics: Metrics, interval: float = 1.0) -> None:
        self._db = db
        self._metrics = metrics
        self._interval = interval
        self._pending: dict[int, int] = {}
        self._written: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, user_id: int, notification_id: int) -> None:
        if notification_id > self._pending.get(user_id, 0):
            self._pending[user_id] = notification_id

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        # In user order: processes recording acks for the same users at once lock their rows
        # in the same order, so they cannot deadlock (PostgreSQL).
        work = sorted(
            (user_id, upto)
            for user_id, upto in pending.items()
            if upto > self._written.get(user_id, 0)
        )
        if not work:
            return
        now = now_text()
        events: list[str] = []
        written: dict[int, int] = {}
        async with self._db.transaction() as tx:
            for user_id, upto in work:
                rows = await tx.fetch_all(
                    "UPDATE notifications SET delivered_at = ?"
                    " WHERE user_id = ? AND id > ? AND id <= ? AND delivered_at IS NULL"
                    " RETURNING id, event",
                    (now, user_id, self._written.get(user_id, 0), upto),
                )
                events.extend(row[1] for row in rows)
                if rows:
                    written[user_id] = max(row[0] for row in rows)
        # The watermark moves to the newest row actually marked, not to the acked id: an ack
        # naming an id beyond the user's newest must not swallow the acks that follow.
        for user_id, upto in written.items():
            self._written[user_id] = max(upto, self._written.get(user_id, 0))
        for event in events:
            self._metrics.notifications_acknowledged.labels(event).inc()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("recording deliveries failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="delivery-recorder")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
