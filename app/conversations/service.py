"""The one way to post a message, move a watermark, or say someone is typing.

A message is stored with its conversation seq, the unread counters move, and the message goes
into both parties' streams (docs/conversations.md) in one transaction: every device of both
gets it once, in order, on any process, and a resume replays it. A recipient who is not looking
at the thread also gets a `new_message` notification.

Lock order, so two transactions never wait on each other in a circle (PostgreSQL): the
sender's and the conversation's named locks first, then user rows in id order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.clock import now_text
from app.conversations import store
from app.conversations.store import Message, Parties
from app.conversations.text import MessageRefused, clean_body, preview
from app.db import Database
from app.metrics import Metrics
from app.notifications.service import NotificationService
from app.presence_store import SqlPresenceStore
from app.realtime import protocol
from app.realtime.broker import Broker
from app.realtime.messages import Ephemeral

# A person may send this many messages a minute, over every conversation and process.
MESSAGES_PER_MINUTE = 30
# Typing frames passed on per person and conversation (the client sends one per 3 s).
TYPING_INTERVAL = 2.0
STALE_SECONDS = 30.0


def conversation_key(booking_id: int) -> str:
    """The collapse key of everything about one conversation, and its ephemeral topic."""
    return f"conversation:{booking_id}"


@dataclass(frozen=True, slots=True)
class Sent:
    message: Message
    new: bool  # False: this client_msg_id was applied before; nothing changed


class ConversationService:
    def __init__(
        self,
        db: Database,
        notifier: NotificationService,
        broker: Broker,
        metrics: Metrics,
        presence: SqlPresenceStore,
        *,
        messages_per_minute: int = MESSAGES_PER_MINUTE,
        stale_seconds: float = STALE_SECONDS,
    ) -> None:
        self._db = db
        self._notifier = notifier
        self._broker = broker
        self._metrics = metrics
        self._presence = presence
        self.messages_per_minute = messages_per_minute
        self._stale_seconds = stale_seconds
        # (user, booking) -> when a typing frame was last passed on. Per process: typing is
        # ephemeral, and each socket's frame rate limit bounds it anyway.
        self._typing: dict[tuple[int, int], float] = {}

    async def parties(self, booking_id: int, user_id: int) -> Parties:
        return await store.parties(self._db, booking_id, user_id)

    async def send(
        self, user_id: int, booking_id: int, raw_body: str, client_msg_id: str | None = None
    ) -> Sent:
        body = clean_body(raw_body)
        async with self._db.transaction() as tx:
            await tx.lock(f"messages-by:{user_id}", conversation_key(booking_id))
            parties = await store.parties(self._db, booking_id, user_id)
            earlier, recent = await store.sender_state(tx, user_id, client_msg_id, 60)
            if earlier is not None:
                return Sent(await store.message(tx, earlier), new=False)
            if parties.closed:
                raise MessageRefused(
                    "conversation_closed",
                    "This conversation closed 30 days after the booking ended; it is read-only.",
                    409,
                )
            if recent >= self.messages_per_minute:
                raise MessageRefused(
                    "rate_limited",
                    f"You can send {self.messages_per_minute} messages a minute. "
                    "Wait a moment and send it again.",
                    429,
                )
            now = now_text()
            before = await store.watermarks(self._db, booking_id)
            if len(before.read) < 2:
                await store.open_conversation(tx, parties, now)
            message = await store.insert_message(tx, parties, body, client_msg_id, now)
            await store.set_read(tx, booking_id, user_id, message.seq)
            # Everything the sender had not read is read now: they reply in the thread.
            caught_up = message.seq - 1 - before.read.get(user_id, 0)
            totals = await store.add_unread(tx, {user_id: -caught_up, parties.other: 1})
            recipient_unread = message.seq - before.read.get(parties.other, 0)
            payload = {"type": "message", "booking_id": booking_id, "message": message.to_json()}
            await self._stream(parties, payload, recipient_unread, 0, totals)
            if caught_up:
                await self._notifier.mark_key_read(user_id, conversation_key(booking_id))
            if not await self._looking(parties.other, booking_id):
                await self._notify(parties, message, muted=before.muted.get(parties.other, False))
        self._metrics.messages_sent.inc()
        return Sent(message, new=True)

    async def read(self, user_id: int, booking_id: int, seq: int) -> int:
        """Move the person's watermark up to `seq` (never back, never past the newest);
        returns the watermark after."""
        async with self._db.transaction() as tx:
            await tx.lock(conversation_key(booking_id))
            parties = await store.parties(self._db, booking_id, user_id)
            marks = await store.watermarks(self._db, booking_id)
            mine = marks.read.get(user_id, 0)
            target = min(seq, marks.last_seq)
            if target <= mine:
                return mine
            await store.set_read(tx, booking_id, user_id, target)
            totals = await store.add_unread(tx, {user_id: mine - target, parties.other: 0})
            payload = {
                "type": "message_read",
                "booking_id": booking_id,
                "reader_id": user_id,
                "read_seq": target,
            }
            other_unread = marks.last_seq - marks.read.get(parties.other, 0)
            await self._stream(parties, payload, other_unread, marks.last_seq - target, totals)
            if target == marks.last_seq:
                await self._notifier.mark_key_read(user_id, conversation_key(booking_id))
        return target

    async def set_muted(self, user_id: int, booking_id: int, muted: bool) -> None:
        await store.parties(self._db, booking_id, user_id)
        await store.set_muted(self._db, booking_id, user_id, muted, now_text())

    def typing_allowed(self, user_id: int, booking_id: int) -> bool:
        """At most one typing frame per TYPING_INTERVAL per person and conversation."""
        now = time.monotonic()
        key = (user_id, booking_id)
        if now - self._typing.get(key, -TYPING_INTERVAL) < TYPING_INTERVAL:
            return False
        self._typing[key] = now
        if len(self._typing) > 10_000:  # forget the old ones, now and then
            cutoff = now - TYPING_INTERVAL
            self._typing = {k: t for k, t in self._typing.items() if t >= cutoff}
        return True

    async def typing(self, user_id: int, name: str, booking_id: int) -> None:
        """Tell the sockets looking at the conversation (not the typist's own)."""
        frame = protocol.control("typing", booking_id=booking_id, user_id=user_id, name=name)
        await self._broker.publish(Ephemeral(((conversation_key(booking_id), frame),), user_id))

    # --- inside the send / read transaction -----------------------------------------

    async def _stream(
        self,
        parties: Parties,
        payload: dict[str, object],
        other_unread: int,
        my_unread: int,
        totals: dict[int, int],
    ) -> None:
        """The event into both parties' streams, each with their own counters after it."""
        key = conversation_key(parties.booking_id)
        await self._notifier.publish_in_transaction(
            [
                (
                    [user_id],
                    "message",
                    {**payload, "unread": unread, "unread_messages": totals[user_id]},
                    key,
                )
                for user_id, unread in ((parties.other, other_unread), (parties.me, my_unread))
            ]
        )

    async def _looking(self, user_id: int, booking_id: int) -> bool:
        return await self._presence.on_topic(
            user_id, conversation_key(booking_id), time.time() - self._stale_seconds
        )

    async def _notify(self, parties: Parties, message: Message, *, muted: bool) -> None:
        await self._notifier.send_to_user(
            parties.other,
            "notification",
            {
                "type": "new_message",
                "booking_id": parties.booking_id,
                "service_name": parties.service_name,
                "sender_name": parties.my_name,
                "preview": preview(message.body),
                "muted": muted,
                "message": f"{parties.my_name} sent you a message about {parties.service_name}",
            },
            key=conversation_key(parties.booking_id),
        )
