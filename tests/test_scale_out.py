"""Several real `run.py` processes as one site, with Redis between them: three processes on one
SQLite file, or two "hosts" (separate working directories) on one PostgreSQL database. A
publish on any process reaches a person's sockets on all of them, once each, in seq order,
through a Redis outage, a process killed mid-burst, and a reconnect storm."""

from __future__ import annotations

import asyncio
import itertools
import resource
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import AppProcess, LiveClient, publish, sign_up_and_in, user_id_of
from tests.redis_fixtures import RedisServer

COMMON = ["--ws-max-per-user", "3000", "--max-connections-per-address", "0"]


async def start_site(processes: list[AppProcess]) -> None:
    # The first creates the database and applies the migrations; the others find it ready.
    await processes[0].start()
    await asyncio.gather(*(p.start() for p in processes[1:]))


@pytest.fixture
async def site(
    tmp_path: Path, redis_server: RedisServer, database_url: str | None
) -> AsyncIterator[list[AppProcess]]:
    """SQLite: three processes on one file. PostgreSQL: two hosts, each its own directory."""
    redis = ["--redis-url", redis_server.url, *COMMON]
    if database_url is None:
        db = tmp_path / "shared" / "site.db"
        db.parent.mkdir()
        processes = [
            AppProcess(tmp_path / f"process-{n}", ["--db", str(db), *redis]) for n in range(3)
        ]
    else:
        processes = [
            AppProcess(tmp_path / f"host-{n}", ["--database-url", database_url, *redis])
            for n in range(2)
        ]
    try:
        await start_site(processes)
        yield processes
    finally:
        await asyncio.gather(*(p.stop() for p in processes))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


def assert_once_in_order(client: LiveClient, count: int) -> None:
    assert client.seqs() == list(range(1, count + 1)), client.name
    ids = [frame["id"] for frame in client.frames]
    assert ids == sorted(ids) and len(set(ids)) == count, client.name


async def publish_round_robin(
    http: aiohttp.ClientSession, processes: list[AppProcess], user_id: int, count: int
) -> list[int]:
    """`count` publishes, spread over the processes, several in flight at once."""
    targets = itertools.cycle(processes)
    batches = [publish(http, next(targets), [user_id], {"n": n}) for n in range(count)]
    ids: list[int] = []
    for start in range(0, count, 6):
        for result in await asyncio.gather(*batches[start : start + 6]):
            ids += result
    return ids


async def test_a_publish_on_any_process_reaches_every_socket_on_every_process_once_in_order(
    site: list[AppProcess], http: aiohttp.ClientSession
) -> None:
    session = await sign_up_and_in(site[0], "pat@example.com")
    try:
        user_id = await user_id_of(session, site[1])
        clients = [LiveClient(session, f"on process {n}") for n in range(len(site))]
        for client, process in zip(clients, site, strict=True):
            await client.connect(process)

        ids = await publish_round_robin(http, site, user_id, 60)

        for client in clients:
            await client.wait_seq(60)
            assert_once_in_order(client, 60)
        assert sorted(ids) == sorted(f["id"] for f in clients[0].frames)

        # Read on one device (process 0) clears it on a device connected to process 2.
        await clients[0].ws.send_json({"type": "mark_read", "ids": ids[:5]})  # type: ignore[union-attr]
        await clients[-1].wait_for(
            lambda c: any(f["type"] == "notification_read" for f in c.controls),
            what="notification_read",
        )
        [read] = [f for f in clients[-1].controls if f["type"] == "notification_read"]
        assert (sorted(read["ids"]), read["unread"]) == (sorted(ids[:5]), 55)
        for client in clients:
            await client.close()
    finally:
        await session.close()


async def healthz(
    http: aiohttp.ClientSession, process: AppProcess
) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    async with http.get(f"{process.url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as r:
        body = await r.json()
        return r.status, body, time.perf_counter() - started


async def test_a_redis_outage_of_10_s_loses_and_repeats_nothing(
    site: list[AppProcess], http: aiohttp.ClientSession, redis_server: RedisServer
) -> None:
    session = await sign_up_and_in(site[0], "pat@example.com")
    try:
        user_id = await user_id_of(session, site[0])
        clients = [LiveClient(session, f"on process {n}") for n in range(len(site))]
        for client, process in zip(clients, site, strict=True):
            await client.connect(process)
        published = 0

        async def publish_for(seconds: float) -> None:
            nonlocal published
            deadline = time.monotonic() + seconds
            for process in itertools.cycle(site):
                if time.monotonic() > deadline:
                    return
                await publish(http, process, [user_id], {"n": published})
                published += 1
                await asyncio.sleep(0.05)  # a steady stream, not a burst

        await publish_for(1.0)
        redis_server.kill()
        outage = asyncio.create_task(publish_for(10.0))
        # Degraded, not down: every process still answers and says what is wrong.
        for process in site:
            status, body, _ = await healthz(http, process)
            while body.get("broker") != "down" and not outage.done():
                await asyncio.sleep(0.1)
                status, body, _ = await healthz(http, process)
            assert (status, body["status"], body["broker"]) == (200, "degraded", "down")
        await outage
        redis_server.start()
        for process in site:
            _, body, _ = await healthz(http, process)
            while body.get("broker") != "up":
                await asyncio.sleep(0.1)
                _, body, _ = await healthz(http, process)
        await publish_for(1.0)

        for client in clients:
            await client.wait_seq(published, within=30)
            assert_once_in_order(client, published)
        for client in clients:
            await client.close()
    finally:
        await session.close()


async def test_a_process_killed_mid_burst_its_clients_resume_elsewhere_with_nothing_lost_or_twice(
    site: list[AppProcess], http: aiohttp.ClientSession
) -> None:
    session = await sign_up_and_in(site[0], "pat@example.com")
    victim, survivors = site[1], [site[0], *site[2:]]
    try:
        user_id = await user_id_of(session, site[0])
        on_victim = [LiveClient(session, f"victim client {n}") for n in range(4)]
        elsewhere = [LiveClient(session, f"survivor client {n}") for n in range(len(survivors))]
        for client in on_victim:
            await client.connect(victim)
        for client, process in zip(elsewhere, survivors, strict=True):
            await client.connect(process)

        count = 120
        burst = asyncio.create_task(publish_round_robin(http, survivors, user_id, count))
        await on_victim[0].wait_seq(10)
        victim.kill()
        for n, client in enumerate(on_victim):
            await asyncio.wait_for(client.closed.wait(), 10)
            await client.connect(survivors[n % len(survivors)])  # resumes after its last seq
        await burst

        for client in on_victim + elsewhere:
            await client.wait_seq(count)
            assert_once_in_order(client, count)
        for client in on_victim + elsewhere:
            await client.close()
    finally:
        await session.close()


class HealthWatcher(threading.Thread):
    """GET /healthz on each process in turn, every 50 ms, until stopped; keeps the slowest."""

    def __init__(self, processes: list[AppProcess]) -> None:
        super().__init__(daemon=True)
        self.processes = processes
        self.slowest = 0.0
        self.checks = 0
        self.failures: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            for process in self.processes:
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"{process.url}/healthz", timeout=5) as response:
                        response.read()
                except OSError as exc:
                    self.failures.append(f"{process.url}: {exc}")
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.checks += 1
            self._stopping.wait(0.05)

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def test_a_reconnect_storm_of_2000_sockets_keeps_healthz_under_a_second(
    site: list[AppProcess], http: aiohttp.ClientSession
) -> None:
    storm = 2000
    _raise_open_files(storm * 2 + 1000)
    session = await sign_up_and_in(site[0], "pat@example.com")
    victim, survivors = site[1], [site[0], *site[2:]]
    try:
        user_id = await user_id_of(session, site[0])
        clients = [LiveClient(session, f"client {n}") for n in range(storm)]
        for start in range(0, storm, 100):
            await asyncio.gather(*(c.connect(victim) for c in clients[start : start + 100]))
        await publish(http, survivors[0], [user_id], {"n": 0})
        for client in clients:
            await client.wait_seq(1)

        # Watched from a thread of its own: the test's event loop is busy with 2,000 clients,
        # and its delays must not count as the server's.
        watcher = HealthWatcher(survivors)
        watcher.start()
        victim.kill()
        await asyncio.gather(*(asyncio.wait_for(c.closed.wait(), 10) for c in clients))
        await asyncio.gather(
            *(c.connect(survivors[n % len(survivors)]) for n, c in enumerate(clients))
        )
        await publish(http, survivors[-1], [user_id], {"n": 1})
        for client in clients:
            await client.wait_seq(2)
        watcher.stop()

        assert watcher.checks > 2 and not watcher.failures, watcher.failures
        assert watcher.slowest < 1.0, f"/healthz took {watcher.slowest:.2f} s during the storm"
        for client in clients:
            assert_once_in_order(client, 2)
        await asyncio.gather(*(c.close() for c in clients))
    finally:
        await session.close()
