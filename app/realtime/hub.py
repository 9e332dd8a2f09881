"""The hub: which sockets are open for whom, and fan-out of what the broker reports.

The registry maps user id -> live connections (every device and tab) and session id ->
connections (so ending a session closes exactly its sockets). The broker's subscriber only
queues messages; one dispatcher task delivers them in order, offering each frame to every
socket of its user without ever waiting on one. The hub knows nothing of bookings or payments.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from app.metrics import Metrics
from app.realtime import protocol
from app.realtime.coalesce import Coalescer
from app.realtime.connection import CloseCode, Connection, Outbound
from app.realtime.history import History, Position
from app.realtime.messages import (
    BrokerMessage,
    CatchUp,
    Delivery,
    DeliveryGroup,
    Ephemeral,
    Marked,
    SessionsEnded,
)
from app.realtime.replay_gate import ReplayGate
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Given the session ids of open sockets, returns those whose session has ended.
SessionChecker = Callable[[set[int]], Awaitable[set[int]]]


class PresenceListener(Protocol):
    """Told when this process's sockets of a user, or of a user on a topic, come and go."""

    def user_changed(self, user_id: int) -> None: ...

    def topic_changed(self, user_id: int, topic: str) -> None: ...


@dataclass(frozen=True)
class HubSettings:
    heartbeat_seconds: float = 25.0
    heartbeat_timeout_seconds: float = 10.0
    max_sockets_per_user: int = 10
    queue_size: int = 256
    session_check_seconds: float = 5.0
    shutdown_spread_seconds: float = 10.0
    shutdown_batch_size: int = 200
    replay_concurrency: int = 4

    @property
    def heartbeat_check_seconds(self) -> float:
        """How often silent sockets are looked for: fine enough that one is closed at most
        this long after heartbeat + timeout, coarse enough to cost nothing."""
        return max(0.01, min(1.0, self.heartbeat_timeout_seconds / 4, self.heartbeat_seconds))


class Hub:
    def __init__(self, settings: HubSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.accepting = True
        # Lists, not sets: a user or session has a handful of sockets at most (the per-user
        # cap), and a one-item list is a third of the size of a set, for every open socket.
        self._by_user: dict[int, list[Connection]] = {}
        self._by_session: dict[int, list[Connection]] = {}
        self._by_topic: dict[str, list[Connection]] = {}
        self.presence: PresenceListener | None = None
        self._inbox: asyncio.Queue[tuple[BrokerMessage, float]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.replay_gate = ReplayGate(settings.replay_concurrency)
        self._history: History | None = None
        self._positions: Coalescer[int, Position] | None = None

    @property
    def history(self) -> History:
        if self._history is None:
            raise RuntimeError("the hub is not started")
        return self._history

    async def position(self, user_id: int) -> Position:
        """The user's position in the store now. Sockets opening at the same moment (a
        reconnect storm) have their positions read in one query."""
        if self._positions is None:
            raise RuntimeError("the hub is not started")
        return await self._positions.get(user_id) or Position(0, 0, 0)

    # --- registry ---------------------------------------------------------------------

    def register(self, conn: Connection) -> bool:
        """Add a socket; False when its user already has the maximum open."""
        sockets = self._by_user.get(conn.user_id, ())
        if len(sockets) >= self.settings.max_sockets_per_user:
            return False
        _add(self._by_user, conn.user_id, conn)
        _add(self._by_session, conn.session_id, conn)
        self.metrics.connections.inc()
        self.metrics.connections_opened.inc()
        self.metrics.users_online.set(len(self._by_user))
        if not sockets and self.presence is not None:
            self.presence.user_changed(conn.user_id)
        return True

    def unregister(self, conn: Connection) -> None:
        if not _remove(self._by_user, conn.user_id, conn):
            return
        _remove(self._by_session, conn.session_id, conn)
        self.set_topics(conn, ())
        self.metrics.connections.dec()
        self.metrics.users_online.set(len(self._by_user))
        if conn.user_id not in self._by_user and self.presence is not None:
            self.presence.user_changed(conn.user_id)

    def set_topics(self, conn: Connection, topics: Iterable[str]) -> None:
        """Subscribe the socket to exactly these topics (ephemeral frames: typing in a
        conversation, someone's presence), replacing what it had."""
        new = tuple(dict.fromkeys(topics))
        old = conn.topics
        conn.topics = new
        for topic in old:
            if topic not in new:
                _remove(self._by_topic, topic, conn)
                self._topic_changed(conn.user_id, topic)
        for topic in new:
            if topic not in old:
                _add(self._by_topic, topic, conn)
                self._topic_changed(conn.user_id, topic)

    def _topic_changed(self, user_id: int, topic: str) -> None:
        if self.presence is not None:
            self.presence.topic_changed(user_id, topic)

    def has_user(self, user_id: int) -> bool:
        """True while this process holds a socket of the user."""
        return user_id in self._by_user

    def user_ids(self) -> list[int]:
        return list(self._by_user)

    def topic_pairs(self) -> set[tuple[int, str]]:
        """(user, topic) for every subscription of every socket here."""
        return {(conn.user_id, topic) for topic, conns in self._by_topic.items() for conn in conns}

    def user_on_topic(self, user_id: int, topic: str) -> bool:
        """True while a socket of the user here is subscribed to the topic."""
        return any(conn.user_id == user_id for conn in self._by_topic.get(topic, ()))

    def connections_of(self, user_id: int) -> tuple[Connection, ...]:
        return tuple(self._by_user.get(user_id, ()))

    def all_connections(self) -> list[Connection]:
        return [conn for sockets in self._by_user.values() for conn in sockets]

    @property
    def connection_count(self) -> int:
        return sum(len(sockets) for sockets in self._by_user.values())

    @property
    def users_online(self) -> int:
        return len(self._by_user)

    # --- delivery ---------------------------------------------------------------------

    def on_broker_message(self, message: BrokerMessage) -> None:
        """The broker subscriber: queue, never block, keep order."""
        self._inbox.put_nowait((message, time.perf_counter()))

    async def _dispatch_loop(self) -> None:
        while True:
            message, received_at = await self._inbox.get()
            try:
                if isinstance(message, Delivery):
                    await self._deliver(message, received_at)
                elif isinstance(message, Marked):
                    await self._marked(message)
                elif isinstance(message, Ephemeral):
                    await self._ephemeral(message)
                elif isinstance(message, SessionsEnded):
                    self.close_sessions(message.session_ids)
                elif isinstance(message, CatchUp):
                    await self._catch_up()
            except Exception:
                log.exception("dispatching %r failed", type(message).__name__)
            finally:
                self._inbox.task_done()

    async def _deliver(self, message: Delivery, received_at: float) -> None:
        """Offer each notification to every socket of its user.

        Most sockets take the frame at once (`deliver` hands back a write that does not wait
        when the socket's buffer has room); the others queue it for their writer task. The
        frame's shared text is encoded once per group: this loop is the hot path of a
        fan-out.
        """
        by_user = self._by_user
        for group in message.groups:
            template = protocol.FrameTemplate(group)
            counter = self.metrics.notifications_sent.labels(group.event)
            for notification_id, user_id, seq, unread in group.rows:
                sockets = by_user.get(user_id)
                if not sockets:
                    continue
                item = Outbound(
                    template.render(notification_id, seq, unread),
                    seq,
                    notification_id,
                    counter,
                    received_at,
                )
                for conn in tuple(sockets):
                    write = conn.deliver(item)
                    if write is not None:
                        await write

    async def _marked(self, message: Marked) -> None:
        sockets = self._by_user.get(message.user_id)
        if not sockets:
            return
        ids = None if message.ids is None else list(message.ids)
        # mark is "read" or "seen": notification_read / notification_seen
        text = protocol.control(f"notification_{message.mark}", ids=ids, unread=message.unread)
        item = Outbound(text)
        for conn in tuple(sockets):
            await conn.send(item)

    async def _ephemeral(self, message: Ephemeral) -> None:
        """Typing and presence: to the sockets on each topic, never waiting on one; a socket
        with a backlog drops them (they are stale in seconds)."""
        sent = self.metrics.ephemeral_sent
        for topic, text in message.items:
            sockets = self._by_topic.get(topic)
            if not sockets:
                continue
            item = Outbound(text, droppable=True)
            for conn in tuple(sockets):
                if conn.user_id == message.exclude_user:
                    continue
                sent.inc()
                write = conn.send_ephemeral(item)
                if write is not None:
                    await write

    async def _catch_up(self) -> None:
        """The broker may have lost messages: every socket gets what the store holds past
        the last seq it sent (through its writer, in order with live frames)."""
        users = list(self._by_user)
        if not users:
            return
        self.metrics.catch_ups.inc()
        newest = await self.history.last_seqs(users)
        for user_id, last_seq in newest.items():
            for conn in tuple(self._by_user.get(user_id, ())):
                conn.catch_up(last_seq)

    async def backfill(self, user_id: int, after_seq: int, upto_seq: int) -> list[Outbound]:
        """A socket's gap, read from the store, as frames (see `Connection`)."""
        groups = await self.history.between(user_id, after_seq, upto_seq, upto_seq - after_seq)
        return [self.history_frame(group) for group in groups]

    def history_frame(self, group: DeliveryGroup) -> Outbound:
        """The frame of a single-row group read from the store (replays and gap fills)."""
        [(notification_id, _user_id, seq, unread)] = group.rows
        return Outbound(
            protocol.FrameTemplate(group).render(notification_id, seq, unread),
            seq,
            notification_id,
            self.metrics.notifications_sent.labels(group.event),
        )

    def close_sessions(self, session_ids: Iterable[int]) -> int:
        closed = 0
        for session_id in session_ids:
            for conn in tuple(self._by_session.get(session_id, ())):
                self.metrics.session_closes.inc()
                conn.close_soon(CloseCode.SESSION_ENDED, "session ended")
                closed += 1
        return closed

    async def drain(self) -> None:
        """Wait until everything the broker has handed over is offered to the sockets."""
        await self._inbox.join()

    # --- background loops -------------------------------------------------------------

    def start(
        self, check_sessions: SessionChecker, history: History, catch_up_seconds: float = 0.0
    ) -> None:
        """Start the loops. `catch_up_seconds` > 0: every socket is checked against the store
        that often, for what a broker lost without noticing (the in-process one loses
        nothing)."""
        self._history = history
        self._positions = Coalescer(history.positions)
        self._tasks = [
            asyncio.create_task(self._dispatch_loop(), name="hub-dispatch"),
            asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat"),
            asyncio.create_task(self._session_loop(check_sessions), name="hub-sessions"),
        ]
        if catch_up_seconds > 0:
            self._tasks.append(
                asyncio.create_task(self._catch_up_loop(catch_up_seconds), name="hub-catch-up")
            )

    async def _catch_up_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.on_broker_message(CatchUp())

    async def _heartbeat_loop(self) -> None:
        """The one liveness check: a `ping` frame to every socket each heartbeat interval,
        and a socket that has sent nothing for heartbeat + timeout is closed (1001). The
        deadline is checked every `heartbeat_check_seconds`, not once per interval."""
        interval = self.settings.heartbeat_seconds
        limit = interval + self.settings.heartbeat_timeout_seconds
        ping = Outbound(protocol.PING)
        next_ping = time.monotonic() + interval
        while True:
            await asyncio.sleep(self.settings.heartbeat_check_seconds)
            now = time.monotonic()
            pinging = now >= next_ping
            if pinging:
                next_ping = now + interval
            for conn in self.all_connections():
                if now - conn.last_received > limit:
                    self.metrics.heartbeat_timeouts.inc()
                    conn.close_soon(CloseCode.GOING_AWAY, "heartbeat timeout")
                elif pinging:
                    await conn.send(ping)

    async def _session_loop(self, check_sessions: SessionChecker) -> None:
        while True:
            await asyncio.sleep(self.settings.session_check_seconds)
            if not self._by_session:
                continue
            try:
                ended = await check_sessions(set(self._by_session))
            except Exception:
                log.exception("checking sessions failed")
                continue
            self.close_sessions(ended)

    async def stop_loops(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    async def shutdown(self) -> None:
        """Close every socket with 1001, in batches, each told a later reconnect delay.

        Spreading the reconnects over `shutdown_spread_seconds` keeps a deploy from turning
        into a reconnect storm against the next process.
        """
        self.accepting = False
        await self.drain()
        connections = self.all_connections()
        random.shuffle(connections)
        size = max(1, self.settings.shutdown_batch_size)
        batches = [connections[i : i + size] for i in range(0, len(connections), size)]
        spread_ms = int(self.settings.shutdown_spread_seconds * 1000)
        for index, batch in enumerate(batches):
            delay_ms = spread_ms * index // max(1, len(batches))
            reason = f"reconnect in {delay_ms} ms"
            await asyncio.gather(
                *(conn.close(CloseCode.GOING_AWAY, reason) for conn in batch),
                return_exceptions=True,
            )
        await self.stop_loops()


K = TypeVar("K", int, str)


def _add(index: dict[K, list[Connection]], key: K, conn: Connection) -> None:
    sockets = index.get(key)
    if sockets is None:
        index[key] = [conn]
    else:
        sockets.append(conn)


def _remove(index: dict[K, list[Connection]], key: K, conn: Connection) -> bool:
    """Take `conn` out of `index[key]` (and the key out when it was the last); False when it
    was not there."""
    sockets = index.get(key)
    if sockets is None or conn not in sockets:
        return False
    sockets.remove(conn)
    if not sockets:
        del index[key]
    return True
