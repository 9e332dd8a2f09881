"""One socket's conversation with its client: welcome, replay, then the client-frame loop.

Order on connect: the socket is registered (live frames start queueing), `welcome` is sent,
what the client missed is replayed, then the socket goes live (the writer drains the queue,
dropping seqs the replay already sent). No gap, no duplicate.

A socket opened without a resume point goes live at once, from the welcome's position: what
is older is history. A `resume` frame sent as its first frame asks for that history: live
delivery pauses, the seqs in (resume's, welcome's] are replayed in order, and live delivery
goes on where it stopped. So resume keeps working without making every other client wait for
a resume frame that will never come.

This module knows frames and the store's interface (`History`), not what a notification is
about: frames it does not handle itself go to the `FrameHandler` it is given.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import WSMessage, WSMsgType
from aiohttp.web import WebSocketResponse

from app.metrics import Metrics
from app.realtime import protocol
from app.realtime.connection import CloseCode, Connection, Outbound
from app.realtime.history import History, Position
from app.realtime.hub import Hub
from app.realtime.protocol import BadFrame, ClientFrame

REPLAY_PAGE = 500

# Frames other than ping, pong and resume: (socket, frame) -> applied. Raises BadFrame to
# refuse one.
FrameHandler = Callable[[Connection, ClientFrame], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a client asks to resume from: after this seq, or after this id."""

    value: int
    by_seq: bool


@dataclass(frozen=True, slots=True)
class SessionLimits:
    replay_limit: int
    rate_per_second: float
    rate_burst: float
    flood_refusals: int
    flood_window_seconds: float


class RateLimiter:
    """Client frames: a token bucket of `rate` frames a second with bursts up to `burst`.

    A frame that finds the bucket empty is refused. A client that has `flood_refusals` frames
    refused within `flood_window` seconds is flooding, and its socket is closed (1008)."""

    # One per open socket: no per-instance dict.
    __slots__ = (
        "_clock",
        "_flood_refusals",
        "_refusals",
        "burst",
        "flood_window",
        "rate",
        "tokens",
        "updated",
    )

    def __init__(
        self,
        rate: float,
        burst: float,
        flood_refusals: int,
        flood_window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.flood_window = flood_window
        self._clock = clock
        self.tokens = burst
        self.updated = clock()
        self._flood_refusals = max(1, flood_refusals)
        # The times of the last refusals, made at the first one: most clients never have one,
        # and the deque is 600 bytes per socket.
        self._refusals: deque[float] | None = None

    def allow(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        if self._refusals is None:
            self._refusals = deque(maxlen=self._flood_refusals)
        self._refusals.append(now)
        return False

    @property
    def flooding(self) -> bool:
        """`flood_refusals` frames refused within the last `flood_window` seconds."""
        refusals = self._refusals
        return (
            refusals is not None
            and len(refusals) == self._flood_refusals
            and self._clock() - refusals[0] <= self.flood_window
        )


class ClientSession:
    """One socket's conversation with its client."""

    # One per open socket: no per-instance dict.
    __slots__ = (
        "_handle_frame",
        "_history_end",
        "_last_error_at",
        "conn",
        "hub",
        "limiter",
        "replay_limit",
    )

    def __init__(
        self,
        hub: Hub,
        conn: Connection,
        limits: SessionLimits,
        handle_frame: FrameHandler,
    ) -> None:
        self.hub = hub
        self.conn = conn
        self.replay_limit = limits.replay_limit
        self.limiter = RateLimiter(
            limits.rate_per_second,
            limits.rate_burst,
            limits.flood_refusals,
            limits.flood_window_seconds,
        )
        self._handle_frame = handle_frame
        self._last_error_at = 0.0
        # Without a resume point: the welcome's position, up to which a first `resume` frame
        # replays.
        self._history_end: Position | None = None

    # Derived, not kept: four fewer slots on every open socket.

    @property
    def history(self) -> History:
        return self.hub.history

    @property
    def metrics(self) -> Metrics:
        return self.hub.metrics

    @property
    def user_id(self) -> int:
        return self.conn.user_id

    @property
    def ws(self) -> WebSocketResponse:
        return self.conn.ws

    async def run(
        self, resume: ResumePoint | None, on_welcome: Callable[[], None] | None = None
    ) -> None:
        """The socket's whole life: welcome, replay, live; then the client's frames until
        the socket closes. `on_welcome` runs once the welcome is sent (the handshake is
        done). The read loop is inline rather than a method of its own: every coroutine
        awaited for the socket's lifetime is a frame kept per socket."""
        await self._start(resume, on_welcome)
        while self.conn.is_open:
            message = await self.ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            frame = await self._accept(message)
            if frame is not None:
                await self._handle(frame)

    async def _start(
        self, resume: ResumePoint | None, on_welcome: Callable[[], None] | None
    ) -> None:
        position = await self.hub.position(self.user_id)
        await self.conn.send_now(
            Outbound(
                protocol.welcome(
                    self.user_id,
                    self.hub.settings.heartbeat_seconds,
                    position.unread,
                    position.last_id,
                    position.last_seq,
                    position.counts,
                )
            )
        )
        if on_welcome is not None:
            on_welcome()
        if resume is None:
            self._history_end = position
            self.conn.start_at(position.last_id, position.last_seq)
        else:
            await self._replay(resume, position)
        self.conn.go_live()

    async def _resume(self, resume: ResumePoint) -> None:
        """A first `resume` frame: replay the history it asks for, then go on live."""
        history_end = self._history_end
        if history_end is None:
            raise BadFrame(
                "bad_frame", "resume must be the first frame, and only without a resume point"
            )
        self._history_end = None
        self.conn.pause()
        try:
            await self._replay(
                resume, history_end, sent_live=(self.conn.last_id, self.conn.last_seq)
            )
        finally:
            self.conn.go_live()

    async def _replay(
        self, resume: ResumePoint, upto: Position, sent_live: tuple[int, int] = (0, 0)
    ) -> None:
        """Send the user's notifications after the resume point up to `upto`, in seq order.

        Newer ones reach the socket live (it was registered before `upto` was read). Bounded:
        one replay per user and a few per process run at once (the hub's gate), and a client
        more than `replay_limit` behind gets a `replay_truncated` frame and only the newest
        `replay_limit`: the rest are in the inbox, and other requests stay fast. `sent_live`
        is the (id, seq) a late resume found already sent live.
        """
        after_seq = resume.value
        if not resume.by_seq and resume.value < upto.last_id:
            after_seq = await self.history.seq_at(self.user_id, resume.value)
        after_seq = min(after_seq, upto.last_seq)
        # Everything up to the resume point counts as sent; live frames queued meanwhile
        # that the replay covers are dropped as repeats.
        after_id = upto.last_id if after_seq == upto.last_seq else 0
        self.conn.rewind(after_id, after_seq)
        sent = 0
        # A client already at `upto` (most reconnects) costs no query and waits for no slot.
        if after_seq < upto.last_seq:
            async with self.hub.replay_gate.enter(self.user_id):
                sent = await self._send_history(after_seq, upto)
        if sent_live[1] > self.conn.last_seq:
            # What went out live before a late resume stays sent: the watermark returns to it.
            self.conn.rewind(*sent_live)
        self.metrics.replays.inc()
        self.metrics.replayed_notifications.inc(sent)
        await self.conn.send_now(
            Outbound(
                protocol.control(
                    "replay_done",
                    count=sent,
                    last_id=self.conn.last_id,
                    last_seq=self.conn.last_seq,
                )
            )
        )

    async def _send_history(self, after_seq: int, upto: Position) -> int:
        """The replay's frames (behind the gate); returns how many notifications it sent."""
        start = max(after_seq, upto.last_seq - self.replay_limit)
        if start != after_seq:
            self.metrics.replays_truncated.inc()
            last_id = await self.history.id_at(self.user_id, start)
            await self.conn.send_now(
                Outbound(
                    protocol.control(
                        "replay_truncated",
                        skipped=start - after_seq,
                        last_id=last_id,
                        last_seq=start,
                    )
                )
            )
            self.conn.rewind(last_id, start)
            after_seq = start
        sent = 0
        while after_seq < upto.last_seq:
            page = await self.history.between(self.user_id, after_seq, upto.last_seq, REPLAY_PAGE)
            for group in page:
                await self.conn.send_now(self.hub.history_frame(group))
            sent += len(page)
            if len(page) < REPLAY_PAGE:
                break
            after_seq = self.conn.last_seq
            await asyncio.sleep(0)  # let other requests in between pages
        return sent

    async def _accept(self, message: WSMessage) -> ClientFrame | None:
        """Check one incoming message; None when it was refused (or the socket closes)."""
        self.conn.last_received = time.monotonic()
        if message.type is WSMsgType.ERROR:
            # aiohttp has already closed the socket (1009 for an oversize frame).
            self.metrics.bad_frames.labels("protocol").inc()
            return None
        if message.type is WSMsgType.BINARY:
            self.metrics.bad_frames.labels("binary").inc()
            await self.conn.close(CloseCode.UNSUPPORTED_DATA, "text frames only")
            return None
        if message.type is not WSMsgType.TEXT:
            return None
        self.metrics.frames_received.inc()
        if not self.limiter.allow():
            self.metrics.bad_frames.labels("rate_limited").inc()
            if self.limiter.flooding:
                await self.conn.close(CloseCode.POLICY_VIOLATION, "too many frames")
            else:
                await self._error("rate_limited", "too many frames; slow down")
            return None
        try:
            return protocol.parse_client_frame(message.data)
        except BadFrame as exc:
            self.metrics.bad_frames.labels(exc.code).inc()
            await self._error(exc.code, exc.message)
            return None

    async def _error(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        # One error frame a second at most: a misbehaving client must not make us flood it.
        # A refusal naming a client message always goes: the client's outbox would otherwise
        # send that message again on every reconnect.
        now = time.monotonic()
        if client_msg_id is not None or now - self._last_error_at >= 1.0:
            self._last_error_at = now
            self.conn.offer(Outbound(protocol.error(code, message, client_msg_id)))

    async def _handle(self, frame: ClientFrame) -> None:
        try:
            if frame.type == "resume":
                await self._resume(resume_point(frame))
                self._acknowledge(frame)
                return
            self._history_end = None  # a resume is only ever the first frame
            if frame.type == "ping":
                self.conn.offer(Outbound(protocol.PONG))
            elif frame.type != "pong":
                await self._handle_frame(self.conn, frame)
            self._acknowledge(frame)
        except BadFrame as exc:
            self.metrics.bad_frames.labels(exc.code).inc()
            await self._error(exc.code, exc.message, frame.client_msg_id)

    def _acknowledge(self, frame: ClientFrame) -> None:
        if frame.client_msg_id is not None:
            self.conn.offer(Outbound(protocol.control("ack", client_msg_id=frame.client_msg_id)))


def resume_point(frame: ClientFrame) -> ResumePoint:
    """A `resume` frame's `last_seq` (preferred) or `last_id`."""
    if frame.has("last_seq"):
        return ResumePoint(frame.id_field("last_seq"), by_seq=True)
    return ResumePoint(frame.id_field("last_id"), by_seq=False)
