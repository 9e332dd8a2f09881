"""Graceful shutdown of a real `python run.py` process: SIGTERM closes every socket with 1001
and a spread-out reconnect delay, keeps what was published, and exits cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import PASSWORD, TEST_API_KEY
from tests.net import die_with_the_tests, free_port
from tests.stores import OutsideDatabase

ROOT = Path(__file__).resolve().parent.parent
SPREAD_MS = 2000
BATCH_SIZE = 200  # HubSettings.shutdown_batch_size
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REASON = re.compile(r"reconnect in (\d+) ms")


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    db: OutsideDatabase


@pytest.fixture
async def running(tmp_path: Path, outside_db: OutsideDatabase) -> AsyncIterator[Server]:
    port = free_port()
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "--port",
        str(port),
        *outside_db.flags(),
        "--api-key",
        TEST_API_KEY,
        "--argon2-memory-kib",
        "64",
        "--argon2-time-cost",
        "1",
        "--shutdown-spread",
        str(SPREAD_MS / 1000),
        "--ws-max-per-user",
        "500",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        preexec_fn=die_with_the_tests,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        assert b"Serving" in line, (line, (tmp_path / "stderr.log").read_text())
        yield Server(process, f"http://127.0.0.1:{port}", outside_db)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        stderr.close()


async def signed_in(server: Server, email: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(
        server.url,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(limit=0),  # each socket holds a connection
    )
    page = await (await session.get("/signup")).text()
    match = _CSRF.search(page)
    assert match is not None
    response = await session.post(
        "/signup",
        data={
            "email": email,
            "name": email.split("@")[0],
            "password": PASSWORD,
            "csrf_token": match.group(1),
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    page = await (await session.get("/login")).text()
    match = _CSRF.search(page)
    assert match is not None
    response = await session.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return session


async def open_socket(
    session: aiohttp.ClientSession, server: Server
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect("/ws?last_id=0", headers={"Origin": server.url})
    for expected in ("welcome", "replay_done"):
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == expected, frame
    return ws


async def close_of(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str, list[int]]:
    """Read until the server's close: (code, reason, ids of notifications seen before it)."""
    ids: list[int] = []
    while True:
        message = await ws.receive(timeout=10)
        if message.type is aiohttp.WSMsgType.TEXT:
            frame = message.json()
            if frame.get("id") is not None:
                ids.append(frame["id"])
            continue
        assert message.type is aiohttp.WSMsgType.CLOSE, (message.type, message.data)
        return int(message.data), str(message.extra), ids


async def test_sigterm_closes_every_socket_with_1001_spread_reconnects_keeps_data_and_exits_0(
    running: Server,
) -> None:
    sessions = [await signed_in(running, f"user{n}@example.com") for n in range(2)]
    try:
        count = BATCH_SIZE + 20  # two batches: two different reconnect delays
        sockets = await asyncio.wait_for(
            asyncio.gather(*(open_socket(sessions[n % 2], running) for n in range(count))), 20
        )
        api = sessions[0]

        async def publish(n: int) -> list[int]:
            response = await api.post(
                "/api/publish",
                json={"user_ids": [1, 2], "data": {"message": f"last words {n}"}},
                headers={"Authorization": f"Bearer {TEST_API_KEY}"},
            )
            assert response.status == 202, await response.text()
            ids: list[int] = (await response.json())["ids"]
            return ids

        published = [i for n in range(10) for i in await publish(n)]
        readers = [asyncio.create_task(close_of(ws)) for ws in sockets]

        running.process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        closes = await asyncio.wait_for(asyncio.gather(*readers), 15)
        returncode = await asyncio.wait_for(running.process.wait(), 15)
        exited_after = time.monotonic() - sent_at
    finally:
        for session in sessions:
            await session.close()

    assert returncode == 0
    assert exited_after < 5, exited_after
    delays: list[int] = []
    for code, reason, _ids in closes:
        assert code == 1001, (code, reason)
        match = _REASON.fullmatch(reason)
        assert match is not None, reason
        delays.append(int(match.group(1)))
    assert all(0 <= delay <= SPREAD_MS for delay in delays), sorted(set(delays))
    assert len(set(delays)) >= 2, sorted(set(delays))
    assert delays.count(0) == BATCH_SIZE
    for _code, _reason, ids in closes:
        assert ids == sorted(set(ids))  # whatever arrived before the close, in order
    stored = {row[0] for row in running.db.query("SELECT id FROM notifications")}
    assert set(published) <= stored
    assert len(published) == 20
