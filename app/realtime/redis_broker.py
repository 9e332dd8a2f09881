"""The broker for several processes: Redis pub/sub, one channel per shard of users.

Channels: `{prefix}:shard:{n}` for n in 0..shards-1, and `{prefix}:control`. A message about a
user goes to the shard `user_id % shards` (a `Delivery` is split, one message per shard it
touches); `SessionsEnded` goes by session id the same way. Not one channel per user (a process
would subscribe and unsubscribe on every socket's arrival and departure, and Redis would hold a
channel per person online), not one for all (nothing to spread later). Every process subscribes
to every shard: once a process holds more than a few sockets it hosts users of every shard
anyway, so filtering by shard would save it nothing, and it keeps subscriptions fixed (no
SUBSCRIBE traffic as sockets come and go). What shards buy is placement: on a Redis Cluster the
shard channels can move to sharded pub/sub (SSUBSCRIBE), spread over the cluster's nodes.

Pub/sub ignores the database number, so the prefix carries it (`marketplace:{db}`): two sites
on one Redis with different `/DB` in their URLs do not hear each other.

Delivery guarantees: none beyond best effort, and none are needed. Redis pub/sub drops what a
disconnected subscriber misses; the ordering contract (`messages`) makes a socket fill gaps from
the store, and this broker says when a gap may be invisible (nothing later will arrive to reveal
it) by handing its subscribers `CatchUp()`:

- after every (re)subscription: what was published while this process was not subscribed is
  lost to it, including a disconnection by Redis for an overflowing output buffer;
- on a peer's catch-up notice (the `CatchUp` message on the control channel), which a process
  publishes when its own publishes failed or were dropped and it can reach Redis again.

`publish` hands the message to local subscribers first, synchronously: this process's sockets
get their notifications without a Redis round trip and while Redis is down. Then it queues the
encoded message for a sender task that pipelines everything queued into one round trip, so a
publish never waits for Redis (nor raises for it) and the per-process order is kept on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.metrics import Metrics
from app.realtime import codec
from app.realtime.broker import Subscriber
from app.realtime.messages import (
    BrokerMessage,
    CatchUp,
    Delivery,
    DeliveryGroup,
    Ephemeral,
    Marked,
    Row,
    SessionsEnded,
)

log = logging.getLogger(__name__)

# Errors that mean "Redis is not reachable right now" (never a bug of ours).
_LINK_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class RedisSettings:
    url: str
    shards: int = 16
    reconnect_base_seconds: float = 0.1
    reconnect_cap_seconds: float = 5.0
    # An idle subscription is pinged this often; silent for `dead_after_seconds`, it is dead
    # (a link that vanished without a reset would otherwise look idle forever).
    ping_seconds: float = 5.0
    dead_after_seconds: float = 15.0
    connect_timeout_seconds: float = 2.0
    # A command (a publish batch, a ping) not answered in this long: the link is broken.
    command_timeout_seconds: float = 5.0
    # Encoded messages waiting for the sender; more are dropped (and peers told to catch up).
    outbox_limit: int = 10_000
    batch_size: int = 500
    # How long `close` lets queued messages go out, how long `start` waits for Redis.
    flush_seconds: float = 2.0
    start_seconds: float = 3.0


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def channel_prefix(url: str) -> str:
    return f"marketplace:{parse_url(url).get('db', 0)}"


def shard_messages(message: BrokerMessage, shards: int) -> list[tuple[int, BrokerMessage]]:
    """The message split into one per shard it concerns, as (shard, message) pairs.
    `CatchUp` concerns no shard: it goes to the control channel (shard -1)."""
    if isinstance(message, Delivery):
        per_shard: dict[int, list[DeliveryGroup]] = {}
        for group in message.groups:
            rows_by_shard: dict[int, list[Row]] = {}
            for row in group.rows:
                rows_by_shard.setdefault(row[1] % shards, []).append(row)
            if len(rows_by_shard) == 1:  # the common case: one user, or users of one shard
                ((shard, _rows),) = rows_by_shard.items()
                per_shard.setdefault(shard, []).append(group)
                continue
            for shard, rows in rows_by_shard.items():
                part = DeliveryGroup(
                    group.type,
                    group.event,
                    group.key,
                    group.raw_data,
                    group.created_at,
                    tuple(rows),
                )
                per_shard.setdefault(shard, []).append(part)
        return [(shard, Delivery(tuple(groups))) for shard, groups in per_shard.items()]
    if isinstance(message, Marked):
        return [(message.user_id % shards, message)]
    if isinstance(message, Ephemeral):
        return [(-1, message)]  # about topics, not users: the control channel
    if isinstance(message, SessionsEnded):
        by_shard: dict[int, list[int]] = {}
        for session_id in message.session_ids:
            by_shard.setdefault(session_id % shards, []).append(session_id)
        return [(shard, SessionsEnded(tuple(ids))) for shard, ids in by_shard.items()]
    if isinstance(message, CatchUp):
        return [(-1, message)]
    raise TypeError(f"not a broker message: {type(message).__name__}")


class Backoff:
    """Exponential delays with jitter: base, 2 x base, ... up to `cap`, each drawn from
    [delay / 2, delay] so processes that lost Redis together do not return in step."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._attempt = 0

    def next(self) -> float:
        delay = min(self._cap, self._base * 2.0 ** min(self._attempt, 32))
        self._attempt += 1
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def reset(self) -> None:
        self._attempt = 0


class ThrottledLog:
    """Logs a recurring warning at most once per `interval`, with the count left unlogged."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._next_at = float("-inf")
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next_at:
            self._suppressed += 1
            return
        suppressed, self._suppressed = self._suppressed, 0
        self._next_at = now + self._interval
        log.warning(
            message + " (%d more like it not logged; at most one every %g s)",
            *args,
            suppressed,
            self._interval,
        )


class RedisBroker:
    """The `Broker` protocol over Redis pub/sub (see the module docstring)."""

    def __init__(
        self, settings: RedisSettings, metrics: Metrics, *, origin: str | None = None
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        # Unique per process and per start: a restarted process must not skip the messages of
        # the one before it, nor any process skip another's.
        self.origin = origin or secrets.token_hex(6)
        self._own_prefix = codec.own_prefix(self.origin)
        prefix = channel_prefix(settings.url)
        self._shard_channels = [f"{prefix}:shard:{n}" for n in range(settings.shards)]
        self._control_channel = f"{prefix}:control"
        self.channels = (*self._shard_channels, self._control_channel)
        self._subscribers: list[Subscriber] = []
        self._publisher: Redis | None = None
        self._listener: Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._subscribed = False
        self._publishing = True
        # Catch-up notices owed to peers: wanted > sent means one must go out.
        self._notices_wanted = 0
        self._notices_sent = 0
        self._messages_in = metrics.broker_messages.labels("in")
        self._messages_out = metrics.broker_messages.labels("out")
        self._bad_log = ThrottledLog()
        self._link_log = ThrottledLog()
        self._started = False  # start() returned: sockets may be connected from now on
        self._closed = False  # publish: local only from now on
        self._stopping = False  # the loops: end at the next turn
        metrics.broker_up.set(0)

    # -- the Broker protocol -------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._subscribed and self._publishing

    @property
    def lossless(self) -> bool:
        # Pub/sub delivers at most once: a message published while a subscriber reconnects,
        # or cut off with an overflowing output buffer, is gone (sockets then catch up).
        return False

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def start(self) -> None:
        """Connect and subscribe; waits up to `start_seconds` for Redis, then goes on degraded
        (a site restarted during a Redis outage serves its own sockets and catches up later)."""
        s = self._settings
        # The publisher may retry once: a pooled connection that Redis closed in the meantime
        # is replaced without a failure. The listener never retries on its own: redis-py would
        # reconnect and resubscribe silently, and a gap would go unnoticed.
        # No socket_timeout: with one, redis-py sends each command through asyncio.wait_for,
        # which on Python 3.11 can swallow a cancellation (the task then never stops); every
        # command here runs under an asyncio.timeout of ours instead, every read has its own.
        common: dict[str, Any] = {"socket_connect_timeout": s.connect_timeout_seconds}
        self._publisher = Redis.from_url(s.url, retry=Retry(NoBackoff(), 1), **common)
        self._listener = Redis.from_url(s.url, retry=Retry(NoBackoff(), 0), **common)
        self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")
        self._sender = asyncio.create_task(self._send_forever(), name="redis-broker-sender")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(s.start_seconds):
                await self._first_attempt.wait()
        self._started = True
        if not self._subscribed:
            log.warning(
                "Redis at %s is not reachable yet; delivering locally only", redacted(s.url)
            )

    async def publish(self, message: BrokerMessage) -> None:
        self._deliver_local(message)
        if self._sender is None or self._closed:
            return
        try:
            items = [
                (self._channel(shard), codec.encode(part, self.origin))
                for shard, part in shard_messages(message, self._settings.shards)
            ]
        except (TypeError, ValueError):
            log.exception("cannot encode %s for Redis; delivered locally only", type(message))
            self._metrics.broker_publish_failures.inc()
            return
        if not self._publishing:
            # Down: the catch-up notice already owed covers this one.
            self._metrics.broker_publish_failures.inc(len(items))
            return
        if len(self._outbox) + len(items) > self._settings.outbox_limit:
            self._metrics.broker_publish_failures.inc(len(items))
            self._owe_notice()
            self._link_log.warning("Redis publish queue full; messages dropped")
            return
        self._outbox.extend(items)
        self._drained.clear()
        self._wake.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sender is not None and self._publishing and self._outbox:
            # Graceful shutdown: the last notifications should still reach the other processes.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.flush_seconds):
                    await self._drained.wait()
        self._stopping = True
        await _stop(self._reader)
        await _stop(self._sender)
        self._reader = self._sender = None
        for client in (self._publisher, self._listener):
            if client is not None:
                with contextlib.suppress(*_LINK_ERRORS):
                    await client.aclose()
        self._publisher = self._listener = None
        self._set_state(subscribed=False)
        self._subscribers.clear()

    # -- local delivery ------------------------------------------------------------------

    def _deliver_local(self, message: BrokerMessage) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(message)
            except Exception:
                log.exception("broker subscriber failed on %s", type(message).__name__)

    def _channel(self, shard: int) -> str:
        return self._control_channel if shard < 0 else self._shard_channels[shard]

    def _on_data(self, data: bytes) -> None:
        if data.startswith(self._own_prefix):
            return  # our own publish, delivered locally already
        try:
            envelope = codec.decode(data)
        except codec.CodecError as exc:
            self._metrics.broker_bad_messages.inc()
            self._bad_log.warning("ignored a bad message on a broker channel: %s", exc)
            return
        if envelope.origin == self.origin:
            return
        self._messages_in.inc()
        self._deliver_local(envelope.message)

    def _set_state(self, *, subscribed: bool | None = None, publishing: bool | None = None) -> None:
        if subscribed is not None:
            self._subscribed = subscribed
        if publishing is not None:
            self._publishing = publishing
        self._metrics.broker_up.set(1 if self.up else 0)

    def _owe_notice(self) -> None:
        self._notices_wanted += 1
        self._wake.set()

    # -- the subscription ----------------------------------------------------------------

    async def _read_forever(self) -> None:
        s = self._settings
        backoff = Backoff(s.reconnect_base_seconds, s.reconnect_cap_seconds)
        lost = False
        while not self._stopping:
            assert self._listener is not None
            pubsub = self._listener.pubsub(push_handler_func=_as_it_is)
            since: float | None = None
            try:
                async with asyncio.timeout(s.connect_timeout_seconds * 2):
                    await self._subscribe(pubsub)
                self._set_state(subscribed=True)
                since = time.monotonic()
                if lost:
                    self._metrics.broker_reconnects.inc()
                    log.info("Redis subscription restored; catching sockets up from the store")
                self._first_attempt.set()
                if lost or self._started:
                    # Whatever was published while we were not subscribed never reaches us.
                    self._deliver_local(CatchUp())
                await self._listen(pubsub)
            except _LINK_ERRORS as exc:
                connected_for = 0.0 if since is None else time.monotonic() - since
                self._set_state(subscribed=False)
                self._first_attempt.set()
                self._link_log.warning("Redis subscription lost or refused: %s", _describe(exc))
                # A link that stayed up a while starts over; one that flaps keeps backing off.
                if connected_for >= s.reconnect_cap_seconds:
                    backoff.reset()
                lost = True
            finally:
                with contextlib.suppress(*_LINK_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed in redis 8.2
            await asyncio.sleep(backoff.next())

    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(*self.channels)
        waiting = {channel.encode() for channel in self.channels}
        while waiting:
            reply = await _read(pubsub, self._settings.connect_timeout_seconds)
            if reply is None:
                raise TimeoutError("no subscribe confirmation from Redis")
            if reply[0] == b"subscribe":
                waiting.discard(reply[1])
            elif reply[0] == b"message":
                self._on_data(reply[2])

    async def _listen(self, pubsub: PubSub) -> None:
        s = self._settings
        heard = time.monotonic()
        pinged = heard
        while not self._stopping:
            reply = await _read(pubsub, s.ping_seconds)
            now = time.monotonic()
            if reply is not None:
                heard = now
                if reply[0] == b"message":
                    self._on_data(reply[2])
                elif reply[0] == b"unsubscribe":
                    # Nobody unsubscribes us but us: treat it as a lost link.
                    raise ConnectionError("unsubscribed by the server")
                continue  # b"pong" (our ping's answer) or a confirmation
            if now - heard > s.dead_after_seconds:
                raise TimeoutError(f"no reply from Redis for {now - heard:.0f} s")
            if now - pinged >= s.ping_seconds:
                pinged = now
                async with asyncio.timeout(s.command_timeout_seconds):
                    await pubsub.ping()

    # -- publishing ----------------------------------------------------------------------

    async def _send_forever(self) -> None:
        s = self._settings
        backoff = Backoff(s.reconnect_base_seconds, s.reconnect_cap_seconds)
        while not self._stopping:
            if not self._outbox and self._notices_sent >= self._notices_wanted:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[tuple[str, bytes]] = []
            notice = self._notices_wanted
            if self._notices_sent < notice:
                batch.append((self._control_channel, codec.encode(CatchUp(), self.origin)))
            while self._outbox and len(batch) < s.batch_size:
                batch.append(self._outbox.popleft())
            try:
                assert self._publisher is not None
                pipe = self._publisher.pipeline(transaction=False)
                for channel, data in batch:
                    pipe.publish(channel, data)
                async with asyncio.timeout(s.command_timeout_seconds):
                    await pipe.execute()
            except _LINK_ERRORS as exc:
                notices = 1 if self._notices_sent < notice else 0
                lost = len(batch) - notices + len(self._outbox)
                self._metrics.broker_publish_failures.inc(lost)
                self._outbox.clear()
                # What was dropped is in the store; peers catch up once we reach Redis again.
                self._notices_wanted += 1
                self._set_state(publishing=False)
                self._link_log.warning("Redis publish failed: %s", _describe(exc))
                await asyncio.sleep(backoff.next())
                continue
            self._messages_out.inc(len(batch))
            self._notices_sent = max(self._notices_sent, notice)
            if not self._publishing:
                backoff.reset()
                self._set_state(publishing=True)
                log.info("Redis publishing restored; peers told to catch up")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _read(pubsub: PubSub, within: float) -> list[Any] | None:
    """The next reply on the subscribed connection (`[b"message", channel, data]`, ...), or
    None after `within` seconds of silence. Read from the connection itself, not with
    `PubSub.get_message`, which wraps every message in a health check, a retry, tracing hooks,
    a debug log line formatted whether logged or not, and a dict: measured, those took most of
    a process's CPU per message received."""
    conn = pubsub.connection
    if conn is None:
        raise ConnectionError("the subscription has no connection")
    # push_request: under RESP3 (redis-py's default) messages are push replies, which the
    # parser would otherwise hand to a logging handler and skip.
    reply = await conn.read_response(timeout=within, disconnect_on_error=False, push_request=True)
    if reply is None or isinstance(reply, list):  # hiredis' PushNotification is a list
        return reply
    if isinstance(reply, bytes) and reply.upper() == b"PONG":  # RESP3 answers PING plainly
        return [b"pong", reply]
    raise ConnectionError(f"unexpected reply on a subscribed connection: {reply!r:.100}")


async def _as_it_is(reply: Any) -> Any:
    """The push handler: redis-py's default formats a debug line for every message."""
    return reply


async def _stop(task: asyncio.Task[None] | None) -> None:
    """Cancel a loop task and wait until it has ended, cancelling again should a library
    swallow the cancellation (the loops also stop at their next turn once closed)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if task is not None and not task.cancelled() and task.exception() is not None:
        log.error("broker task %s failed", task.get_name(), exc_info=task.exception())
