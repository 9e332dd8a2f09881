"""One live WebSocket: its bounded outbound queue, its writer task, and how it closes.

Only the route's handler task calls `receive()`; everything else talks to the socket through
`offer()` (never blocks: a full queue closes the socket with 1013, the client resumes and loses
nothing) and `close()`. Notification frames carry their id, and the writer drops any id at or
below the last one it sent, which is what makes replay-then-live free of duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from app.metrics import Metrics

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0


class State(enum.Enum):
    STARTING = "starting"  # registered; welcome and replay go first, live frames wait
    LIVE = "live"
    CLOSING = "closing"


class CloseCode(enum.IntEnum):
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013
    SESSION_ENDED = 4401


@dataclass(frozen=True, slots=True)
class Outbound:
    text: str
    notification_id: int | None = None
    event: str | None = None
    committed_at: float | None = None  # time.perf_counter() when its transaction committed


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        user_id: int,
        session_id: int,
        queue_size: int,
        metrics: Metrics,
        on_closed: Callable[[Connection], None],
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.user_id = user_id
        self.session_id = session_id
        self.state = State.STARTING
        self.last_sent_id = 0
        self.last_received = time.monotonic()
        self.close_code: int | None = None
        self._queue: deque[Outbound] = deque()
        self._queue_size = queue_size
        self._wakeup = asyncio.Event()
        self._metrics = metrics
        self._on_closed = on_closed
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Connection user={self.user_id} session={self.session_id} {self.state.value}>"

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSING

    def offer(self, item: Outbound) -> bool:
        """Queue a frame; False when it was dropped (closing, or the queue overflowed)."""
        if self.state is State.CLOSING:
            self._metrics.frames_dropped.inc()
            return False
        if len(self._queue) >= self._queue_size:
            self._metrics.frames_dropped.inc()
            self._metrics.slow_consumer_closes.inc()
            self.close_soon(CloseCode.TRY_AGAIN_LATER, "slow consumer: reconnect and resume")
            return False
        self._queue.append(item)
        self._wakeup.set()
        return True

    async def send_now(self, item: Outbound) -> None:
        """Send directly, before going live (welcome, replay). Keeps the id watermark."""
        await self.ws.send_str(item.text)
        self._metrics.frames_sent.inc()
        if item.notification_id is not None:
            self.last_sent_id = max(self.last_sent_id, item.notification_id)
            if item.event is not None:
                self._metrics.notifications_sent.labels(item.event).inc()

    def go_live(self) -> None:
        """Start the writer: queued live frames follow the replay, duplicates dropped."""
        if self.state is State.STARTING:
            self.state = State.LIVE
            self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self}")

    async def _write_loop(self) -> None:
        metrics = self._metrics
        try:
            while self.state is State.LIVE:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue.popleft()
                if item.notification_id is not None:
                    if item.notification_id <= self.last_sent_id:
                        continue  # already sent by the replay
                    self.last_sent_id = item.notification_id
                await self.ws.send_str(item.text)
                metrics.frames_sent.inc()
                if item.event is not None:
                    metrics.notifications_sent.labels(item.event).inc()
                if item.committed_at is not None:
                    metrics.publish_latency.observe(time.perf_counter() - item.committed_at)
        except (ConnectionError, RuntimeError):
            # The peer went away under us; the handler's receive() sees it and cleans up.
            self.close_soon(CloseCode.GOING_AWAY, "")

    def close_soon(self, code: int, reason: str) -> None:
        """Close from sync code (a fan-out loop); safe to call more than once."""
        if self._closer is None:
            self._closer = asyncio.create_task(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        if self.state is State.CLOSING:
            return
        self.state = State.CLOSING
        self.close_code = code
        self._queue.clear()
        self._on_closed(self)
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        try:
            # A peer that stopped reading would make close() wait on a full buffer forever.
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT
            )
        except TimeoutError:
            # The close frame is stuck behind unread data: cut the TCP connection, or the
            # handler would wait on receive() (and hold the socket) for as long as the peer lives.
            if self._transport is not None:
                self._transport.abort()
        except (ConnectionError, RuntimeError):
            pass

    async def finished(self) -> None:
        """Called by the handler on its way out, whatever happened: stop the writer."""
        if self.state is not State.CLOSING:
            self.state = State.CLOSING
            self._queue.clear()
            self._on_closed(self)
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._closer is not None:
            # Bounded by CLOSE_TIMEOUT: lets the close handshake finish.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
