"""Opening WebSockets as a signed-in browser would, and reading frames with a timeout.

Every wait here is bounded: a frame that does not come fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestServer

from app import keys
from tests.conftest import Browser

Frame = dict[str, Any]
WAIT = 5.0


def origin_of(server: TestServer) -> str:
    return f"http://{server.host}:{server.port}"


async def connect(
    browser: Browser, server: TestServer, query: str = "?last_id=0", **kwargs: Any
) -> ClientWebSocketResponse:
    """Open /ws with the site's own Origin (override with headers=...)."""
    kwargs.setdefault("headers", {"Origin": origin_of(server)})
    ws: ClientWebSocketResponse = await browser.client.ws_connect("/ws" + query, **kwargs)
    return ws


async def receive(ws: ClientWebSocketResponse, within: float = WAIT) -> Frame:
    """The next frame, which must be a JSON text frame (a close fails the test)."""
    message = await ws.receive(timeout=within)
    assert message.type is WSMsgType.TEXT, (message.type, message.data, message.extra)
    frame = json.loads(message.data)
    assert isinstance(frame, dict), frame
    return frame


async def receive_text(ws: ClientWebSocketResponse, within: float = WAIT) -> str:
    message = await ws.receive(timeout=within)
    assert message.type is WSMsgType.TEXT, (message.type, message.data, message.extra)
    assert isinstance(message.data, str)
    return message.data


async def receive_until(
    ws: ClientWebSocketResponse, kind: str, within: float = WAIT
) -> tuple[Frame, list[Frame]]:
    """Read frames until one of type `kind`; returns it and the frames before it."""
    deadline = time.monotonic() + within
    before: list[Frame] = []
    while True:
        frame = await receive(ws, max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame, before
        before.append(frame)


async def open_live(
    browser: Browser, server: TestServer, last_id: int = 0
) -> tuple[ClientWebSocketResponse, Frame]:
    """A live socket that has had its welcome and (empty or not) replay; returns the welcome."""
    ws = await connect(browser, server, f"?last_id={last_id}")
    welcome = await receive(ws)
    assert welcome["type"] == "welcome", welcome
    await receive_until(ws, "replay_done")
    return ws, welcome


async def wait_closed(ws: ClientWebSocketResponse, within: float = WAIT) -> tuple[int, str]:
    """Read (and skip) frames until the server closes; returns (close code, reason)."""
    deadline = time.monotonic() + within
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if message.type is WSMsgType.CLOSE:
            return int(message.data), str(message.extra or "")
        if message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            assert ws.close_code is not None, "closed without a close frame"
            return ws.close_code, ""
        assert message.type is WSMsgType.TEXT, (message.type, message.data)


async def still_answers(ws: ClientWebSocketResponse) -> None:
    """The socket is open and serving: a ping gets its pong (other frames are skipped)."""
    await ws.send_json({"type": "ping"})
    pong, _ = await receive_until(ws, "pong")
    assert pong == {"type": "pong", "id": None}


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], within: float = WAIT, what: str = ""
) -> None:
    """Poll `check` every 10 ms until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within} s: {what or check}")
        await asyncio.sleep(0.01)


def metric(app: web.Application, name: str, **labels: str) -> float:
    value = app[keys.METRICS].registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def cookie_header(browser: Browser) -> str:
    return "; ".join(f"{m.key}={m.value}" for m in browser.client.session.cookie_jar)


async def raw_upgrade(
    server: TestServer,
    cookie: str,
    *,
    query: str = "?last_id=0",
    rcvbuf: int | None = None,
) -> socket.socket:
    """A WebSocket opened by hand on a non-blocking socket that reads nothing after the 101."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (server.host, server.port)), WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws{query} HTTP/1.1\r\n"
            f"Host: {server.host}:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin_of(server)}\r\nCookie: {cookie}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), WAIT)
            assert chunk, f"connection closed during the handshake: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 "), head
    except BaseException:
        sock.close()
        raise
    return sock


def abort(sock: socket.socket) -> None:
    """Drop the connection the rude way: a TCP reset, no close frame."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
