"""The broker seam: every process publishes what happened, every process's hub hears it.

Subscribers are plain functions, called in publish order; the hub's subscriber only queues the
message for its dispatcher task. `InProcessBroker` serves one process (it never reorders, drops
or repeats anything); the Redis broker implements the same interface for several, and the
ordering contract (see `messages`) makes whatever it reorders, repeats or drops harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.realtime.messages import BrokerMessage

Subscriber = Callable[[BrokerMessage], None]


class Broker(Protocol):
    async def publish(self, message: BrokerMessage) -> None:
        """Hand a message to every process's subscribers, this one's included. Never raises
        for a broker outage: what was committed reaches local sockets regardless."""
        ...

    def subscribe(self, subscriber: Subscriber) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def up(self) -> bool:
        """False while the broker cannot reach other processes (health: degraded)."""
        ...


class InProcessBroker:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    async def publish(self, message: BrokerMessage) -> None:
        for subscriber in self._subscribers:
            subscriber(message)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()

    @property
    def up(self) -> bool:
        return True
