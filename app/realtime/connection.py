"""One live WebSocket: its bounded outbound queue, its writer task, and how it closes.

Only the route's handler task calls `receive()`; everything else talks to the socket through
`deliver()` and `send()` (never block: a full queue closes the socket with 1013, the client
resumes and loses nothing) and `close()`. Every frame goes out through `_transmit`, which
counts it: there is no other way onto the socket.

Notification frames carry their recipient's `seq`, and the socket keeps the last one it sent.
A frame at or below it is a repeat and is dropped (that is also what makes replay-then-live
free of duplicates); a frame more than one past it means the broker lost or reordered
something, and the writer first fills the gap from the store (`Backfill`), so the client sees
every notification once, in seq order, whatever the broker did.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from app.metrics import LoopCounter, Metrics
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
# A gap wider than this is not filled on the live path: the socket is closed with 1013 and
# the client resumes, through the bounded replay.
MAX_GAP = 1000


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


@dataclass(slots=True)
class Outbound:
    """A frame for one socket. Notification frames carry the recipient's `seq` (control
    frames 0) and the counter of their event; a frame with empty text is a catch-up marker:
    "make sure everything up to `seq` was sent", sending nothing of its own.

    Never changed once made. Not frozen all the same: one is made per recipient of a fan-out,
    and a frozen dataclass's `__init__` (object.__setattr__ per field) costs four times as
    much."""

    text: str
    seq: int = 0
    id: int = 0
    counter: LoopCounter | None = None  # the notifications_sent child for the frame's event
    committed_at: float | None = None  # time.perf_counter() when its transaction committed
    droppable: bool = False  # ephemeral (typing, presence): the first to go under pressure


# (user id, after seq, up to seq) -> the frames of that user's notifications in
# (after, upto], in seq order, read from the store.
Backfill = Callable[[int, int, int], Awaitable[list[Outbound]]]


class Connection:
    # One per open socket, most of them idle: no per-instance dict.
    __slots__ = (
        "_backfill",
        "_closer",
        "_high_water",
        "_metrics",
        "_on_closed",
        "_queue",
        "_queue_size",
        "_sending",
        "_transport",
        "_writer",
        "close_code",
        "last_id",
        "last_received",
        "last_seq",
        "session_id",
        "state",
        "topics",
        "user_id",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        user_id: int,
        session_id: int,
        queue_size: int,
        metrics: Metrics,
        on_closed: Callable[[Connection], None],
        backfill: Backfill,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.user_id = user_id
        self.session_id = session_id
        self.state = State.STARTING
        self.last_seq = 0
        self.last_id = 0
        self.last_received = time.monotonic()
        self.close_code: int | None = None
        # What this socket is subscribed to for ephemeral frames (see `Hub.set_topics`).
        self.topics: tuple[str, ...] = ()
        # Made when a frame first has to wait, dropped when the writer has emptied it: most
        # sockets never queue anything, and an empty deque is 600 bytes.
        self._queue: deque[Outbound] | None = None
        self._queue_size = queue_size
        self._metrics = metrics
        self._on_closed = on_closed
        self._backfill = backfill
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._sending = False
        self._high_water = transport.get_write_buffer_limits()[1] if transport else 0

    def __repr__(self) -> str:
        return f"<Connection user={self.user_id} session={self.session_id} {self.state.value}>"

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSING

    # --- the one way onto the socket --------------------------------------------------

    async def _transmit(self, item: Outbound) -> None:
        """Write one frame and count it. Raises ConnectionError / RuntimeError when the peer
        is gone; callers decide what that means."""
        await self.ws.send_str(item.text)
        metrics = self._metrics
        metrics.frames_sent.inc()
        if item.seq:
            self.last_seq = item.seq
            self.last_id = item.id
            if item.counter is not None:
                item.counter.inc()
            if item.committed_at is not None:
                metrics.publish_latency.observe(time.perf_counter() - item.committed_at)

    # --- offering frames --------------------------------------------------------------

    def deliver(self, item: Outbound) -> Awaitable[None] | None:
        """Offer a live notification frame. Returns an awaitable when it can be written at
        once (the fan-out fast path: the hub awaits it, and it completes without waiting),
        None when it was dropped as a repeat or queued for the writer task."""
        if item.seq <= self.last_seq:
            return None  # sent already: a repeat from the broker, or covered by the replay
        if item.seq == self.last_seq + 1 and self.can_write_now(len(item.text)):
            return self._write_direct(item)
        self.offer(item)
        return None

    def catch_up(self, upto_seq: int) -> None:
        """Make sure every notification up to `upto_seq` reaches this socket (the broker may
        have lost some): a marker in the queue, so it happens in order with live frames."""
        if upto_seq > self.last_seq:
            self.offer(Outbound("", upto_seq))

    def send_ephemeral(self, item: Outbound) -> Awaitable[None] | None:
        """Offer a frame that may be lost (typing, presence): written at once when the socket
        has room, queued behind a short backlog, dropped behind a longer one. Never a reason
        to close the socket."""
        if self.can_write_now(len(item.text)):
            return self._write_direct(item)
        queue = self._queue
        if self.state is State.LIVE and (queue is None or len(queue) < self._queue_size // 8):
            self.offer(item)
        else:
            self._metrics.ephemeral_dropped.inc()
        return None

    def offer(self, item: Outbound) -> bool:
        """Queue a frame; False when it was dropped (closing, or the queue overflowed)."""
        if self.state is State.CLOSING:
            self._metrics.frames_dropped.inc()
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self._queue_size and not self._drop_ephemeral(queue):
            self._metrics.frames_dropped.inc()
            self._metrics.slow_consumer_closes.inc()
            self.close_soon(CloseCode.TRY_AGAIN_LATER, "slow consumer: reconnect and resume")
            return False
        queue.append(item)
        self._start_writer()
        return True

    def _drop_ephemeral(self, queue: deque[Outbound]) -> bool:
        """Make room in a full queue by dropping what may be lost; False when nothing could."""
        kept = [item for item in queue if not item.droppable]
        dropped = len(queue) - len(kept)
        if not dropped:
            return False
        self._metrics.ephemeral_dropped.inc(dropped)
        queue.clear()
        queue.extend(kept)
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

    async def send(self, item: Outbound) -> None:
        """A control frame: written at once when the socket has room, else queued."""
        if self.can_write_now(len(item.text)):
            await self._write_direct(item)
        else:
            self.offer(item)

    async def _write_direct(self, item: Outbound) -> None:
        """Write past the queue; anything offered meanwhile waits for the writer task."""
        self._sending = True
        try:
            await self._transmit(item)
        except (ConnectionError, RuntimeError):
            self.close_soon(CloseCode.GOING_AWAY, "")
        finally:
            self._sending = False
            if self._queue:
                self._start_writer()

    async def send_now(self, item: Outbound) -> None:
        """Send directly, before going live (welcome, replay)."""
        await self._transmit(item)

    def go_live(self) -> None:
        """Live from now: frames queued during the replay follow it, repeats dropped."""
        if self.state is State.STARTING:
            self.state = State.LIVE
            if self._queue:
                self._start_writer()

    def pause(self) -> None:
        """Back to queueing live frames (a late resume replays first). The writer stops
        after the frame it is writing; nothing is lost, the queue waits for `go_live`."""
        if self.state is State.LIVE:
            self.state = State.STARTING

    def start_at(self, last_id: int, last_seq: int) -> None:
        """Treat everything up to this seq as sent: a client that does not resume starts at
        the welcome's position, and older notifications are history, not live frames."""
        if last_seq > self.last_seq:
            self.last_seq = last_seq
            self.last_id = last_id

    def rewind(self, last_id: int, last_seq: int) -> None:
        """Start over from an earlier position (a resume frame): the replay sends from it."""
        self.last_seq = last_seq
        self.last_id = last_id

    async def _write_loop(self) -> None:
        queue = self._queue  # None when the socket closed before this task started
        try:
            while self.state is State.LIVE and queue:
                item = queue.popleft()
                if item.seq:
                    if item.seq <= self.last_seq:
                        continue  # sent already
                    gap_end = item.seq if not item.text else item.seq - 1
                    if gap_end > self.last_seq:
                        if not await self._fill(gap_end):
                            return  # closing: the client resumes
                        if self.state is not State.LIVE:
                            # Paused by a late resume while filling: this frame waits too.
                            queue.appendleft(item)
                            return
                    if not item.text or item.seq <= self.last_seq:
                        continue
                await self._transmit(item)
        except (ConnectionError, RuntimeError):
            # The peer went away under us; the handler's receive() sees it and cleans up.
            self.close_soon(CloseCode.GOING_AWAY, "")
        finally:
            # No await between the last queue check and this: a frame offered from now on
            # starts a new writer (and a new queue, if this one was emptied).
            self._writer = None
            if not queue and self._queue is queue:
                self._queue = None

    async def _fill(self, upto_seq: int) -> bool:
        """Send what the store holds in (last_seq, upto_seq]. False when the gap is too wide
        for the live path: the socket closes, and the client resumes through the bounded
        replay."""
        if upto_seq - self.last_seq > MAX_GAP:
            self._metrics.slow_consumer_closes.inc()
            self.close_soon(CloseCode.TRY_AGAIN_LATER, "too far behind: reconnect and resume")
            return False
        self._metrics.gaps_filled.inc()
        for item in await self._backfill(self.user_id, self.last_seq, upto_seq):
            if item.seq > self.last_seq:
                await self._transmit(item)
        if self.last_seq < upto_seq:
            # Not in the store (deleted since): nothing to send, and nothing to wait for.
            log.info("user %s: seqs %s..%s not found", self.user_id, self.last_seq + 1, upto_seq)
            self.last_seq = upto_seq
        return True

    def close_soon(self, code: int, reason: str) -> None:
        """Close from sync code (a fan-out loop); safe to call more than once."""
        if self._closer is None:
            self._closer = asyncio.create_task(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        if self.state is State.CLOSING:
            return
        self.state = State.CLOSING
        self.close_code = code
        self._queue = None
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
            self._queue = None
            self._on_closed(self)
        await cancel_and_wait(self._writer)
        if self._closer is not None:
            # Bounded by CLOSE_TIMEOUT: lets the close handshake finish.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
