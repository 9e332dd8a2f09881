"""Prometheus metrics, in a registry of the app's own (two apps in one process never mix).

Most are prometheus_client's own Counter, Gauge and Histogram. The few counted for every frame
a socket sends or receives are `LoopCounter`, `LoopCounterFamily` and `LoopHistogram`: plain
numbers, which the registry reads when it is scraped. prometheus_client's metrics take a lock on
every update (they may be shared by threads), which made the metrics about a fifth of the
Python cost of writing a frame; these are only ever updated on the event loop's thread, and the
scrape (`/metrics`) runs there too, so it always sees a consistent state. Their exposition is
the same as a Counter's or a Histogram's.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class LoopCounter:
    """A counter updated on the event loop only, exposed like a prometheus Counter."""

    __slots__ = ("created", "documentation", "name", "value")

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry | None) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0
        self.created = time.time()
        if registry is not None:
            registry.register(self)

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], self.value, created=self.created)
        yield family


class LoopCounterFamily:
    """`LoopCounter`s by the value of one label, exposed like a labelled prometheus Counter."""

    __slots__ = ("_children", "documentation", "label", "name")

    def __init__(
        self, name: str, documentation: str, label: str, registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self._children: dict[str, LoopCounter] = {}
        registry.register(self)

    def labels(self, value: str) -> LoopCounter:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = LoopCounter(self.name, self.documentation, None)
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, child in self._children.items():
            family.add_metric([value], child.value, created=child.created)
        yield family


class LoopHistogram:
    """A histogram updated on the event loop only, exposed like a prometheus Histogram."""

    __slots__ = ("_bounds", "_counts", "_labels", "_sum", "created", "documentation", "name")

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = tuple(float(bound) for bound in buckets)
        # The `le` labels as prometheus_client writes them (0.005, 1.0, +Inf).
        self._labels = tuple(
            floatToGoString(bound)  # type: ignore[no-untyped-call]
            for bound in (*self._bounds, float("inf"))
        )
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self.created = time.time()
        registry.register(self)

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": a value on a bound counts in it.
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterator[Metric]:
        cumulative: list[tuple[str, float]] = []
        total = 0
        for label, count in zip(self._labels, self._counts, strict=True):
            total += count
            cumulative.append((label, total))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, self._sum)
        family.add_sample(f"{self.name}_created", {}, self.created)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("ws_connections", "Open WebSocket connections", registry=r)
        self.users_online = Gauge(
            "ws_users_online", "Users with at least one open WebSocket", registry=r
        )
        self.connections_opened = Counter(
            "ws_connections_opened", "WebSocket connections accepted", registry=r
        )
        self.connections_refused = Counter(
            "ws_connections_refused",
            "WebSocket handshakes refused, by reason",
            ["reason"],
            registry=r,
        )
        self.http_connections = Gauge(
            "http_connections", "Open HTTP connections, WebSockets included", registry=r
        )
        self.http_connections_refused = Counter(
            "http_connections_refused",
            "Connections closed at once (503), by reason: per_address_limit",
            ["reason"],
            registry=r,
        )
        self.frames_sent = LoopCounter("ws_frames_sent", "Frames sent to clients", r)
        self.frames_dropped = Counter(
            "ws_frames_dropped",
            "Frames not sent: queue full (the socket is then closed) or socket closing",
            registry=r,
        )
        self.ephemeral_dropped = Counter(
            "ws_ephemeral_dropped",
            "Ephemeral frames (typing, presence) dropped for a socket with a backlog",
            registry=r,
        )
        self.ephemeral_sent = LoopCounter(
            "ws_ephemeral_sent", "Ephemeral frames (typing, presence) offered to sockets", r
        )
        self.frames_received = LoopCounter("ws_frames_received", "Frames received from clients", r)
        self.bad_frames = Counter(
            "ws_bad_frames", "Client frames refused, by reason", ["reason"], registry=r
        )
        self.replays = Counter("ws_replays", "Resumes served with a replay", registry=r)
        self.replays_truncated = Counter(
            "ws_replays_truncated",
            "Resumes too far behind: only the newest notifications were replayed",
            registry=r,
        )
        self.replayed_notifications = Counter(
            "ws_replayed_notifications", "Notifications sent by replays", registry=r
        )
        self.gaps_filled = Counter(
            "ws_gaps_filled",
            "Gaps in a socket's seq filled from the store (the broker lost or reordered some)",
            registry=r,
        )
        self.catch_ups = Counter(
            "ws_catch_ups",
            "Times every socket was checked against the store (after a broker outage)",
            registry=r,
        )
        self.slow_consumer_closes = Counter(
            "ws_slow_consumer_closes", "Sockets closed with 1013 for not keeping up", registry=r
        )
        self.heartbeat_timeouts = Counter(
            "ws_heartbeat_timeouts", "Sockets closed for missing heartbeats", registry=r
        )
        self.session_closes = Counter(
            "ws_session_closes", "Sockets closed with 4401: session ended", registry=r
        )
        self.publish_latency = LoopHistogram(
            "notification_publish_to_send_seconds",
            "From a notification's commit to its frame written to a socket",
            (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            r,
        )
        self.notifications_created = Counter(
            "notifications_created", "Notifications stored", ["event"], registry=r
        )
        self.notifications_sent = LoopCounterFamily(
            "notifications_sent", "Notification frames written to sockets", "event", r
        )
        self.notifications_acknowledged = Counter(
            "notifications_acknowledged",
            "Notifications first acknowledged by a device",
            ["event"],
            registry=r,
        )
        self.notifications_pushed = Counter(
            "notifications_pushed",
            "Notifications first pushed to a device (Web Push)",
            ["event"],
            registry=r,
        )
        self.notifications_emailed = Counter(
            "notifications_emailed", "Notifications sent in a digest email", ["event"], registry=r
        )
        self.notifications_seen = Counter(
            "notifications_seen", "Notifications first marked seen", ["event"], registry=r
        )
        self.notifications_read = Counter(
            "notifications_read", "Notifications first marked read", ["event"], registry=r
        )
        self.pushes = Counter(
            "web_pushes",
            "Web Push sends by the push service's answer (201, 404, 410, 429, ...; error: none)",
            ["status"],
            registry=r,
        )
        self.emails = Counter(
            "digest_emails", "Digest emails by outcome (sent, failed)", ["status"], registry=r
        )
        self.messages_sent = Counter(
            "conversation_messages", "Conversation messages stored", registry=r
        )
        self.presence_changes = Counter(
            "presence_changes",
            "People shown online or offline to others, by state",
            ["state"],
            registry=r,
        )
        # The broker between processes (Redis; the in-process broker is always up).
        self.broker_up = Gauge(
            "broker_up", "1 while the broker reaches the other processes, else 0", registry=r
        )
        self.broker_up.set(1)
        self.broker_reconnects = Counter(
            "broker_reconnects", "Broker subscriptions restored after a loss", registry=r
        )
        self.broker_messages = Counter(
            "broker_messages",
            "Broker messages by direction: out (sent to Redis), in (from other processes)",
            ["direction"],
            registry=r,
        )
        self.broker_bad_messages = Counter(
            "broker_bad_messages", "Undecodable messages on broker channels, ignored", registry=r
        )
        self.broker_publish_failures = Counter(
            "broker_publish_failures",
            "Messages not sent to other processes (broker down or its queue full); "
            "they catch up from the store",
            registry=r,
        )
