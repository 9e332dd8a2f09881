"""Real `python run.py` processes for the scale-out tests, and clients that talk to them.

Each `AppProcess` is one server process started by the test with its own flags and working
directory; several of them given the same database, Redis URL and secret are one site.
`LiveClient` is a person's device: a session cookie, one socket, and the notifications it has
received, resuming by seq when its socket drops.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import PASSWORD, TEST_API_KEY
from tests.net import die_with_the_tests, free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0
SECRET = "scale-out-test-secret-" + "0" * 32
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class AppProcess:
    """One `python run.py` with the given flags, in `workdir`."""

    workdir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        stderr = (self.workdir / "stderr.log").open("ab")
        env = {**os.environ, "APP_SECRET_KEY": SECRET}
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "run.py"),
                "--port",
                str(self.port),
                "--api-key",
                TEST_API_KEY,
                "--argon2-memory-kib",
                "64",
                "--argon2-time-cost",
                "1",
                *self.args,
                cwd=self.workdir,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                preexec_fn=die_with_the_tests,
            )
        finally:
            stderr.close()
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        assert b"Serving" in line, (line, self.log())

    def log(self) -> str:
        path = self.workdir / "stderr.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as in a crash."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None


async def publish(
    http: aiohttp.ClientSession, server: AppProcess, user_ids: list[int], data: dict[str, Any]
) -> list[int]:
    """`POST /api/publish` on one process; returns the stored ids."""
    async with http.post(
        f"{server.url}/api/publish",
        json={"user_ids": user_ids, "type": "notification", "data": data},
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    ) as response:
        assert response.status == 202, await response.text()
        ids: list[int] = (await response.json())["ids"]
        return ids


async def sign_up_and_in(server: AppProcess, email: str) -> aiohttp.ClientSession:
    """A browser-like session signed in on `server` (any process of the site will know it)."""
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0)
    )
    for path, data in (
        ("/signup", {"email": email, "name": email.split("@")[0], "password": PASSWORD}),
        ("/login", {"email": email, "password": PASSWORD}),
    ):
        page = await (await session.get(f"{server.url}{path}")).text()
        match = _CSRF.search(page)
        assert match is not None, page[:300]
        response = await session.post(
            f"{server.url}{path}",
            data={**data, "csrf_token": match.group(1)},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
    return session


async def user_id_of(session: aiohttp.ClientSession, server: AppProcess) -> int:
    ws = await session.ws_connect(f"{server.url}/ws", headers={"Origin": server.url})
    welcome = await ws.receive_json(timeout=5)
    await ws.close()
    return int(welcome["user_id"])


class LiveClient:
    """One device: a socket on some process, the notifications it got (in arrival order),
    and the other frames; it resumes by `last_seq` on whichever process it is pointed at."""

    def __init__(self, session: aiohttp.ClientSession, name: str = "") -> None:
        self.session = session
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.controls: list[dict[str, Any]] = []
        self.last_seq = 0
        self.server: AppProcess | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()

    async def connect(self, server: AppProcess, *, resume: bool = True) -> dict[str, Any]:
        """Open a socket on `server` (resuming after the last seq seen) and start reading."""
        self.server = server
        query = f"?last_seq={self.last_seq}" if resume else ""
        self.ws = await self.session.ws_connect(
            f"{server.url}/ws{query}", headers={"Origin": server.url}, heartbeat=None
        )
        welcome = await self.ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome", welcome
        if not resume:
            self.last_seq = welcome["last_seq"]
        self.closed.clear()
        self._reader = asyncio.create_task(self._read(self.ws))
        return dict(welcome)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(message.data)
                if frame.get("id") is not None:
                    self.frames.append(frame)
                    self.last_seq = max(self.last_seq, frame["seq"])
                else:
                    self.controls.append(frame)
                    if frame["type"] == "ping":
                        await ws.send_json({"type": "pong"})
                self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def wait_for(self, check: Any, within: float = 20.0, what: str = "") -> None:
        """Wait until `check(self)` holds, as frames arrive (fails after `within` s)."""
        deadline = time.monotonic() + within
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: not true after {within} s: {what} "
                    f"(have {len(self.frames)} frames, last seq {self.last_seq})"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_seq(self, seq: int, within: float = 20.0) -> None:
        await self.wait_for(lambda c: c.last_seq >= seq, within, f"seq {seq}")

    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=5)
