"""A minimal WebSocket client for load generation: an asyncio Protocol, no frame objects.

aiohttp's client costs more per message than a bare server does, so a load generator built on
it would cap the figures. This one parses server frames (never masked) straight from the
buffer, answers protocol pings and app-level `ping` frames, and counts.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

OnText = Callable[["WSClient", bytes, float], None]
_ZERO_MASK = b"\x00\x00\x00\x00"  # masking with zeros is valid and costs nothing


class WSClient(asyncio.Protocol):
    def __init__(self, host: str, port: int, path: str, headers: dict[str, str], on_text: OnText):
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"
            "\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        self.on_text = on_text
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.user_id: int | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed before upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send_text(self, payload: bytes) -> None:
        self._send(0x1, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        self.transport.write(header + _ZERO_MASK + payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status_line:
                self.upgraded.set_exception(ConnectionError(status_line.decode()))
                self.close()
                return
            self.upgraded.set_result(None)
        now = time.perf_counter()
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b1 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            opcode = b1 & 0x0F
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode == 0x1:
                self.received += 1
                if payload.startswith(b'{"type":"ping"'):
                    self.send_text(b'{"type":"pong"}')
                else:
                    self.on_text(self, payload, now)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                self.close()
        del buf[:pos]


async def connect(
    host: str, port: int, path: str, headers: dict[str, str], on_text: OnText
) -> WSClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(
        lambda: WSClient(host, port, path, headers, on_text), host, port
    )
    await client.upgraded
    return client
