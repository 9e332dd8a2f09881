"""`GET /ws`: the handshake checks, welcome, replay, then the client-frame loop.

Order on connect: register the socket (live frames start queueing), send `welcome`, replay
what the client missed, then go live (the writer drains the queue, skipping ids the replay
already sent). No gap, no duplicate.

A socket opened without `?last_id` goes live at once, from the welcome's `last_id` on: what is
older is history. A `resume` frame sent as its first frame asks for that history: live
delivery pauses, the ids in (resume's last_id, welcome's last_id] are replayed in order, and
live delivery goes on where it stopped. So resume keeps working without making every other
client wait for a resume frame that will never come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from aiohttp import WSMessage, WSMsgType, web

from app import keys
from app.accounts.sessions import CurrentUser
from app.forms import MAX_ID, NumberError, parse_int
from app.notifications import store
from app.realtime import protocol
from app.realtime.connection import CLOSE_TIMEOUT, CloseCode, Connection, Outbound
from app.realtime.protocol import BadFrame, ClientFrame

log = logging.getLogger(__name__)

REPLAY_PAGE = 500


class RateLimiter:
    """Client frames: a token bucket of `rate` frames a second with bursts up to `burst`.

    A frame that finds the bucket empty is refused. A client that has `flood_refusals` frames
    refused within `flood_window` seconds is flooding, and its socket is closed (1008)."""

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
        self._refusals: deque[float] = deque(maxlen=max(1, flood_refusals))

    def allow(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self._refusals.append(now)
        return False

    @property
    def flooding(self) -> bool:
        """`flood_refusals` frames refused within the last `flood_window` seconds."""
        refusals = self._refusals
        return len(refusals) == refusals.maxlen and self._clock() - refusals[0] <= self.flood_window


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _origin_allowed(request: web.Request) -> bool:
    settings = request.config_dict[keys.SETTINGS]
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    scheme = "https" if settings.https else request.scheme
    return origin == f"{scheme}://{request.host}" or origin in settings.allowed_origins


def _last_id(request: web.Request) -> int | None:
    raw = request.query.get("last_id")
    if raw is None:
        return None
    try:
        return parse_int(raw, minimum=0, maximum=MAX_ID)
    except NumberError:
        raise web.HTTPBadRequest(text="last_id must be a non-negative integer") from None


async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.config_dict
    hub = app[keys.HUB]
    metrics = app[keys.METRICS]
    user: CurrentUser | None = request.get(keys.USER)
    if user is None:
        metrics.connections_refused.labels("unauthenticated").inc()
        return _refuse(401, "sign in first")
    if not _origin_allowed(request):
        metrics.connections_refused.labels("origin").inc()
        return _refuse(403, "cross-origin WebSocket refused")
    if not hub.accepting:
        metrics.connections_refused.labels("shutting_down").inc()
        return _refuse(503, "shutting down; reconnect shortly")
    try:
        last_id = _last_id(request)
    except web.HTTPBadRequest as exc:
        return _refuse(400, exc.text or "bad last_id")

    ws = web.WebSocketResponse(
        max_msg_size=protocol.MAX_FRAME_BYTES + 1,  # aiohttp refuses sizes >= its limit
        compress=False,
        # No protocol-level pings: the hub's heartbeat (ping frames, and a deadline on the
        # client's traffic) is the one liveness check.
        heartbeat=None,
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    conn = Connection(
        ws,
        user_id=user.id,
        session_id=user.session_id,
        queue_size=hub.settings.queue_size,
        metrics=metrics,
        on_closed=hub.unregister,
        transport=request.transport,
    )
    if not hub.register(conn):
        metrics.connections_refused.labels("too_many").inc()
        await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"too many connections")
        return ws
    session = ClientSession(request, conn, user)
    try:
        await session.run(last_id)
    except (ConnectionError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("websocket handler failed for user %s", user.id)
        with contextlib.suppress(Exception):
            await conn.close(1011, "internal error")
    finally:
        await conn.finished()
    return ws


class ClientSession:
    """One socket's conversation with its client."""

    def __init__(self, request: web.Request, conn: Connection, user: CurrentUser) -> None:
        self.app = request.config_dict
        self.conn = conn
        self.user = user
        self.ws = conn.ws
        self.metrics = self.app[keys.METRICS]
        settings = self.app[keys.SETTINGS]
        self.replay_limit = settings.ws_replay_limit
        self.limiter = RateLimiter(
            settings.ws_rate_per_second,
            settings.ws_rate_burst,
            settings.ws_flood_refusals,
            settings.ws_flood_window_seconds,
        )
        self._last_error_at = 0.0
        # Without ?last_id: the welcome's last_id, up to which a first `resume` frame replays.
        self._history_end: int | None = None

    async def run(self, last_id: int | None) -> None:
        db = self.app[keys.DB]
        hub = self.app[keys.HUB]
        unread, newest = await store.unread_and_newest(db, self.user.id)
        await self.conn.send_now(
            Outbound(protocol.welcome(self.user.id, hub.settings.heartbeat_seconds, unread, newest))
        )
        if last_id is None:
            self._history_end = newest
            self.conn.skip_through(newest)
        else:
            await self._replay(last_id, newest, unread)
        self.conn.go_live()
        await self._read_loop()

    async def _resume(self, after_id: int) -> None:
        """A first `resume` frame: replay the history it asks for, then go on live."""
        history_end = self._history_end
        if history_end is None:
            raise BadFrame("bad_frame", "resume must be the first frame, and only without last_id")
        self._history_end = None
        self.conn.pause()
        try:
            unread = await store.unread_count(self.app[keys.DB], self.user.id)
            await self._replay(after_id, history_end, unread)
        finally:
            self.conn.go_live()

    async def _replay(self, after_id: int, upto: int, unread: int) -> None:
        """Send the user's notifications with after_id < id <= upto, oldest first.

        Newer ones reach the socket live (it was registered before `upto` was read). Bounded:
        one replay per user and a few per process run at once (the hub's gate), and a client
        more than `replay_limit` behind gets a `replay_truncated` frame and only the newest
        `replay_limit`: the rest are in the inbox, and other requests stay fast.
        """
        sent = 0
        # A client already at `upto` (most reconnects) costs no query and waits for no slot.
        if after_id < upto:
            async with self.app[keys.HUB].replay_gate.enter(self.user.id):
                sent = await self._send_history(after_id, upto, unread)
        self.metrics.replays.inc()
        self.metrics.replayed_notifications.inc(sent)
        await self.conn.send_now(
            Outbound(protocol.control("replay_done", count=sent, last_id=self.conn.last_sent_id))
        )

    async def _send_history(self, after_id: int, upto: int, unread: int) -> int:
        """The replay's frames (behind the gate); returns how many notifications it sent."""
        db = self.app[keys.DB]
        user_id = self.user.id
        start = await store.replay_start(db, user_id, after_id, upto, self.replay_limit)
        if start != after_id:
            skipped = await store.count_between(db, user_id, after_id, start)
            self.metrics.replays_truncated.inc()
            await self.conn.send_now(
                Outbound(protocol.control("replay_truncated", skipped=skipped, last_id=start))
            )
            after_id = start
        sent = 0
        while after_id < upto:
            page = await store.between(db, user_id, after_id, upto, REPLAY_PAGE)
            for notification in page:
                await self.conn.send_now(
                    Outbound(
                        protocol.notification_frame(notification, unread),
                        notification.id,
                        notification.event,
                    )
                )
            sent += len(page)
            if len(page) < REPLAY_PAGE:
                break
            after_id = page[-1].id
            await asyncio.sleep(0)  # let other requests in between pages
        return sent

    async def _read_loop(self) -> None:
        while self.conn.is_open:
            message = await self.ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            frame = await self._accept(message)
            if frame is not None:
                await self._handle(frame)

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

    async def _error(self, code: str, message: str) -> None:
        # One error frame a second at most: a misbehaving client must not make us flood it.
        now = time.monotonic()
        if now - self._last_error_at >= 1.0:
            self._last_error_at = now
            self.conn.offer(Outbound(protocol.error(code, message)))

    async def _handle(self, frame: ClientFrame) -> None:
        try:
            if frame.type == "resume":
                await self._resume(frame.id_field("last_id"))
                self._acknowledge(frame)
            else:
                self._history_end = None  # a resume is only ever the first frame
                await self._dispatch(frame)
        except BadFrame as exc:
            self.metrics.bad_frames.labels(exc.code).inc()
            await self._error(exc.code, exc.message)

    async def _dispatch(self, frame: ClientFrame) -> None:
        notifier = self.app[keys.NOTIFIER]
        user_id = self.user.id
        kind = frame.type
        if kind == "ping":
            self.conn.offer(Outbound(protocol.PONG))
        elif kind == "ack":
            self.app[keys.ACKS].record(user_id, frame.id_field("id"))
        elif kind == "mark_read":
            await notifier.mark_read(user_id, frame.ids(), client_msg_id=frame.client_msg_id)
        elif kind == "mark_seen":
            await notifier.mark_seen(user_id, frame.ids(), client_msg_id=frame.client_msg_id)
        elif kind == "mark_all_read":
            await notifier.mark_all_read(user_id, client_msg_id=frame.client_msg_id)
        self._acknowledge(frame)

    def _acknowledge(self, frame: ClientFrame) -> None:
        if frame.client_msg_id is not None:
            self.conn.offer(Outbound(protocol.control("ack", client_msg_id=frame.client_msg_id)))
