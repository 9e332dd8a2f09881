"""How many replays run at once: one per user, and a few per process.

A replay reads pages from the store and writes hundreds of frames; ten sockets resuming from
zero in a loop would otherwise take the event loop and the reader connections from everyone
else. Waiting replays hold nothing but their place in line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ReplayGate:
    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        # user id -> (its lock, how many replays hold or wait for it); gone when unused.
        self._users: dict[int, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def enter(self, user_id: int) -> AsyncIterator[None]:
        lock, users = self._users.get(user_id, (asyncio.Lock(), 0))
        self._users[user_id] = (lock, users + 1)
        try:
            async with lock, self._slots:
                yield
        finally:
            lock, users = self._users[user_id]
            if users == 1:
                del self._users[user_id]
            else:
                self._users[user_id] = (lock, users - 1)
