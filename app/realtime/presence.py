"""Presence across processes: who has a socket open anywhere, and who is looking at what.

Each process (a node) writes to the store which users it holds sockets of, and which topics
their sockets are subscribed to (`conversation:42` while a visible page shows that thread), so
any process can answer "is this person online?" and "are they looking at this thread?".

Changes are written in batches by one task, never on the handshake path. A user whose last
socket here closes stays online for `grace_seconds` first: a flapping link (close, reconnect a
second later) changes nothing anyone can see. Whenever a user's state may have changed, the
new state goes to every socket subscribed to `presence:<user id>`, on every process, as an
ephemeral frame.

A node refreshes its heartbeat every `heartbeat_seconds`; one silent for `stale_seconds` has
died, and the first node to notice removes its rows and tells the others. A node that stops
cleanly forgets its topics at once and lets its users go offline after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.metrics import Metrics
from app.realtime import protocol
from app.realtime.broker import Broker
from app.realtime.hub import Hub
from app.realtime.messages import Ephemeral
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Changes noticed within this long are written together.
BATCH_SECONDS = 0.05
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PresenceState:
    online: bool
    last_seen: str | None  # when the person was last online ('YYYY-MM-DDTHH:MM:SSZ'), if ever


@dataclass(slots=True)
class PresenceChanges:
    """One batch of one node's changes."""

    node: str
    now: float  # Unix time
    stale_before: float  # nodes with an older heartbeat are dead
    users_on: list[int] = field(default_factory=list)
    users_off: list[int] = field(default_factory=list)
    topics_on: list[tuple[int, str]] = field(default_factory=list)
    topics_off: list[tuple[int, str]] = field(default_factory=list)


class PresenceStore(Protocol):
    async def beat(self, node: str, now: float) -> bool:
        """Record that the node is alive now; False when its row was gone (swept as dead:
        everything it had written went with it)."""
        ...

    async def apply(self, changes: PresenceChanges) -> dict[int, PresenceState]:
        """Write one batch; returns the state now of every user turned on or off."""
        ...

    async def sweep(self, stale_before: float) -> dict[int, PresenceState]:
        """Remove dead nodes (each by one caller only) and their rows; returns the state now
        of the users they held."""
        ...

    async def leave(self, node: str, expires_at: float) -> None:
        """A clean stop: the node's topics go now, its users once its heartbeat is stale."""
        ...

    async def states(
        self, user_ids: Sequence[int], stale_before: float
    ) -> dict[int, PresenceState]:
        """Each user's state now."""
        ...


def presence_topic(user_id: int) -> str:
    """The topic whose sockets hear about this user's presence."""
    return f"presence:{user_id}"


def presence_frame(user_id: int, state: PresenceState) -> str:
    return protocol.control(
        "presence", user_id=user_id, online=state.online, last_seen=state.last_seen
    )


class PresenceTracker:
    def __init__(
        self,
        hub: Hub,
        store: PresenceStore,
        broker: Broker,
        metrics: Metrics,
        *,
        grace_seconds: float = 5.0,
        heartbeat_seconds: float = 10.0,
        node: str | None = None,
    ) -> None:
        self.hub = hub
        self.store = store
        self.node = node or uuid.uuid4().hex
        self._broker = broker
        self._metrics = metrics
        self.grace_seconds = grace_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = heartbeat_seconds * 3
        # What the store holds for this node, and what may differ from it.
        self._stored_users: set[int] = set()
        self._stored_topics: set[tuple[int, str]] = set()
        self._dirty_users: set[int] = set()
        self._dirty_topics: set[tuple[int, str]] = set()
        self._offline_since: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # --- the hub's listener (sync, on the handshake and close paths: only bookkeeping) ----

    def user_changed(self, user_id: int) -> None:
        if self.hub.has_user(user_id):
            self._offline_since.pop(user_id, None)
        else:
            self._offline_since[user_id] = time.monotonic()
        self._dirty_users.add(user_id)
        self._wake.set()

    def topic_changed(self, user_id: int, topic: str) -> None:
        self._dirty_topics.add((user_id, topic))
        self._wake.set()

    # --- reading --------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Users whose last socket here closed, still shown online for the grace period."""
        return len(self._offline_since)

    def stale_before(self) -> float:
        return time.time() - self.stale_seconds

    async def states(self, user_ids: Sequence[int]) -> dict[int, PresenceState]:
        return await self.store.states(user_ids, self.stale_before())

    # --- writing --------------------------------------------------------------------

    async def flush(self) -> None:
        """Write what changed (users past their grace period only) and tell the subscribers."""
        async with self._lock:
            changes = self._collect()
            if not (
                changes.users_on or changes.users_off or changes.topics_on or changes.topics_off
            ):
                return
            try:
                states = await self.store.apply(changes)
            except BaseException:
                # Try again with the next batch.
                self._dirty_users.update(changes.users_on, changes.users_off)
                self._dirty_topics.update(changes.topics_on, changes.topics_off)
                raise
            self._stored_users.update(changes.users_on)
            self._stored_users.difference_update(changes.users_off)
            self._stored_topics.update(changes.topics_on)
            self._stored_topics.difference_update(changes.topics_off)
            for user_id in changes.users_off:
                self._offline_since.pop(user_id, None)
        await self._announce(states)

    def _collect(self) -> PresenceChanges:
        now = time.time()
        changes = PresenceChanges(self.node, now, now - self.stale_seconds)
        due = time.monotonic() - self.grace_seconds
        waiting: set[int] = set()
        for user_id in self._dirty_users:
            here = self.hub.has_user(user_id)
            stored = user_id in self._stored_users
            if here and not stored:
                changes.users_on.append(user_id)
            elif not here and stored:
                if self._offline_since.get(user_id, 0.0) <= due:
                    changes.users_off.append(user_id)
                else:
                    waiting.add(user_id)
            elif not here:
                self._offline_since.pop(user_id, None)
        self._dirty_users = waiting
        for user_id, topic in self._dirty_topics:
            here = self.hub.user_on_topic(user_id, topic)
            stored = (user_id, topic) in self._stored_topics
            if here and not stored:
                changes.topics_on.append((user_id, topic))
            elif stored and not here:
                changes.topics_off.append((user_id, topic))
        self._dirty_topics = set()
        return changes

    async def _announce(self, states: dict[int, PresenceState]) -> None:
        if not states:
            return
        for state in states.values():
            self._metrics.presence_changes.labels("online" if state.online else "offline").inc()
        await self._broker.publish(
            Ephemeral(
                tuple(
                    (presence_topic(user_id), presence_frame(user_id, state))
                    for user_id, state in states.items()
                )
            )
        )

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.beat(self.node, time.time())
        self.hub.presence = self
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="presence-flush"),
            asyncio.create_task(self._heartbeat_loop(), name="presence-heartbeat"),
        ]

    async def stop(self) -> None:
        self.hub.presence = None
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.store.leave(self.node, time.time() - self.stale_seconds + self.grace_seconds)

    def _next_due(self) -> float | None:
        """Seconds until the earliest waiting user's grace period ends (None: nobody)."""
        if not self._offline_since:
            return None
        earliest = min(self._offline_since.values())
        return max(0.0, earliest + self.grace_seconds - time.monotonic())

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_due()):
                    await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(BATCH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log.exception("writing presence failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def beat(self) -> None:
        """Prove this node alive, and clear away the nodes that died."""
        if not await self.store.beat(self.node, time.time()):
            self._rewrite_all()
        await self._announce(await self.store.sweep(self.stale_before()))

    def _rewrite_all(self) -> None:
        """Another node took this one for dead (it stalled past `stale_seconds`) and removed
        its rows: write everything it holds again."""
        log.warning("presence: this process was taken for dead; writing its presence again")
        self._stored_users.clear()
        self._stored_topics.clear()
        self._dirty_users.update(self.hub.user_ids())
        self._dirty_topics.update(self.hub.topic_pairs())
        self._wake.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.beat()
            except Exception:
                log.exception("presence heartbeat failed")
