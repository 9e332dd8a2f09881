"""Concurrent look-ups of one key each, answered together by one query for all their keys.

A reconnect storm opens hundreds of sockets at once, and each handshake reads the store twice
(its session, then its user's position). One query per handshake costs a round trip to a
database thread each, and with it a wake-up of that thread and a hand-over of the GIL: that,
not the SQL, was most of a handshake's CPU. With a `Coalescer`, the look-ups that arrive
while a query runs wait for the next one, which answers them all; a look-up that arrives
alone costs what it did before.

A look-up made alone runs in its caller's task; batches run in a task of their own, outside
any caller's transaction. Use it for reads that need no transaction (they may see only what
is committed).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Given distinct keys, the value of each key found (keys not found are left out).
FetchMany = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class Coalescer(Generic[K, V]):
    def __init__(self, fetch_many: FetchMany[K, V]) -> None:
        self._fetch_many = fetch_many
        self._alone = False  # a look-up with nothing else in flight is running
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        """The value of `key` (None: not found). Raises what its query raised."""
        if not self._alone and self._runner is None:
            # Nothing in flight: query at once, in this task (a task of its own would cost
            # more than the query); look-ups made meanwhile gather for the next batch.
            self._alone = True
            try:
                found = await self._fetch_many([key])
            finally:
                self._alone = False
                self._start_runner()
            return found.get(key)
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self._start_runner()
        return await future

    def _start_runner(self) -> None:
        if self._waiting and not self._alone and self._runner is None:
            # In a context of its own, not a caller's: a batch serves every caller, so it must
            # not run inside one caller's open transaction.
            self._runner = asyncio.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    found = await self._fetch_many(list(batch))
                except Exception as exc:
                    _settle(batch, exc)
                    continue
                for key, futures in batch.items():
                    value = found.get(key)
                    for future in futures:
                        if not future.done():
                            future.set_result(value)
                batch = {}
        finally:
            # Cancelled (the app is stopping): nobody may wait for a batch that never comes.
            _settle(batch, None)
            _settle(self._waiting, None)
            self._waiting = {}
            self._runner = None


def _settle(
    waiting: Mapping[K, list[asyncio.Future[V | None]]], error: BaseException | None
) -> None:
    """Fail (with `error`) or cancel (None) every future still pending."""
    for futures in waiting.values():
        for future in futures:
            if future.done():
                continue
            if error is None:
                future.cancel()
            else:
                future.set_exception(error)
