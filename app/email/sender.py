"""Email fallback: a digest for a person the socket and push could not reach.

Every `scan_seconds` each process looks for people with notifications unread for longer than
the email delay and not yet emailed, who either asked for email always, or have no live socket
(presence, any process) and no push device in a live session. For each, one transaction marks
those notifications emailed and returns them: on SQLite the one writer, on PostgreSQL the row
locks, make exactly one process get them, so a person gets one email per batch however many
processes look. The email is sent after that; if the SMTP server refuses it, the marks are
taken back and a later scan tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from urllib.parse import urlencode

import aiosmtplib

from app.clock import now_text, to_text, utc_now
from app.db import Database, placeholders
from app.email.digest import compose, item_from_row, unsubscribe_token
from app.email.smtp import SmtpServer
from app.metrics import Metrics
from app.notifications.preferences import CRITICAL_EVENTS, muted_events
from app.notifications.quiet import quiet_hours_of
from app.tasks import cancel_and_wait, repeat

log = logging.getLogger(__name__)

MAX_AGE = timedelta(days=7)
PEOPLE_PER_SCAN = 100
PRESENCE_STALE_SECONDS = 30.0


class EmailSender:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        smtp: SmtpServer,
        *,
        sender: str,
        public_url: str,
        unsubscribe_key: bytes,
        delay_seconds: float,
        scan_seconds: float,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._smtp = smtp
        self._sender = sender
        self._public_url = public_url.rstrip("/")
        self._key = unsubscribe_key
        self.delay_seconds = delay_seconds
        self._scan_seconds = scan_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            repeat(self._scan_seconds, self.send_due, "sending digest emails"), name="email-digests"
        )

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def _window(self) -> tuple[str, str]:
        now = utc_now()
        return to_text(now - timedelta(seconds=self.delay_seconds)), to_text(now - MAX_AGE)

    async def _due_people(self, older_than: str, newer_than: str, after_user: int) -> list[int]:
        """People with a digest due (one page, by user id after `after_user`)."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT n.user_id FROM notifications n JOIN users u ON u.id = n.user_id"
            " WHERE n.read_at IS NULL AND n.emailed_at IS NULL AND n.type <> 'message'"
            " AND n.created_at <= ? AND n.created_at > ?"
            " AND (u.email_notifications = 'always' OR (u.email_notifications = 'fallback'"
            "  AND NOT EXISTS (SELECT 1 FROM presence p JOIN presence_nodes pn"
            "   ON pn.node = p.node WHERE p.user_id = u.id AND pn.heartbeat_at >= ?)"
            "  AND NOT EXISTS (SELECT 1 FROM push_subscriptions s JOIN sessions ss"
            "   ON ss.id = s.session_id WHERE s.user_id = u.id AND ss.revoked_at IS NULL"
            "   AND ss.expires_at > ?)))"
            " AND n.user_id > ? ORDER BY n.user_id LIMIT ?",
            (
                older_than,
                newer_than,
                time.time() - PRESENCE_STALE_SECONDS,
                now_text(),
                after_user,
                PEOPLE_PER_SCAN,
            ),
        )
        return [int(row["user_id"]) for row in rows]

    async def send_due(self) -> int:
        """Send the digests due now; returns how many emails this process sent."""
        older_than, newer_than = self._window()
        now = utc_now()
        sent = 0
        after_user = 0
        while True:
            # Paged, so people waiting out quiet hours never hide the others.
            people = await self._due_people(older_than, newer_than, after_user)
            if not people:
                return sent
            after_user = people[-1]
            quiet = await quiet_hours_of(self._db, people)
            for user_id in people:
                hours = quiet.get(user_id)
                held = hours is not None and hours.quiet_at(now)
                if await self._send_digest(user_id, older_than, newer_than, critical_only=held):
                    sent += 1

    async def _send_digest(
        self, user_id: int, older_than: str, newer_than: str, *, critical_only: bool
    ) -> bool:
        """One digest of what is due; in quiet hours (`critical_only`) only critical events go,
        the rest wait. Events the person turned email off for are never sent."""
        events = (
            sorted(CRITICAL_EVENTS)
            if critical_only
            else await muted_events(self._db, "email", user_id)
        )
        marks = placeholders(len(events))
        choice = f"event IN ({marks})" if critical_only else f"event NOT IN ({marks})"
        if not events:
            choice = "1 = 0" if critical_only else "1 = 1"
        async with self._db.transaction() as tx:
            person = await tx.fetch_one("SELECT email, name FROM users WHERE id = ?", (user_id,))
            claimed = await tx.fetch_all(
                "UPDATE notifications SET emailed_at = ?"
                " WHERE user_id = ? AND read_at IS NULL AND emailed_at IS NULL"
                f" AND type <> 'message' AND created_at <= ? AND created_at > ? AND {choice}"
                " RETURNING id, event, data, created_at",
                (now_text(), user_id, older_than, newer_than, *events),
            )
        if person is None or not claimed:
            return False  # another process got them first
        claimed = sorted(claimed, key=lambda r: int(r["id"]))
        token = unsubscribe_token(self._key, user_id)
        message = compose(
            sender=self._sender,
            to=person["email"],
            name=person["name"],
            items=[item_from_row(r) for r in claimed],
            inbox_url=f"{self._public_url}/notifications",
            unsubscribe_url=f"{self._public_url}/email/unsubscribe?"
            + urlencode({"u": user_id, "t": token}),
        )
        try:
            await aiosmtplib.send(
                message,
                hostname=self._smtp.hostname,
                port=self._smtp.port,
                username=self._smtp.username,
                password=self._smtp.password,
                use_tls=self._smtp.use_tls,
                timeout=30,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("digest email to user %s failed: %s", user_id, exc)
            self._metrics.emails.labels("failed").inc()
            ids = [int(r["id"]) for r in claimed]
            marks = placeholders(len(ids))
            await self._db.write_statement(
                f"UPDATE notifications SET emailed_at = NULL WHERE id IN ({marks})", ids
            )
            return False
        self._metrics.emails.labels("sent").inc()
        for row in claimed:
            self._metrics.notifications_emailed.labels(row["event"]).inc()
        return True
