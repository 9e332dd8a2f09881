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
from app.tasks import cancel_and_wait

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
        transport: asyncio.Transport | None = None,
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
        self._metrics = metrics
        self._on_closed = on_closed
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._sending = False
        self._high_water = transport.get_write_buffer_limits()[1] if transport else 0

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
        self._start_writer()
        return True

    def _start_writer(self) -> None:
        # The writer task exists only while frames wait: an idle socket costs no task.
        if self.state is State.LIVE and self._writer is None and not self._sending:
            self._writer = asyncio.create_task(self._write_loop())

    def can_write_now(self, size: int) -> bool:
        """True when a frame of `size` bytes can be written without waiting: live, nothing
        queued ahead of it, and the socket's buffer far enough from its high-water mark
        that the write cannot pause the protocol (so `send_str` completes at once)."""
        transport = self._transport
        return (
            self.state is State.LIVE
            and not self._queue
            and not self._sending
            and self._writer is None
            and transport is not None
            and transport.get_write_buffer_size() + size + 16 < self._high_water
        )

    async def write_now(self, text: str, notification_id: int) -> bool:
        """The fan-out fast path, after `can_write_now`: write without the writer task.
        False when the id was already sent (by the replay)."""
        if notification_id <= self.last_sent_id:
            return False
        self.last_sent_id = notification_id
        return await self._write_direct(text)

    async def send(self, item: Outbound) -> None:
        """Write a frame at once when the socket has room, else queue it."""
        if not self.can_write_now(len(item.text)):
            self.offer(item)
        elif await self._write_direct(item.text):
            self._metrics.frames_sent.inc()

    async def _write_direct(self, text: str) -> bool:
        """Write past the queue; anything offered meanwhile waits for the writer task."""
        self._sending = True
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.close_soon(CloseCode.GOING_AWAY, "")
            return False
        finally:
            self._sending = False
            if self._queue:
                self._start_writer()
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
        """Live from now: frames queued during the replay follow it, duplicates dropped."""
        if self.state is State.STARTING:
            self.state = State.LIVE
            if self._queue:
                self._start_writer()

    def pause(self) -> None:
        """Back to queueing live frames (a late resume replays first). The writer stops
        after the frame it is writing; nothing is lost, the queue waits for `go_live`."""
        if self.state is State.LIVE:
            self.state = State.STARTING

    def skip_through(self, notification_id: int) -> None:
        """Treat every id up to this one as sent: a client that does not resume starts at
        the welcome's last_id, and older notifications are history, not live frames."""
        self.last_sent_id = max(self.last_sent_id, notification_id)

    async def _write_loop(self) -> None:
        metrics = self._metrics
        try:
            while self.state is State.LIVE and self._queue:
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
        finally:
            # No await between the last queue check and this: a frame offered from now on
            # starts a new writer.
            self._writer = None

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
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            # Let the writer finish its frame (it stops after it). Cancelling it inside
            # aiohttp's drain would leave a cancelled drain waiter behind, and ws.close()
            # below would fail on it at once, leaving the socket open.
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
            if not writer.done():
                self._abort()  # the peer has stopped reading
                return
        try:
            # A peer that stopped reading would make close() wait on a full buffer forever.
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT
            )
        except TimeoutError:
            self._abort()
        except (ConnectionError, RuntimeError):
            pass

    def _abort(self) -> None:
        """Cut the TCP connection of a peer that takes nothing more, not even the close frame:
        otherwise the handler would wait in receive(), holding the socket, as long as the peer
        lives. The handler's receive() and the writer then end."""
        if self._transport is not None:
            self._transport.abort()

    async def finished(self) -> None:
        """Called by the handler on its way out, whatever happened: stop the writer."""
        if self.state is not State.CLOSING:
            self.state = State.CLOSING
            self._queue.clear()
            self._on_closed(self)
        await cancel_and_wait(self._writer)
        if self._closer is not None:
            # Bounded by CLOSE_TIMEOUT: lets the close handshake finish.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
