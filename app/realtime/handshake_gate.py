"""At most so many WebSocket handshakes in progress at once, per process.

A reconnect storm (a process dies and its thousands of clients come to this one at once) is
thousands of upgrades, each a session lookup, a position query and a welcome. Run all at
once, they fill the event loop's ready queue, and every other request (a page, `/healthz`)
waits behind them at each of its own steps. Behind this gate the crowd waits on a semaphore,
costing nothing, while a bounded number proceed; a handshake is through the gate once its
welcome is sent (a replay is bounded by the hub's own gate). One that waits too long is told to
come back later (503) rather than pile up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from app.metrics import Metrics

# Called by the handler once its handshake is done (idempotent); the middleware calls it too,
# when the handler ends first.
Release = Callable[[], None]
RELEASE: web.RequestKey[Release] = web.RequestKey("handshake_release")


class HandshakeGate:
    def __init__(self, concurrency: int, wait_seconds: float, metrics: Metrics) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._wait_seconds = wait_seconds
        self._metrics = metrics

    async def enter(self) -> Release | None:
        """A slot and the function that gives it back; None when none came free in time."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait_seconds)
        except TimeoutError:
            return None
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        return release

    def middleware(self, path: str) -> Middleware:
        """Gates requests to `path` from before the session lookup to their welcome."""

        @web.middleware
        async def handshake_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path != path:
                return await handler(request)
            release = await self.enter()
            if release is None:
                self._metrics.connections_refused.labels("busy").inc()
                return web.json_response(
                    {"error": "too many connections at once; retry shortly"},
                    status=503,
                    headers={"Retry-After": "1"},
                )
            request[RELEASE] = release
            try:
                return await handler(request)
            finally:
                release()

        return handshake_gate
