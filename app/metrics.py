"""Prometheus metrics, in a registry of the app's own (two apps in one process never mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.frames_sent = Counter("ws_frames_sent", "Frames sent to clients", registry=r)
        self.frames_dropped = Counter(
            "ws_frames_dropped",
            "Frames not sent: queue full (the socket is then closed) or socket closing",
            registry=r,
        )
        self.frames_received = Counter(
            "ws_frames_received", "Frames received from clients", registry=r
        )
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
        self.publish_latency = Histogram(
            "notification_publish_to_send_seconds",
            "From a notification's commit to its frame written to a socket",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.notifications_created = Counter(
            "notifications_created", "Notifications stored", ["event"], registry=r
        )
        self.notifications_sent = Counter(
            "notifications_sent", "Notification frames written to sockets", ["event"], registry=r
        )
        self.notifications_acknowledged = Counter(
            "notifications_acknowledged",
            "Notifications first acknowledged by a device",
            ["event"],
            registry=r,
        )
        self.notifications_seen = Counter(
            "notifications_seen", "Notifications first marked seen", ["event"], registry=r
        )
        self.notifications_read = Counter(
            "notifications_read", "Notifications first marked read", ["event"], registry=r
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
