"""`GET /ws`: the handshake checks (session, origin, capacity), then the realtime layer's
client session with the notification store and frame handler plugged in."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from app import keys
from app.forms import MAX_ID, NumberError, parse_int
from app.middlewares import authenticate
from app.realtime import protocol
from app.realtime.connection import CLOSE_TIMEOUT, CloseCode, Connection
from app.realtime.handshake_gate import RELEASE
from app.realtime.session import ClientSession, ResumePoint, SessionLimits

log = logging.getLogger(__name__)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _origin_allowed(request: web.Request) -> bool:
    settings = request.config_dict[keys.SETTINGS]
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    scheme = "https" if settings.https else request.scheme
    return origin == f"{scheme}://{request.host}" or origin in settings.allowed_origins


def _resume_point(request: web.Request) -> ResumePoint | None:
    """`?last_seq=N` (preferred) or `?last_id=N`; None without either. ValueError, with the
    message for the client, when the number is bad."""
    for name, by_seq in (("last_seq", True), ("last_id", False)):
        raw = request.query.get(name)
        if raw is None:
            continue
        try:
            return ResumePoint(parse_int(raw, minimum=0, maximum=MAX_ID), by_seq)
        except NumberError:
            raise ValueError(f"{name} must be a non-negative integer") from None
    return None


def _limits(request: web.Request) -> SessionLimits:
    settings = request.config_dict[keys.SETTINGS]
    return SessionLimits(
        replay_limit=settings.ws_replay_limit,
        rate_per_second=settings.ws_rate_per_second,
        rate_burst=settings.ws_rate_burst,
        flood_refusals=settings.ws_flood_refusals,
        flood_window_seconds=settings.ws_flood_window_seconds,
    )


async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.config_dict
    hub = app[keys.HUB]
    metrics = app[keys.METRICS]
    # Here rather than in the auth middleware (which leaves /ws alone): a middleware awaiting
    # this handler would stay on the stack, with its frame, as long as the socket is open.
    user = await authenticate(request, keep_session=False)
    if user is None:
        metrics.connections_refused.labels("unauthenticated").inc()
        return _refuse(401, "sign in first")
    request[keys.USER] = user
    if not _origin_allowed(request):
        metrics.connections_refused.labels("origin").inc()
        return _refuse(403, "cross-origin WebSocket refused")
    if not hub.accepting:
        metrics.connections_refused.labels("shutting_down").inc()
        return _refuse(503, "shutting down; reconnect shortly")
    try:
        resume = _resume_point(request)
    except ValueError as exc:
        return _refuse(400, str(exc))

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
        backfill=hub.backfill,
        transport=request.transport,
    )
    if not hub.register(conn):
        metrics.connections_refused.labels("too_many").inc()
        await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"too many connections")
        return ws
    session = ClientSession(hub, conn, _limits(request), app[keys.FRAMES])
    try:
        await session.run(resume, request.get(RELEASE))
    except (ConnectionError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("websocket handler failed for user %s", user.id)
        with contextlib.suppress(Exception):
            await conn.close(1011, "internal error")
    finally:
        await conn.finished()
    return ws
