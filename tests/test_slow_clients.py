"""Slow and numerous clients cannot exhaust the server: the header timeout, the per-address
connection cap, the rate-limited out-of-descriptors log line (issue 7, point 3).

Every client here is on 127.0.0.1, few in number, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import create_app, keys
from app.config import Settings, settings_from_args
from app.connections import ACCEPT_ERROR_LOG_INTERVAL
from app.serving import LimitedTCPSite
from tests.conftest import TEST_API_KEY, BrowserFactory, MakeSettings
from tests.stores import OutsideDatabase
from tests.test_shutdown import ROOT, free_port
from tests.ws_helpers import eventually, metric, open_live, receive_until, still_answers

HEADER_TIMEOUT = 1.0
# "Closed by the header timeout" means: within the timeout plus this margin.
MARGIN = 2.0
TRICKLE_EVERY = 0.2


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(header_timeout_seconds=HEADER_TIMEOUT)


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_raw(host: str, port: int) -> Stream:
    return await asyncio.wait_for(asyncio.open_connection(host, port), 5)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Read until the server closes the connection (EOF or reset); returns what it sent."""
    received = b""
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await reader.read(4096)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: (status line and headers, body)."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return head, await reader.readexactly(length)


def close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        writer.close()


async def healthz_on_a_new_connection(host: str, port: int) -> bytes:
    reader, writer = await open_raw(host, port)
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head, _body = await read_response(reader)
        return head
    finally:
        close(writer)


def test_header_timeout_and_connection_cap_come_from_flags_and_environment(
    tmp_path: Path,
) -> None:
    env = {"APP_DB": str(tmp_path / "app.db")}
    defaults = settings_from_args([], env)
    from_env = settings_from_args(
        [], {**env, "APP_HEADER_TIMEOUT": "2.5", "APP_MAX_CONNECTIONS_PER_ADDRESS": "0"}
    )
    from_flags = settings_from_args(
        ["--header-timeout", "3", "--max-connections-per-address", "7"],
        {**env, "APP_HEADER_TIMEOUT": "2.5", "APP_MAX_CONNECTIONS_PER_ADDRESS": "0"},
    )

    assert (defaults.header_timeout_seconds, defaults.max_connections_per_address) == (10.0, 256)
    assert (from_env.header_timeout_seconds, from_env.max_connections_per_address) == (2.5, 0)
    assert (from_flags.header_timeout_seconds, from_flags.max_connections_per_address) == (3.0, 7)


async def test_a_client_trickling_its_headers_is_cut_off_at_the_header_timeout(
    server: TestServer,
) -> None:
    reader, writer = await open_raw(server.host, server.port)

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        with contextlib.suppress(OSError):
            while not writer.is_closing():
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(TRICKLE_EVERY)

    trickler = asyncio.create_task(trickle())
    try:
        # Each byte arrives well within the timeout; only a deadline that bytes do not move
        # ends the connection.
        sent_back = await closed_by_server(reader, HEADER_TIMEOUT + MARGIN)
    finally:
        trickler.cancel()
        close(writer)
    assert sent_back == b""  # closed, not answered: there was no request to answer

    head = await healthz_on_a_new_connection(server.host, server.port)
    assert head.startswith(b"HTTP/1.1 200 "), head


async def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(
    server: TestServer,
) -> None:
    reader, writer = await open_raw(server.host, server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"connection: close" not in head.lower()  # kept alive ...
        assert json.loads(body)["status"] == "ok"

        sent_back = await closed_by_server(reader, HEADER_TIMEOUT + MARGIN)  # ... not for long
    finally:
        close(writer)
    assert sent_back == b""


async def test_a_websocket_and_a_slow_but_complete_request_outlive_the_header_timeout(
    server: TestServer, new_browser: BrowserFactory
) -> None:
    browser = await new_browser()
    user_id = await browser.signup("slow@example.com", "Sam Slow")
    ws, _welcome = await open_live(browser, server)

    body = json.dumps({"user_ids": [user_id], "data": {"message": "slowly"}}).encode()
    chunks = [body[i : i + 4] for i in range(0, len(body), 4)]
    assert len(chunks) * TRICKLE_EVERY > 2 * HEADER_TIMEOUT  # the upload outlasts the timeout
    reader, writer = await open_raw(server.host, server.port)
    try:
        writer.write(
            (
                "POST /api/publish HTTP/1.1\r\nHost: localhost\r\n"
                f"Authorization: Bearer {TEST_API_KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        for chunk in chunks:
            await still_answers(ws)  # the socket keeps working the whole time
            await asyncio.sleep(TRICKLE_EVERY)
            writer.write(chunk)
            await writer.drain()
        head, answer = await read_response(reader)
    finally:
        close(writer)

    assert head.startswith(b"HTTP/1.1 202 "), (head, answer)
    frame, _ = await receive_until(ws, "notification")
    assert frame["data"] == {"message": "slowly"}
    await still_answers(ws)
    await ws.close()


@pytest.fixture
async def capped(
    make_settings: MakeSettings,
) -> AsyncIterator[tuple[web.Application, LimitedTCPSite]]:
    """The app served as run.py serves it, with a cap of 5 connections per address."""
    app = create_app(make_settings(max_connections_per_address=5, header_timeout_seconds=30.0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = LimitedTCPSite(runner, app[keys.CONNECTIONS], "127.0.0.1", 0)
    try:
        await site.start()
        yield app, site
    finally:
        await runner.cleanup()


async def test_a_connection_over_the_per_address_cap_is_refused_at_once_and_counted(
    capped: tuple[web.Application, LimitedTCPSite],
) -> None:
    app, site = capped
    limiter = app[keys.CONNECTIONS]
    held = [await open_raw("127.0.0.1", site.port) for _ in range(5)]
    try:
        await eventually(lambda: limiter.open_from("127.0.0.1") == 5, what="5 connections held")

        reader, writer = await open_raw("127.0.0.1", site.port)
        try:
            # Refused without waiting for a request, long before the 30 s header timeout.
            sent_back = await closed_by_server(reader, MARGIN)
        finally:
            close(writer)
        assert sent_back == b"" or sent_back.startswith(b"HTTP/1.1 503 "), sent_back
        assert b"connection: close" in sent_back.lower() or sent_back == b""
        assert metric(app, "http_connections_refused_total", reason="per_address_limit") == 1
        assert limiter.open_from("127.0.0.1") == 5  # the refused one was never counted

        close(held.pop()[1])
        await eventually(lambda: limiter.open_from("127.0.0.1") == 4, what="one released")
        head = await healthz_on_a_new_connection("127.0.0.1", site.port)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert metric(app, "http_connections_refused_total", reason="per_address_limit") == 1
    finally:
        for _reader, held_writer in held:
            close(held_writer)


# --- out of file descriptors, in a real run.py process -------------------------------------

FD_LIMIT = 64  # what the server process may open in all: start-up takes about 20
FLOOD = 150  # idle connections, more than the server has descriptors for
RESOURCE_LINE = "out of system resource"


def _few_descriptors() -> None:
    """In the child: a low soft *and* hard limit, so start-up cannot raise it; and die with
    the tests."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def test_running_out_of_descriptors_is_logged_sparingly_and_the_server_recovers(
    tmp_path: Path, outside_db: OutsideDatabase
) -> None:
    port = free_port()
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "run.py",
            "--port",
            str(port),
            *outside_db.flags(),
            "--header-timeout",
            "2",
            "--max-connections-per-address",
            "0",  # this test is about descriptors, not the cap
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_few_descriptors,
        )
    flood: list[Stream] = []
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        assert b"Serving" in line, (line, log_path.read_text())

        started = time.monotonic()
        flood = [await open_raw("127.0.0.1", port) for _ in range(FLOOD)]
        # Queued behind the flood: answered once the header timeout has dropped the idle ones.
        reader, writer = await open_raw("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            async with asyncio.timeout(60):
                head = await reader.readuntil(b"\r\n\r\n")
        finally:
            close(writer)
        elapsed = time.monotonic() - started
        assert head.startswith(b"HTTP/1.1 200 "), head
    finally:
        for _reader, flood_writer in flood:
            close(flood_writer)
        if process.returncode is None:
            process.kill()
        await process.wait()

    log = log_path.read_text()
    lines = [line for line in log.splitlines() if RESOURCE_LINE in line]
    assert lines, log[-2000:]  # the server did run out: the test tested something
    assert len(lines) <= 1 + math.ceil(elapsed / ACCEPT_ERROR_LOG_INTERVAL), lines
    assert "Traceback" not in log, log[-2000:]
    assert "open-file limit: 64" in log  # start-up could not raise it, and said so
