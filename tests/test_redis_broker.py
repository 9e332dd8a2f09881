"""`RedisBroker` against a real `redis-server`: two brokers play two processes.

Each waits for what it expects with a timeout: a message, a state, a metric.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from app.metrics import Metrics
from app.realtime import codec
from app.realtime.messages import (
    BrokerMessage,
    CatchUp,
    Delivery,
    DeliveryGroup,
    Marked,
    SessionsEnded,
)
from app.realtime.redis_broker import RedisBroker, RedisSettings
from tests.redis_fixtures import RedisServer, free_port, require_redis_server

WAIT = 10.0
PREFIX = "marketplace:0"


class Inbox:
    """A subscriber that records what it is handed and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[BrokerMessage] = []
        self._changed = asyncio.Event()

    def __call__(self, message: BrokerMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    def data(self) -> list[BrokerMessage]:
        return [m for m in self.messages if not isinstance(m, CatchUp)]

    def catch_ups(self) -> int:
        return sum(isinstance(m, CatchUp) for m in self.messages)

    async def wait_for(self, predicate: Callable[[Inbox], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate(self):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out waiting for {what}; got {self.messages}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


async def eventually(condition: Callable[[], bool], what: str, within: float = WAIT) -> None:
    """Wait for a state no event announces (a flag, a metric), checking every 20 ms."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def fast_settings(url: str, **overrides: Any) -> RedisSettings:
    values: dict[str, Any] = {
        "reconnect_base_seconds": 0.05,
        "reconnect_cap_seconds": 0.5,
        "ping_seconds": 0.5,
        "dead_after_seconds": 3.0,
    }
    values.update(overrides)
    return RedisSettings(url, **values)


class Process:
    """One broker with its metrics and a recording subscriber: what one app process has."""

    def __init__(self, url: str, **overrides: Any) -> None:
        self.metrics = Metrics()
        self.broker = RedisBroker(fast_settings(url, **overrides), self.metrics)
        self.inbox = Inbox()
        self.broker.subscribe(self.inbox)

    async def __aenter__(self) -> Process:
        await self.broker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.close()


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def group(*rows: tuple[int, int, int, int], raw: str = '{"message":"hi"}') -> DeliveryGroup:
    return DeliveryGroup("notification", "notification", None, raw, "2026-01-01T00:00:00Z", rows)


def rows_of(messages: list[BrokerMessage]) -> list[tuple[int, int, int, int]]:
    return [r for m in messages if isinstance(m, Delivery) for g in m.groups for r in g.rows]


async def test_a_publish_reaches_local_subscribers_at_once_and_other_processes_once(
    redis_server: RedisServer,
) -> None:
    async with Process(redis_server.url) as a, Process(redis_server.url) as b:
        assert a.broker.up and b.broker.up
        assert metric(a.metrics, "broker_up") == 1
        delivery = Delivery((group((1, 1, 1, 1), (2, 17, 1, 1), (3, 2, 1, 1)),))
        await a.broker.publish(delivery)
        # Locally: the message itself, before publish returned, with no Redis round trip.
        assert a.inbox.data() == [delivery]
        # Elsewhere: one message per shard it touches (users 1 and 17 share shard 1).
        await b.inbox.wait_for(lambda i: len(rows_of(i.data())) == 3, "the rows on b")
        assert sorted(rows_of(b.inbox.data())) == sorted(rows_of([delivery]))
        assert len(b.inbox.data()) == 2
        assert metric(a.metrics, "broker_messages_total", direction="out") == 2
        assert metric(b.metrics, "broker_messages_total", direction="in") == 2

        # b answers after it heard a: Redis sends a's echo to a before this, on one connection,
        # so once a has b's message, a would also have had its own echo, were it not skipped.
        mark = Marked(17, "read", (2,), 0)
        await b.broker.publish(mark)
        await a.inbox.wait_for(lambda i: mark in i.messages, "b's mark on a")
        assert a.inbox.data() == [delivery, mark]
        assert b.inbox.data()[-1] == mark
        assert len(b.inbox.data()) == 3  # its own, locally, once


async def test_messages_travel_on_per_shard_channels(redis_server: RedisServer, raw: Redis) -> None:
    async with Process(redis_server.url) as a, Process(redis_server.url) as b:
        channels = {c.decode() for c in await raw.pubsub_channels(f"{PREFIX}:*")}
        shards = {f"{PREFIX}:shard:{n}" for n in range(16)}
        assert channels == shards | {f"{PREFIX}:control"}
        counts = dict(await raw.pubsub_numsub(*sorted(channels)))
        assert set(counts.values()) == {2}  # both processes on every channel

        observer = raw.pubsub()
        await observer.psubscribe(f"{PREFIX}:*")
        assert (await observer.get_message(timeout=WAIT))["type"] == "psubscribe"  # type: ignore[index]

        await a.broker.publish(Delivery((group((1, 1, 1, 1), (2, 17, 1, 1), (3, 2, 1, 1)),)))
        await a.broker.publish(Marked(21, "seen", None, 0))
        await a.broker.publish(SessionsEnded((3, 19, 4)))
        seen: list[tuple[str, BrokerMessage]] = []
        while len(seen) < 5:
            message = await observer.get_message(timeout=WAIT)
            assert message is not None, seen
            if message["type"] == "pmessage":
                envelope = codec.decode(message["data"])
                assert envelope.origin == a.broker.origin
                seen.append((message["channel"].decode(), envelope.message))
        assert seen == [
            (f"{PREFIX}:shard:1", Delivery((group((1, 1, 1, 1), (2, 17, 1, 1)),))),
            (f"{PREFIX}:shard:2", Delivery((group((3, 2, 1, 1)),))),
            (f"{PREFIX}:shard:5", Marked(21, "seen", None, 0)),
            (f"{PREFIX}:shard:3", SessionsEnded((3, 19))),
            (f"{PREFIX}:shard:4", SessionsEnded((4,))),
        ]
        await observer.aclose()
        await b.inbox.wait_for(lambda i: len(i.data()) == 5, "all five on b")


async def test_garbage_on_a_channel_is_logged_counted_and_ignored(
    redis_server: RedisServer, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "app.realtime.redis_broker")
    async with Process(redis_server.url) as a, Process(redis_server.url) as b:
        garbage = [b"not json", b'{"v":99,"o":"x","t":"c"}', b'{"v":1,"o":"x","t":"s","s":"1"}']
        for data in garbage:
            await raw.publish(f"{PREFIX}:shard:3", data)
        await raw.publish(f"{PREFIX}:control", b"\xff")
        mark = Marked(3, "read", None, 0)
        await b.broker.publish(mark)
        await a.inbox.wait_for(lambda i: mark in i.messages, "the good message after the bad")
        assert a.inbox.data() == [mark]
        assert metric(a.metrics, "broker_bad_messages_total") == 4
        assert a.broker.up
        # Logged, but at most once per interval however much arrives.
        reports = [r for r in caplog.records if "bad message" in r.getMessage()]
        assert len(reports) == 2  # one each for a and b
        assert "not JSON" in reports[0].getMessage()


async def test_redis_down_local_delivery_goes_on_and_a_reconnect_catches_up(
    redis_server: RedisServer,
) -> None:
    async with Process(redis_server.url) as a, Process(redis_server.url) as b:
        assert a.inbox.catch_ups() == b.inbox.catch_ups() == 0
        redis_server.kill()
        await eventually(lambda: not a.broker.up and not b.broker.up, "both brokers down")
        assert metric(a.metrics, "broker_up") == 0

        mark = Marked(1, "read", None, 0)
        await asyncio.wait_for(a.broker.publish(mark), 1)  # returns, never raises
        assert a.inbox.data() == [mark]
        await eventually(
            lambda: metric(a.metrics, "broker_publish_failures_total") >= 1, "a failure counted"
        )
        await asyncio.wait_for(a.broker.publish(mark), 1)
        assert a.inbox.data() == [mark, mark]
        assert metric(a.metrics, "broker_reconnects_total") == 0

        redis_server.start()  # same port
        await eventually(lambda: a.broker.up and b.broker.up, "both brokers back")
        assert metric(a.metrics, "broker_up") == metric(b.metrics, "broker_up") == 1
        assert metric(a.metrics, "broker_reconnects_total") == 1
        assert metric(b.metrics, "broker_reconnects_total") == 1
        # Each told its sockets to catch up from the store once it was back.
        assert a.inbox.catch_ups() == 1 and b.inbox.catch_ups() >= 1
        assert isinstance(a.inbox.messages[2], CatchUp)  # after the two marks sent while down

        # What a published while down never reached b (b catches up from the store instead).
        assert b.inbox.data() == []
        after = Marked(2, "seen", (5,), 3)
        await a.broker.publish(after)
        await b.inbox.wait_for(lambda i: after in i.messages, "delivery across processes again")


async def test_dropped_publishes_make_peers_catch_up(redis_server: RedisServer) -> None:
    async with Process(redis_server.url, outbox_limit=2) as a, Process(redis_server.url) as b:
        marks = [Marked(n, "read", None, 0) for n in range(5)]
        for mark in marks:  # publish never suspends: the sender gets no turn to drain
            await a.broker.publish(mark)
        assert a.inbox.data() == marks  # locally, all of them
        assert metric(a.metrics, "broker_publish_failures_total") == 3
        # b gets the two that fit, then a's catch-up notice for the three that did not.
        await b.inbox.wait_for(lambda i: i.catch_ups() == 1, "a's catch-up notice on b")
        assert b.inbox.data() == marks[:2]
        assert a.inbox.catch_ups() == 0  # a skips its own notice: it lost nothing itself


async def test_an_overflowing_subscriber_is_disconnected_by_redis_and_catches_up(
    redis_server: RedisServer, raw: Redis
) -> None:
    async with Process(redis_server.url) as a, Process(redis_server.url) as b:
        limits = await raw.config_get("client-output-buffer-limit")
        await raw.config_set("client-output-buffer-limit", "pubsub 1024 0 0")
        try:
            await raw.publish(f"{PREFIX}:shard:0", b"x" * 65536)  # over the limit: cut off
            await eventually(
                lambda: metric(a.metrics, "broker_reconnects_total") == 1, "a reconnected"
            )
        finally:
            await raw.config_set("client-output-buffer-limit", limits["client-output-buffer-limit"])
        await eventually(lambda: a.broker.up, "a up again")
        assert a.inbox.catch_ups() == 1
        assert metric(a.metrics, "broker_bad_messages_total") == 0  # never got it
        mark = Marked(4, "read", None, 0)
        await b.broker.publish(mark)
        await a.inbox.wait_for(lambda i: mark in i.messages, "delivery after the cut")


async def test_a_silent_link_is_noticed_by_ping_and_replaced(
    redis_server: RedisServer, raw: Redis
) -> None:
    async with Process(redis_server.url, ping_seconds=0.2, dead_after_seconds=0.8) as a:
        # CLIENT PAUSE holds every reply: to the broker the link looks alive but says nothing.
        await raw.execute_command("CLIENT", "PAUSE", "2000", "ALL")
        await eventually(lambda: not a.broker.up, "a notices the silence", within=5)
        await eventually(lambda: a.broker.up, "a back after the pause", within=10)
        assert metric(a.metrics, "broker_reconnects_total") == 1
        assert a.inbox.catch_ups() == 1


async def test_a_broker_started_while_redis_is_down_connects_when_it_comes(
    tmp_path: Any,
) -> None:
    require_redis_server()
    server = RedisServer(tmp_path, free_port())
    started = time.monotonic()
    async with Process(server.url, start_seconds=0.5) as a:
        assert time.monotonic() - started < 3  # start gives up waiting, the app starts
        assert not a.broker.up
        mark = Marked(1, "read", None, 0)
        await a.broker.publish(mark)
        assert a.inbox.data() == [mark]
        server.start()
        try:
            await eventually(lambda: a.broker.up, "a connected")
            assert a.inbox.catch_ups() == 1
            assert metric(a.metrics, "broker_reconnects_total") == 1
        finally:
            server.stop()


async def test_close_sends_what_is_queued_before_it_returns(redis_server: RedisServer) -> None:
    async with Process(redis_server.url) as b:
        a = Process(redis_server.url)
        await a.broker.start()
        marks = [Marked(n, "seen", None, 0) for n in range(50)]
        for mark in marks:
            await a.broker.publish(mark)
        await a.broker.close()
        assert not a.broker.up
        await b.inbox.wait_for(lambda i: len(i.data()) == 50, "every queued message")
        assert b.inbox.data() == marks  # in publish order


async def test_a_failing_subscriber_breaks_neither_publish_nor_the_reader(
    redis_server: RedisServer,
) -> None:
    def broken(message: BrokerMessage) -> None:
        raise RuntimeError("a bug in a subscriber")

    a, b = Process(redis_server.url), Process(redis_server.url)
    a.broker.subscribe(broken)
    b.broker.subscribe(broken)
    b.broker.subscribe(late := Inbox())  # after the broken one
    async with a, b:
        mark = Marked(1, "read", None, 0)
        await a.broker.publish(mark)  # does not raise
        await late.wait_for(lambda i: mark in i.messages, "the mark past the broken subscriber")
        await a.broker.publish(after := Marked(2, "read", None, 0))
        await late.wait_for(lambda i: after in i.messages, "the reader still reading")


async def test_close_always_returns_even_when_it_lands_on_a_ping(
    redis_server: RedisServer,
) -> None:
    # A ping every 2 ms: close() often cancels the reader in the middle of one. (redis-py's
    # asyncio.wait_for around a send swallowed such a cancellation on Python 3.11, and close
    # then waited forever.)
    for _ in range(60):
        broker = RedisBroker(fast_settings(redis_server.url, ping_seconds=0.002), Metrics())
        await broker.start()
        await asyncio.sleep(0.01)
        closing = asyncio.ensure_future(broker.close())
        done, _ = await asyncio.wait({closing}, timeout=5)
        assert closing in done, "close() did not return"
        closing.result()
