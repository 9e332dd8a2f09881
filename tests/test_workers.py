"""Scale-out settings and what they do: `--redis-url`, `--workers`, `/healthz` with a broker
that is down, and two processes on one database and one Redis acting as one site."""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import create_app, keys
from app.config import ConfigError, Settings, settings_from_args
from app.realtime.broker import InProcessBroker
from app.realtime.redis_broker import RedisBroker
from tests.conftest import TEST_API_KEY, Browser, MakeSettings
from tests.redis_fixtures import RedisServer, free_port
from tests.ws_helpers import (
    cookie_header,
    eventually,
    origin_of,
    receive,
    receive_until,
    wait_closed,
)

ROOT = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6390/3"

# -- settings ----------------------------------------------------------------------------


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"APP_DB": str(tmp_path / "app.db"), **extra}


def test_no_redis_and_one_worker_by_default(tmp_path: Path) -> None:
    settings = settings_from_args([], env_for(tmp_path))
    assert settings.redis_url is None
    assert settings.workers == 1
    assert isinstance(create_app(settings)[keys.BROKER], InProcessBroker)


def test_redis_url_and_workers_from_flags_or_environment(tmp_path: Path) -> None:
    settings = settings_from_args([], env_for(tmp_path, APP_REDIS_URL=REDIS, APP_WORKERS="3"))
    assert (settings.redis_url, settings.workers) == (REDIS, 3)
    settings = settings_from_args(
        ["--redis-url", "redis://127.0.0.1:7000/0", "--workers", "2"],
        env_for(tmp_path, APP_REDIS_URL=REDIS, APP_WORKERS="3"),
    )
    assert (settings.redis_url, settings.workers) == ("redis://127.0.0.1:7000/0", 2)
    assert isinstance(create_app(settings)[keys.BROKER], RedisBroker)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_REDIS_URL": "127.0.0.1:6379"}, "APP_REDIS_URL must look like redis://"),
        ({"APP_REDIS_URL": "http://127.0.0.1:6379/0"}, "APP_REDIS_URL must look like redis://"),
        ({"APP_REDIS_URL": "redis://127.0.0.1:port/0"}, "APP_REDIS_URL must look like redis://"),
        ({"APP_WORKERS": "0"}, "APP_WORKERS"),
        ({"APP_WORKERS": "two"}, "APP_WORKERS"),
        ({"APP_WORKERS": "2"}, "APP_WORKERS=2 needs APP_REDIS_URL"),
        ({"APP_WORKERS": "2", "APP_REDIS_URL": REDIS, "APP_PORT": "0"}, "a fixed APP_PORT"),
    ],
)
def test_bad_scale_out_settings_are_refused_by_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_args([], env_for(tmp_path, **env))


def test_a_bad_redis_url_is_not_echoed_since_it_may_hold_a_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_args([], env_for(tmp_path, APP_REDIS_URL="redis://:hunter2@host:x/0"))
    assert "hunter2" not in str(caught.value)


def test_run_py_refuses_workers_without_redis_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "APP_DB": str(tmp_path / "app.db")}
    env.pop("APP_REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "run.py", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "configuration error: APP_WORKERS=2 needs APP_REDIS_URL (--redis-url redis://HOST:PORT/DB)"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "app.db").exists()  # refused before touching anything


# -- /healthz and two processes on one Redis -----------------------------------------------


@pytest.fixture
def settings(make_settings: MakeSettings, redis_server: RedisServer) -> Settings:
    # The periodic session check is far slower than the waits below: a socket closed in
    # time was closed by the broker's message.
    return make_settings(redis_url=redis_server.url, session_check_seconds=60)


async def healthz(server: TestServer) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{origin_of(server)}/healthz") as response:
            return response.status, await response.json()


async def test_healthz_says_degraded_with_200_while_redis_is_down(
    server: TestServer, app: web.Application, redis_server: RedisServer
) -> None:
    broker = app[keys.BROKER]
    assert await healthz(server) == (
        200,
        {"status": "ok", "database": "ok", "broker": "up", "pid": os.getpid()},
    )
    redis_server.kill()
    await eventually(lambda: not broker.up, what="the broker notices")
    status, body = await healthz(server)
    assert (status, body["status"], body["broker"], body["database"]) == (
        200,
        "degraded",
        "down",
        "ok",
    )
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{origin_of(server)}/metrics") as response:
            assert "\nbroker_up 0.0\n" in await response.text()
    redis_server.start()
    await eventually(lambda: broker.up, what="the broker is back")
    assert (await healthz(server))[1]["status"] == "ok"


async def test_healthz_with_the_in_process_broker(
    make_settings: MakeSettings, aiohttp_server: Any
) -> None:
    # make_settings first: fixtures are torn down in reverse, so the server (and its pool)
    # stops before the test's PostgreSQL database is dropped under it.
    server = await aiohttp_server(create_app(make_settings()))
    assert await healthz(server) == (
        200,
        {"status": "ok", "database": "ok", "broker": "up", "pid": os.getpid()},
    )


@pytest.fixture
async def second_server(settings: Settings, aiohttp_server: Any) -> TestServer:
    """Another process of the same site: the same database file, Redis and secret."""
    server: TestServer = await aiohttp_server(create_app(settings))
    return server


async def test_logging_out_on_one_process_closes_the_sessions_sockets_on_another(
    provider: Browser, server: TestServer, second_server: TestServer
) -> None:
    cookie = cookie_header(provider)
    async with aiohttp.ClientSession() as http:
        here = await http.ws_connect(
            f"{origin_of(server)}/ws?last_id=0",
            headers={"Origin": origin_of(server), "Cookie": cookie},
        )
        there = await http.ws_connect(
            f"{origin_of(second_server)}/ws?last_id=0",
            headers={"Origin": origin_of(second_server), "Cookie": cookie},
        )
        for ws in (here, there):
            assert (await receive(ws))["type"] == "welcome"
        assert (await provider.post("/logout")).status == 303
        assert await wait_closed(here, within=2) == (4401, "session ended")
        assert await wait_closed(there, within=2) == (4401, "session ended")


async def test_reading_on_one_process_clears_it_on_a_device_connected_to_another(
    provider: Browser, server: TestServer, second_server: TestServer, app: web.Application
) -> None:
    assert provider.user_id is not None
    stored = await app[keys.NOTIFIER].send_to_user(provider.user_id, "notification", {"m": 1})
    cookie = cookie_header(provider)
    async with aiohttp.ClientSession() as http:
        sockets = [
            await http.ws_connect(
                f"{origin_of(site)}/ws?last_id=0",
                headers={"Origin": origin_of(site), "Cookie": cookie},
            )
            for site in (server, second_server)
        ]
        for ws in sockets:  # each device has it (replayed from the shared database)
            frame, _ = await receive_until(ws, "notification")
            assert frame["id"] == stored.id
        here, there = sockets
        await here.send_json({"type": "mark_read", "ids": [stored.id]})
        frame, _ = await receive_until(there, "notification_read")
        assert (frame["ids"], frame["unread"]) == ([stored.id], 0)


# -- run.py --workers ------------------------------------------------------------------------


def _die_with_the_tests() -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def start_run_py(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, Path]:
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "run.py",
            "--db",
            str(tmp_path / "app.db"),
            "--api-key",
            TEST_API_KEY,
            "--shutdown-spread",
            "0.5",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_die_with_the_tests,
        )
    return process, stderr_path


async def pid_behind(url: str) -> int:
    """The pid of the worker that answers a request on a fresh connection."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
            body = await response.json()
            assert body["status"] == "ok", body
            return int(body["pid"])


async def pids_seen(url: str, want: set[int], attempts: int = 400) -> set[int]:
    """Requests on fresh connections until every pid in `want` answered (or attempts ran out)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(await pid_behind(url))
        if want <= seen:
            break
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def workers(
    tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[int], Path]]:
    port = free_port()
    process, stderr = await start_run_py(
        tmp_path, "--workers", "2", "--redis-url", redis_server.url, "--port", str(port)
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = f"http://127.0.0.1:{port}"
        match = re.fullmatch(
            rf"Serving the marketplace on {url}/ with 2 worker processes "
            r"\(pids (\d+), (\d+)\)\n",
            line,
        )
        assert match, (line, stderr.read_text())
        yield process, url, [int(match.group(1)), int(match.group(2))], stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_workers_share_one_port_and_stop_together_on_sigterm(
    workers: tuple[asyncio.subprocess.Process, str, list[int], Path],
) -> None:
    process, url, pids, stderr = workers
    assert process.pid not in pids
    # The kernel spreads new connections over both listening processes.
    assert await pids_seen(url, set(pids)) == set(pids)

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0, stderr.read_text()
    assert not any(alive(pid) for pid in pids)
    log = stderr.read_text()
    assert "SIGTERM: stopping 2 workers" in log
    assert "Traceback" not in log
    with pytest.raises(aiohttp.ClientConnectionError):
        await pid_behind(url)


async def test_a_worker_that_dies_is_started_again(
    workers: tuple[asyncio.subprocess.Process, str, list[int], Path],
) -> None:
    process, url, pids, stderr = workers
    os.kill(pids[0], signal.SIGKILL)
    # The other keeps serving meanwhile, and a new worker joins it.
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while not seen - set(pids):
        assert time.monotonic() < deadline, (seen, stderr.read_text())
        seen.add(await pid_behind(url))
    assert pids[0] not in seen
    assert f"worker 0 (pid {pids[0]}) exited with code -9; starting it again" in (
        stderr.read_text()
    )
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_a_worker_failing_at_start_up_fails_the_whole_start(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with socket.socket() as taken:  # a plain listener (no SO_REUSEPORT) holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, stderr = await start_run_py(
            tmp_path, "--workers", "2", "--redis-url", redis_server.url, "--port", str(port)
        )
        assert await asyncio.wait_for(process.wait(), 60) == 1
    assert process.stdout is not None
    assert b"Serving" not in await process.stdout.read()
    log = stderr.read_text()
    assert re.search(r"worker \d exited with code 1 during start-up", log), log
    assert "address already in use" in log.lower()
