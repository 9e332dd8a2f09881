"""Guards against clients that hold connections open: a cap per address, a quiet accept() error.

A client that opens thousands of connections (and sends its headers a byte at a time, or not at
all) spends the server's file descriptors, not its own CPU. Three guards stand in the way:

- the header timeout, which is aiohttp's own wait-for-request timer (`keepalive_timeout`, set
  through the app's `handler_args` in `create_app`): since aiohttp 3.14.4 it runs from the moment
  a connection is opened, and again from the end of each response, and closes the connection if
  no complete request line and headers have arrived by then; bytes that trickle in do not
  extend it, and a request whose headers arrived (an upload, a WebSocket) is no longer waiting;
- `ConnectionLimiter` and `AdmissionProtocol`: open connections per client address, counted
  before aiohttp sees the connection, so one address cannot take every descriptor (see
  `app/serving.py` for the listening site that puts them in front of aiohttp);
- `AcceptErrorLog`: asyncio reports every failed accept() (EMFILE, ENFILE) through the loop's
  exception handler with a traceback, and retries up to the listen backlog (1024) times per
  round, a round a second: under a flood that alone is tens of thousands of log lines a minute,
  so it is logged at most once per interval, with a count of the rest.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from app.metrics import Metrics

log = logging.getLogger(__name__)

# The answer to a connection over the cap: short, and it tells the client not to reuse it.
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Connection: close\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 32\r\n"
    b"Retry-After: 5\r\n"
    b"\r\n"
    b"Too many connections from you.\r\n"
)
# The out-of-descriptors line is logged at most this often.
ACCEPT_ERROR_LOG_INTERVAL = 10.0
# errno values asyncio passes to the exception handler when accept() runs out of resources.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class ConnectionLimiter:
    """Open connections per client address, in this process; 0 means no cap."""

    def __init__(self, max_per_address: int, metrics: Metrics) -> None:
        self.max_per_address = max_per_address
        self._metrics = metrics
        self._open: dict[str, int] = {}

    def open_from(self, address: str) -> int:
        return self._open.get(address, 0)

    def admit(self, address: str | None) -> bool:
        """Count a new connection, or refuse it (and count the refusal) when over the cap."""
        if address is None:  # not an IP connection (a Unix socket): nothing to key on
            self._metrics.http_connections.inc()
            return True
        current = self._open.get(address, 0)
        if self.max_per_address and current >= self.max_per_address:
            self._metrics.http_connections_refused.labels("per_address_limit").inc()
            return False
        self._open[address] = current + 1
        self._metrics.http_connections.inc()
        return True

    def release(self, address: str | None) -> None:
        self._metrics.http_connections.dec()
        if address is None:
            return
        remaining = self._open.get(address, 0) - 1
        if remaining > 0:
            self._open[address] = remaining
        else:
            # Drop the entry: a scan from many addresses must not leave a dict behind it.
            self._open.pop(address, None)


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


class AdmissionProtocol(asyncio.Protocol):
    """Stands in front of the real protocol (aiohttp's RequestHandler) for one connection.

    The real protocol is only made once the connection is admitted, so a refused connection
    costs one short write and a close; an admitted one is forwarded every event unchanged and
    released from the count when it is lost.
    """

    __slots__ = ("_address", "_inner", "_limiter", "_make_inner")

    def __init__(
        self, limiter: ConnectionLimiter, make_inner: Callable[[], asyncio.Protocol]
    ) -> None:
        self._limiter = limiter
        self._make_inner = make_inner
        self._inner: asyncio.Protocol | None = None
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = peer_address(transport)
        if not self._limiter.admit(address):
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(REFUSAL)
            transport.close()  # sends what was written, then closes
            return
        self._address = address
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        inner, self._inner = self._inner, None
        if inner is None:
            return
        self._limiter.release(self._address)
        inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class AcceptErrorLog:
    """A loop exception handler that logs accept() running out of descriptors at most once per
    `interval` seconds, with the number left unlogged since; anything else goes to `fallback`."""

    def __init__(
        self,
        fallback: ExceptionHandler | None,
        interval: float = ACCEPT_ERROR_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fallback = fallback
        self._interval = interval
        self._clock = clock
        self._next_at = float("-inf")
        self._suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message", ""))
        if not (
            message.startswith("socket.accept()")
            and isinstance(exc, OSError)
            and exc.errno in _OUT_OF_RESOURCES
        ):
            self._pass_on(loop, context)
            return
        now = self._clock()
        if now < self._next_at:
            self._suppressed += 1
            return
        suppressed, self._suppressed = self._suppressed, 0
        self._next_at = now + self._interval
        # No traceback: it is always the same one, and it is what made the log grow.
        log.error(
            "%s: %s (%d more since the previous report not logged; at most one every %g s)",
            message,
            exc.strerror or exc,
            suppressed,
            self._interval,
        )

    def _pass_on(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self._fallback is not None:
            self._fallback(loop, context)
        else:
            loop.default_exception_handler(context)


async def accept_errors_ctx(app: web.Application) -> AsyncIterator[None]:
    """Installs `AcceptErrorLog` on the running loop for the app's lifetime."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(AcceptErrorLog(previous))
    yield
    loop.set_exception_handler(previous)
