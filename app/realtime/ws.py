"""`GET /ws`: the handshake checks, welcome, replay, then the client-frame loop.

Order on connect: register the socket (live frames start queueing), send `welcome`, replay
what the client missed, then go live (the writer drains the queue, skipping ids the replay
already sent). No gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSMessage, WSMsgType, web

from app import keys
from app.accounts.sessions import CurrentUser
from app.notifications import store
from app.realtime import protocol
from app.realtime.connection import CLOSE_TIMEOUT, CloseCode, Connection, Outbound
from app.realtime.protocol import BadFrame, ClientFrame

log = logging.getLogger(__name__)

REPLAY_PAGE = 500
# Without ?last_id the first frame may be `resume`; live frames wait this long for it.
RESUME_GRACE_SECONDS = 2.0


class RateLimiter:
    """A token bucket: `rate` frames a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()
        self.refused = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False


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
    # isascii: str.isdigit() also holds for superscripts and non-Latin digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise web.HTTPBadRequest(text="last_id must be a non-negative integer")
    return int(raw)


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

    settings = app[keys.SETTINGS]
    ws = web.WebSocketResponse(
        max_msg_size=protocol.MAX_FRAME_BYTES,
        compress=False,
        heartbeat=settings.ws_protocol_ping_seconds,
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
        self.limiter = RateLimiter(settings.ws_rate_per_second, settings.ws_rate_burst)
        self._last_error_at = 0.0

    async def run(self, last_id: int | None) -> None:
        db = self.app[keys.DB]
        hub = self.app[keys.HUB]
        unread, newest = await store.unread_and_newest(db, self.user.id)
        await self.conn.send_now(
            Outbound(protocol.welcome(self.user.id, hub.settings.heartbeat_seconds, unread, newest))
        )
        first: ClientFrame | None = None
        if last_id is None:
            first, last_id = await self._wait_for_resume()
        if last_id is not None:
            await self._replay(last_id, newest, unread)
        self.conn.go_live()
        if first is not None:
            await self._handle(first)
        await self._read_loop()

    async def _wait_for_resume(self) -> tuple[ClientFrame | None, int | None]:
        """The first frame, if it comes soon; a `resume` one gives the id to replay from."""
        try:
            message = await self.ws.receive(timeout=RESUME_GRACE_SECONDS)
        except TimeoutError:
            return None, None
        frame = await self._accept(message)
        if frame is None:
            return None, None
        if frame.type == "resume":
            try:
                return None, frame.id_field("last_id")
            except BadFrame as exc:
                await self._error(exc.code, exc.message)
                return None, None
        return frame, None

    async def _replay(self, after_id: int, newest: int, unread: int) -> None:
        """Send every stored notification with id > after_id, oldest first.

        The socket was registered before `newest` was read, so anything newer than `newest`
        reaches it live: when the client is already at `newest`, there is nothing to read.
        """
        db = self.app[keys.DB]
        sent = 0
        while after_id < newest:
            page = await store.after(db, self.user.id, after_id, REPLAY_PAGE)
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
            unread, _newest = await store.unread_and_newest(db, self.user.id)
        self.metrics.replays.inc()
        self.metrics.replayed_notifications.inc(sent)
        await self.conn.send_now(
            Outbound(protocol.control("replay_done", count=sent, last_id=self.conn.last_sent_id))
        )

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
            if self.limiter.refused > 5 * self.limiter.burst:
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
        elif kind == "resume":
            raise BadFrame("bad_frame", "resume must be the first frame")
        if frame.client_msg_id is not None:
            self.conn.offer(Outbound(protocol.control("ack", client_msg_id=frame.client_msg_id)))
