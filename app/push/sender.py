"""Web Push: notifications nobody acknowledged in time go to the person's devices.

Every `scan_seconds` each process looks for notifications older than the push delay that no
socket of their person has acknowledged (the `ack` frame sets `delivered_at`) and nobody has
read, for each device subscribed in a live session. A claim row per (notification, device) in
the database decides which process sends it: one push per notification per device, however
many processes look.

What is sent is minimal (RFC 8291 encrypted, sent with pywebpush's asyncio client): a title, the
notification's one-line text, the page it leads to and its collapse key. Never message bodies
or card data. Headers: `TTL` (a day), `Urgency` (high for critical events), `Topic` (the
collapse key, so a newer push of the same thing replaces an undelivered older one at the push
service; the service worker uses it as the notification's tag for the same on screen). A
subscription the push service says is gone (404, 410) is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import timedelta
from typing import Any

import aiohttp
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from app.clock import to_text, utc_now
from app.db import Database
from app.metrics import Metrics
from app.notifications.preferences import CRITICAL_EVENTS, muted_channel
from app.notifications.quiet import quiet_hours_of
from app.push import store
from app.push.store import DevicePush
from app.tasks import cancel_and_wait, repeat

log = logging.getLogger(__name__)

TTL_SECONDS = 24 * 3600
TITLE = "Marketplace"
SEND_TIMEOUT = 10.0
GONE = (404, 410)
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def topic_of(key: str | None) -> str | None:
    """A collapse key as an RFC 8030 Topic: at most 32 characters of the URL-safe base64
    alphabet (`booking:42` -> `booking-42`)."""
    if not key:
        return None
    return _TOPIC_UNSAFE.sub("-", key)[:32]


def payload(push: DevicePush) -> dict[str, Any]:
    """What the service worker shows: never the data beyond its one-line text and link."""
    data = json.loads(push.data)
    message = data.get("message")
    body = message if isinstance(message, str) else push.event.replace("_", " ").capitalize()
    return {
        "title": TITLE,
        "body": body[:200],
        "url": link_of(data),
        "tag": push.key or f"notification:{push.notification_id}",
        "id": push.notification_id,
    }


def link_of(data: dict[str, Any]) -> str:
    for name, prefix in (("payment_id", "/payments/"), ("booking_id", "/bookings/")):
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{prefix}{value}"
    return "/notifications"


class PushSender:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        *,
        vapid_pem: bytes,
        subject: str,
        delay_seconds: float,
        scan_seconds: float,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._vapid = Vapid02.from_pem(vapid_pem)
        self._subject = subject
        self.delay_seconds = delay_seconds
        self._scan_seconds = scan_seconds
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT))
        self._task = asyncio.create_task(
            repeat(self._scan_seconds, self.send_due, "sending pushes"), name="push-sender"
        )

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send_due(self) -> int:
        """Push what is due now; returns how many pushes this process sent."""
        now = utc_now()
        older_than = to_text(now - timedelta(seconds=self.delay_seconds))
        newer_than = to_text(now - timedelta(seconds=store.MAX_AGE_SECONDS))
        sent = 0
        after = (0, 0)
        while True:
            # Paged, so pushes waiting out quiet hours never hide the others.
            page = await store.due(self._db, older_than, newer_than, after)
            if not page:
                return sent
            after = (page[-1].notification_id, page[-1].subscription.id)
            muted = await muted_channel(self._db, "push", {(p.user_id, p.event) for p in page})
            quiet = await quiet_hours_of(self._db, [p.user_id for p in page])
            for push in page:
                if (push.user_id, push.event) in muted:
                    # Turned off for this event: settled, never sent.
                    await store.claim(
                        self._db, push.notification_id, push.subscription.id, store.MUTED
                    )
                    continue
                hours = quiet.get(push.user_id)
                if hours and push.event not in CRITICAL_EVENTS and hours.quiet_at(now):
                    continue  # waits for the end of the person's quiet hours
                if await store.claim(self._db, push.notification_id, push.subscription.id):
                    await self._send(push)
                    sent += 1
            if len(page) < store.BATCH:
                return sent

    async def _send(self, push: DevicePush) -> None:
        sub = push.subscription
        headers: dict[str, str | int | float] = {
            "Urgency": "high" if push.event in CRITICAL_EVENTS else "normal"
        }
        topic = topic_of(push.key)
        if topic:
            headers["Topic"] = topic
        try:
            response = await webpush_async(
                {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                json.dumps(payload(push), separators=(",", ":")),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},
                ttl=TTL_SECONDS,
                headers=headers,
                aiohttp_session=self._http,
                timeout=SEND_TIMEOUT,
            )
            status = response.status if isinstance(response, aiohttp.ClientResponse) else 201
        except WebPushException as exc:
            status = exc.response.status if exc.response is not None else 0
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("push to %s failed: %s", sub.endpoint.split("/")[2:3], exc)
            status = 0
        self._metrics.pushes.labels(str(status) if status else "error").inc()
        if await store.record(self._db, push.notification_id, sub.id, status):
            self._metrics.notifications_pushed.labels(push.event).inc()
        if status in GONE:
            await store.forget(self._db, sub.id)
