"""A real `redis-server` per test, on a free loopback port, in the test's temp directory.

No persistence (`--save ''`, `--appendonly no`): nothing outlives the test. `RedisServer.kill`
and `start` stop and restart it on the same port, as an outage would. Without `redis-server`
these tests are skipped with a message saying so; with `CI=true` that is a failure instead
(CI installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port

REDIS_SERVER = shutil.which("redis-server")
START_SECONDS = 10.0


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        assert self.process is None, "already running"
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while not _pong(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.directory / "redis.log").read_text(errors="replace")
                self.kill()
                raise RuntimeError(f"redis-server did not start:\n{output[-2000:]}")
            time.sleep(0.01)

    def kill(self) -> None:
        """Stop it at once (SIGKILL), as a crash would: clients see their connections reset."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def require_redis_server() -> None:
    if REDIS_SERVER is not None:
        return
    message = "redis-server is not installed (apt-get install redis-server)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must run the Redis tests")
    pytest.skip(message)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis_server()
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
