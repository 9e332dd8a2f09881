"""The broker seam: every process publishes what happened, every process's hub hears it.

Messages are small frozen dataclasses. Subscribers are plain functions, called in publish
order; the hub's subscriber only queues the message for its dispatcher task, so delivery
order is commit order. `InProcessBroker` serves one process; a Redis broker implements the
same interface for several.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.notifications.models import Notification, StoredGroup


@dataclass(frozen=True)
class NotificationsStored:
    """Committed notifications, in id order, as the groups their sends stored."""

    groups: tuple[StoredGroup, ...]

    @property
    def notifications(self) -> list[Notification]:
        return [n for group in self.groups for n in group.notifications()]


@dataclass(frozen=True)
class NotificationsMarked:
    """Some of a user's notifications were read or seen (`ids` None: all of them)."""

    user_id: int
    mark: str  # "read" or "seen"
    ids: tuple[int, ...] | None
    unread: int


@dataclass(frozen=True)
class SessionsEnded:
    """Sessions revoked or expired: their sockets must close with 4401."""

    session_ids: tuple[int, ...]


BrokerMessage = NotificationsStored | NotificationsMarked | SessionsEnded
Subscriber = Callable[[BrokerMessage], None]


class Broker(Protocol):
    async def publish(self, message: BrokerMessage) -> None: ...

    def subscribe(self, subscriber: Subscriber) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


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
