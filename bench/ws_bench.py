"""WebSocket benchmark: our server's deployments against a bare aiohttp floor, same workloads,
same run.

    .venv/bin/python bench/ws_bench.py                     # N = 2000 and 5000, every deployment
    .venv/bin/python bench/ws_bench.py --sockets 500       # a quick look
    .venv/bin/python bench/ws_bench.py --deployments bare in-process

Deployments (`--deployments`, default all of them, in this order):

- `bare`: `bench/bare_server.py`, a bare aiohttp WebSocket server (a dict of user to sockets,
  nothing else): the floor for our stack;
- `in-process`: `run.py` on SQLite, one process, the in-process broker (the default);
- `redis-2-workers`: `run.py --workers 2 --redis-url ...` on SQLite, with a `redis-server` this
  script starts on a free 127.0.0.1 port (no persistence, a temporary directory);
- `postgresql+redis`: `run.py --database-url postgresql://... --redis-url ...`, one process,
  with a throwaway PostgreSQL cluster made by `tests/pg.py` (`initdb` as the `postgres` user
  when run as root, a free loopback port; one fresh database per run) and a `redis-server`.

A deployment whose programs are missing (`redis-server`, PostgreSQL's `initdb` / `pg_ctl`) is
skipped with a message saying so.

Pinning (the machine this was written for has 2 cores), printed with every table:

- `bare`, `in-process`: the server on core 0, this process (the load generator) on core 1;
- `redis-2-workers`: one worker per core (worker 0 on core 0, worker 1 on core 1, every thread
  of each, pinned once they report ready), the supervisor (idle) and `redis-server` unpinned,
  the load generator on core 1, so it shares that core with worker 1: the point of this
  deployment is serving more than one core's worth, which needs two cores for the server, and
  a 2-core machine has none left for the load generator. Its CPU (printed) and the workers'
  say how they shared. (Leaving the workers unpinned was tried too: in a few runs here,
  targeted publishes ran 1.5 to 2x slower, each worker's event loop and its SQLite thread
  handing the GIL to each other across cores);
- `postgresql+redis`: the server, every PostgreSQL process and `redis-server` on core 0, the load
  generator on core 1: the whole server side gets one core, as the in-process deployment has.

"Server" CPU and memory are summed over the server's process tree (`run.py` and, with
`--workers`, the supervisor and every worker); Redis and PostgreSQL are counted apart, in
"Redis + PostgreSQL CPU". CPU is read from /proc in clock ticks (10 ms), so a small run's CPU
figures are coarse (a 0.0 there means less than one tick).

For each N and each deployment: start it, sign N users up over HTTP (ours only; logins paced
under the per-address limit), open N sockets, then:

- connect rate: sockets opened per second (100 handshakes in flight), and the server's CPU
  per handshake (upgrade, checks, welcome: until every socket has its welcome);
- memory per idle socket: server RSS growth from before to after opening them, over N;
- fan-out: one publish to all N users, ten rounds: per-socket latency p50/p99 and the time
  until the last socket has it;
- targeted publishes: 5,000 publishes of one user each, 64 in flight: throughput and
  end-to-end latency p50/p99 (the publisher puts a timestamp in `data`);
- bulk: five publishes of all N users each, back to back: delivered notifications per second;
- CPU: server CPU seconds per delivered notification over the three publish workloads (and
  Redis's and PostgreSQL's apart), and the load generator's own CPU use (a load generator near
  100 % means the figure is capped by it);
- reconnect and catch up (ours only: the floor keeps nothing to catch up from): min(N, 2,000)
  clients drop their sockets at once (closed client-side), three notifications are published
  to each while they are away, then all reconnect with `?last_seq=` (500 handshakes in flight,
  a `503` from the handshake gate retried after 1 s): the time until every one has received
  every notification it missed (each exactly once, in seq order, or the run says so), the time
  until every new socket has its welcome, and the server CPU per reconnecting client.

Nothing here is a test; it prints figures. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsclient import WSClient, connect

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-api-key-0123456789"
SERVER_CORE, LOADGEN_CORE = 0, 1
TICKS = os.sysconf("SC_CLK_TCK")
WAIT = 120.0  # no single step of a workload may take longer
START_SECONDS = 90.0  # workers are fresh interpreters ("spawn"): slower to start on a busy box
RECONNECT_IN_FLIGHT = 500  # handshakes in flight in the reconnect storm (under the backlog)

DEPLOYMENTS = ("bare", "in-process", "redis-2-workers", "postgresql+redis")
PINNING = {
    "bare": "server on core 0; load generator on core 1",
    "in-process": "server on core 0; load generator on core 1",
    "redis-2-workers": "worker 0 on core 0, worker 1 on core 1; supervisor (idle) and "
    "redis-server unpinned; load generator on core 1, shared with worker 1",
    "postgresql+redis": "server, PostgreSQL and redis-server on core 0; load generator on core 1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin(cores: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        raise_fd_limit()
        if cores:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cores)

    return setup


# --- /proc: a process and its descendants ----------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant (workers, their helpers; PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU of `pid`'s whole tree, user + system; descendants that exited and were waited for
    are in their parent's cutime / cstime, so a backend or worker that ends is not lost."""
    total = 0
    for member in process_tree(pid):
        fields = _stat(member)
        if fields is not None:
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid`'s whole tree."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def set_affinity(root: int, cores: set[int]) -> None:
    """Pin every thread of `root`'s tree (threads started later inherit it)."""
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task), cores)


def worker_pids(supervisor: int) -> list[int]:
    """The `--workers` processes (multiprocessing "spawn" children), in start order."""
    workers = []
    for pid in process_tree(supervisor):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
    return sorted(workers)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    port: int
    publish_path: str
    headers: dict[str, str] = field(default_factory=dict)
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    backing: list[int] = field(default_factory=list)  # Redis / PostgreSQL root pids

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ours(self) -> bool:
        return self.name != "bare"

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def backing_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.backing)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    name: str,
    command: list[str],
    port: int,
    publish_path: str,
    cores: set[int] | None = None,
    *,
    pinned: bool = True,
) -> Server:
    """Start a server (on `cores`, default the server core; `pinned=False`: on every core) and
    wait for its "Serving" line. Its output is read on a thread from then on (a full pipe would
    stall it) and the last lines kept, for when something goes wrong."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=pin((cores or {SERVER_CORE}) if pinned else None),
    )
    headers = {"Authorization": f"Bearer {API_KEY}"} if name != "bare" else {}
    server = Server(name, process, port, publish_path, headers)
    serving = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line.rstrip())
            if "Serving" in line:
                serving.set()
        serving.set()  # it ended: the wait below sees the exit code

    threading.Thread(target=read, name=f"{name}-output", daemon=True).start()
    if not serving.wait(START_SECONDS) or process.poll() is not None:
        process.kill()
        process.wait()
        tail = "\n".join(server.output)
        raise RuntimeError(f"{name} server did not start:\n{tail}")
    return server


def ours_command(port: int, tmp: Path, *store: str) -> list[str]:
    return [
        sys.executable, "run.py", "--port", str(port), *store,
        "--secret-key-file", str(tmp / "secret.key"),  # never data/ in the working tree
        "--api-key", API_KEY, "--argon2-memory-kib", "64", "--argon2-time-cost", "1",
        "--log-level", "WARNING",
        "--max-connections-per-address", "0",  # every bench socket comes from 127.0.0.1
        "--shutdown-spread", "0",
    ]  # fmt: skip


def start_ours(db_dir: Path) -> Server:
    port = free_port()
    command = ours_command(port, db_dir, "--db", str(db_dir / "bench.db"))
    return start("in-process", command, port, "/api/publish")


def start_bare() -> Server:
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(port)]
    return start("bare", command, port, "/publish")


class Backing:
    """Redis and PostgreSQL for the deployments that use them; None where unavailable, with
    the reason in `missing`."""

    def __init__(self, wanted: list[str]) -> None:
        self.missing: dict[str, str] = {}
        self.cluster: Any = None
        self.postmaster = 0
        if not shutil.which("redis-server"):
            reason = "redis-server is not installed (apt-get install redis-server)"
            for name in ("redis-2-workers", "postgresql+redis"):
                self.missing[name] = reason
        if "postgresql+redis" in wanted and "postgresql+redis" not in self.missing:
            self.missing.update(self._start_postgres())

    def _start_postgres(self) -> dict[str, str]:
        sys.path.insert(0, str(ROOT))
        from tests.pg import Cluster, find_bindir

        try:
            self.cluster = Cluster(find_bindir())
            self.cluster.start()
        except Exception as exc:  # Unavailable, or a cluster that would not start
            self.stop()
            return {"postgresql+redis": f"PostgreSQL cannot run here: {exc}"}
        pid_file = self.cluster.data / "postmaster.pid"
        self.postmaster = int(pid_file.read_text().split()[0])
        # Backends forked from now on inherit the postmaster's affinity.
        set_affinity(self.postmaster, {SERVER_CORE})
        return {}

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None

    @contextlib.contextmanager
    def redis(self, tmp: Path, cores: set[int] | None) -> Iterator[Any]:
        sys.path.insert(0, str(ROOT))
        from tests.redis_fixtures import RedisServer  # --save '' --appendonly no, in `tmp`

        server = RedisServer(tmp)
        server.start()
        try:
            assert server.process is not None
            if cores:
                set_affinity(server.process.pid, cores)
            yield server
        finally:
            server.stop()

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        url = str(self.cluster.create_database(migrated=False))  # the server migrates it
        try:
            yield url
        finally:
            self.cluster.drop_database(url)


@contextlib.contextmanager
def deployment(name: str, backing: Backing) -> Iterator[Server]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        with contextlib.ExitStack() as stack:
            if name == "bare":
                server = start_bare()
            elif name == "in-process":
                server = start_ours(tmp)
            elif name == "redis-2-workers":
                redis = stack.enter_context(backing.redis(tmp, None))
                port = free_port()
                command = ours_command(
                    port, tmp, "--db", str(tmp / "bench.db"),
                    "--workers", "2", "--redis-url", redis.url,
                )  # fmt: skip
                server = start(name, command, port, "/api/publish", pinned=False)
                server.backing = [redis.process.pid]
                for index, pid in enumerate(worker_pids(server.pid)):
                    set_affinity(pid, {index % (os.cpu_count() or 1)})
            elif name == "postgresql+redis":
                redis = stack.enter_context(backing.redis(tmp, {SERVER_CORE}))
                url = stack.enter_context(backing.database())
                port = free_port()
                command = ours_command(port, tmp, "--database-url", url, "--redis-url", redis.url)
                server = start(name, command, port, "/api/publish")
                server.backing = [redis.process.pid, backing.postmaster]
            else:
                raise ValueError(name)
            try:
                yield server
            except BaseException:
                print(f"{name}: the server's last output:", *server.output, sep="\n  ")
                raise
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- clients -----------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_up(http: aiohttp.ClientSession, base: str, index: int) -> str:
    """Sign a user up as a browser would; returns the Cookie header of the new session."""
    async with http.get(f"{base}/signup") as response:
        page = await response.text()
        cookie = response.cookies["session"].value
    match = _CSRF.search(page)
    assert match is not None
    form = {
        "email": f"bench{index}@example.com",
        "name": f"Bench {index}",
        "password": "bench-password",
        "csrf_token": match.group(1),
    }
    async with http.post(
        f"{base}/signup", data=form, headers={"Cookie": f"session={cookie}"},
        allow_redirects=False,
    ) as response:  # fmt: skip
        assert response.status == 303, response.status
        cookie = response.cookies["session"].value
    # Sign-up never signs in (it answers alike for a taken email): log in with the same form
    # token, which is bound to the anonymous session the cookie still carries.
    login = {"email": form["email"], "password": form["password"], "csrf_token": form["csrf_token"]}
    async with http.post(
        f"{base}/login", data=login, headers={"Cookie": f"session={cookie}"},
        allow_redirects=False,
    ) as response:  # fmt: skip
        assert response.status == 303, response.status
        return f"session={response.cookies['session'].value}"


def frame_seq(payload: bytes) -> int | None:
    """The `seq` of a notification frame (`{"id":1,"seq":2,...`), None for other frames."""
    at = payload.find(b'"seq":')
    if at < 0:
        return None
    end = at = at + 6
    while payload[end : end + 1].isdigit():
        end += 1
    return int(payload[at:end])


class Receiver:
    """Counts frames per workload, records latencies from the `ts` in their data, and the last
    seq each user's socket has had."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.latencies: list[float] = []
        self.done: asyncio.Event = asyncio.Event()
        self.last_arrival = 0.0
        self.seqs: dict[int, int] = {}

        self.welcomes = 0
        self.all_welcomed = asyncio.Event()
        self.sockets = 0

    async def welcomed(self, sockets: int) -> None:
        """Wait until every socket has had its welcome frame (and so knows its user)."""
        self.sockets = sockets
        if self.welcomes < sockets:
            await asyncio.wait_for(self.all_welcomed.wait(), WAIT)

    def reset(self, expected: int) -> None:
        self.expected, self.count, self.latencies = expected, 0, []
        self.done = asyncio.Event()

    def on_text(self, client: WSClient, payload: bytes, now: float) -> None:
        if client.user_id is None:
            match = re.search(rb'"user_id": ?(\d+)', payload)
            if match:
                client.user_id = int(match.group(1))
                self.welcomes += 1
                if self.sockets and self.welcomes >= self.sockets:
                    self.all_welcomed.set()
            return
        at = payload.find(b'"ts":')
        if at < 0:
            return
        seq = frame_seq(payload)
        if seq is not None:
            self.seqs[client.user_id] = seq
        end = at + 5
        while payload[end : end + 1] not in (b",", b"}"):
            end += 1
        self.latencies.append(now - float(payload[at + 5 : end]))
        self.count += 1
        self.last_arrival = now
        if self.count >= self.expected:
            self.done.set()


async def open_sockets(
    server: Server, cookies: list[str], n: int, receiver: Receiver
) -> tuple[list[WSClient], float]:
    origin = f"http://127.0.0.1:{server.port}"
    semaphore = asyncio.Semaphore(100)

    async def one(i: int) -> WSClient:
        async with semaphore:
            if server.ours:
                headers = {"Origin": origin, "Cookie": cookies[i]}
                path = "/ws?last_id=0"
            else:
                headers, path = {"Origin": origin}, f"/ws?user={i + 1}"
            return await connect("127.0.0.1", server.port, path, headers, receiver.on_text)

    started = time.perf_counter()
    clients = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), WAIT)
    elapsed = time.perf_counter() - started
    await receiver.welcomed(n)
    return list(clients), elapsed


async def publish(
    http: aiohttp.ClientSession, server: Server, user_ids: list[int], data: dict[str, object]
) -> None:
    body = {"user_ids": user_ids, "type": "notification", "data": data}
    url = f"http://127.0.0.1:{server.port}{server.publish_path}"
    async with http.post(url, json=body, headers=server.headers) as response:
        if response.status != 202:
            raise RuntimeError(f"publish: {response.status} {await response.text()}")


async def reconnect_storm(
    http: aiohttp.ClientSession,
    server: Server,
    clients: list[WSClient],
    cookies: list[str],
    receiver: Receiver,
    count: int,
    missed: int,
) -> dict[str, float]:
    """Drop `count` sockets at once, publish `missed` notifications to each of their users,
    reconnect them all with `?last_seq=`; figures until every one has caught up. The new
    sockets replace the old in `clients`."""
    origin = f"http://127.0.0.1:{server.port}"
    users = [client.user_id for client in clients[:count]]
    assert all(user is not None for user in users)
    before = {user: receiver.seqs.get(user, 0) for user in users if user is not None}
    for client in clients[:count]:
        client.close()
    await asyncio.sleep(1.0)  # let the server see them go
    for round_no in range(missed):
        await publish(http, server, list(before), {"missed": round_no})

    next_seq = {user: seq + 1 for user, seq in before.items()}
    waiting = set(before)
    caught_up = asyncio.Event()
    problems: list[str] = []
    last_arrival = 0.0
    last_welcome = 0.0
    retries = 0

    def on_text_for(user: int) -> Callable[[WSClient, bytes, float], None]:
        def on_text(client: WSClient, payload: bytes, now: float) -> None:
            nonlocal last_arrival, last_welcome
            if client.user_id is None:
                client.user_id = user  # the welcome: this handshake is done
                last_welcome = max(last_welcome, now)
                return
            seq = frame_seq(payload)
            if seq is None:
                return  # replay_done, ping
            if seq != next_seq[user]:
                problems.append(f"user {user}: seq {seq}, expected {next_seq[user]}")
                next_seq[user] = max(next_seq[user], seq + 1)
            else:
                next_seq[user] += 1
            if next_seq[user] > before[user] + missed and user in waiting:
                waiting.discard(user)
                last_arrival = now
                if not waiting:
                    caught_up.set()

        return on_text

    semaphore = asyncio.Semaphore(RECONNECT_IN_FLIGHT)

    async def reopen(i: int, user: int) -> WSClient:
        nonlocal retries
        headers = {"Origin": origin, "Cookie": cookies[i]}
        path = f"/ws?last_seq={before[user]}"
        async with semaphore:
            for _attempt in range(10):
                try:
                    return await connect("127.0.0.1", server.port, path, headers, on_text_for(user))
                except OSError as exc:
                    # A 503 from the handshake gate (Retry-After: 1), or refused / reset under
                    # the storm: a client would come back; any other answer is a failure.
                    if str(exc).startswith("HTTP/") and " 503 " not in str(exc):
                        raise
                    retries += 1
                    await asyncio.sleep(1.0)
            raise RuntimeError(f"user {user}: could not reconnect in 10 attempts")

    cpu_before = server.cpu()
    started = time.perf_counter()
    reopened = await asyncio.wait_for(
        asyncio.gather(*(reopen(i, user) for i, user in enumerate(before))), WAIT
    )
    await asyncio.wait_for(caught_up.wait(), WAIT)
    cpu = server.cpu() - cpu_before
    clients[:count] = reopened
    await asyncio.sleep(0.5)  # anything sent twice would arrive by now
    if problems:
        print(f"{server.name}: reconnect: {len(problems)} frames out of order or repeated, "
              f"first: {problems[:3]}", flush=True)  # fmt: skip
    return {
        "reconnect_ms": (last_arrival - started) * 1000,
        "reconnect_handshakes_ms": (last_welcome - started) * 1000,
        "reconnect_cpu_us": cpu / count * 1e6,
        "reconnect_retries": retries,
        "reconnect_problems": len(problems),
    }


async def run_server(
    server: Server, n: int, targeted: int, rounds: int, reconnect: int = 2000, missed: int = 3
) -> dict[str, float]:
    results: dict[str, float] = {}
    base = f"http://127.0.0.1:{server.port}"
    receiver = Receiver()
    connector = aiohttp.TCPConnector(limit=128)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        cookies: list[str] = []
        if server.ours:
            # Logins in flight count against the per-address limit (20), all from 127.0.0.1.
            semaphore = asyncio.Semaphore(16)

            async def signup(i: int) -> str:
                async with semaphore:
                    return await sign_up(http, base, i)

            cookies = list(
                await asyncio.wait_for(asyncio.gather(*(signup(i) for i in range(n))), 600)
            )
        await asyncio.sleep(1.0)
        rss_before = rss_bytes(server.pid)
        cpu_before = server.cpu()
        clients, elapsed = await open_sockets(server, cookies, n, receiver)
        results["connect_per_s"] = n / elapsed
        results["connect_cpu_us"] = (server.cpu() - cpu_before) / n * 1e6
        await asyncio.sleep(2.0)
        results["rss_per_socket_kib"] = (rss_bytes(server.pid) - rss_before) / n / 1024
        user_ids = [c.user_id for c in clients if c.user_id is not None]
        assert len(user_ids) == n, f"only {len(user_ids)} of {n} sockets got a welcome"

        cpu_start = server.cpu()
        backing_start = server.backing_cpu()
        gen_start = time.process_time()
        wall_start = time.perf_counter()
        delivered = 0

        # Fan-out: one publish to everyone, several rounds.
        mark = server.cpu()
        per_socket: list[float] = []
        to_all: list[float] = []
        for round_no in range(rounds):
            receiver.reset(n)
            sent = time.perf_counter()
            await publish(http, server, user_ids, {"ts": sent, "round": round_no})
            await asyncio.wait_for(receiver.done.wait(), WAIT)
            per_socket += receiver.latencies
            to_all.append(receiver.last_arrival - sent)
            delivered += n
        results["fanout_p50_ms"] = pct(per_socket, 0.50) * 1000
        results["fanout_p99_ms"] = pct(per_socket, 0.99) * 1000
        results["fanout_all_ms"] = statistics.median(to_all) * 1000
        results["fanout_cpu_us"] = (server.cpu() - mark) / (rounds * n) * 1e6
        mark = server.cpu()

        # Targeted: many small publishes of one user each.
        receiver.reset(targeted)
        semaphore = asyncio.Semaphore(64)

        async def one(user_id: int) -> None:
            async with semaphore:
                await publish(http, server, [user_id], {"ts": time.perf_counter()})

        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(one(random.choice(user_ids)) for _ in range(targeted))), WAIT
        )
        await asyncio.wait_for(receiver.done.wait(), WAIT)
        results["targeted_per_s"] = targeted / (receiver.last_arrival - started)
        results["targeted_p50_ms"] = pct(receiver.latencies, 0.50) * 1000
        results["targeted_p99_ms"] = pct(receiver.latencies, 0.99) * 1000
        delivered += targeted
        results["targeted_cpu_us"] = (server.cpu() - mark) / targeted * 1e6
        mark = server.cpu()

        # Bulk: several publishes of everyone, back to back.
        calls = 5
        receiver.reset(calls * n)
        started = time.perf_counter()
        for _ in range(calls):
            await publish(http, server, user_ids, {"ts": time.perf_counter()})
        await asyncio.wait_for(receiver.done.wait(), WAIT)
        results["bulk_per_s"] = calls * n / (receiver.last_arrival - started)
        delivered += calls * n
        results["bulk_cpu_us"] = (server.cpu() - mark) / (calls * n) * 1e6

        wall = time.perf_counter() - wall_start
        results["server_cpu_us_per_notification"] = (server.cpu() - cpu_start) / delivered * 1e6
        if server.backing:
            results["backing_cpu_us_per_notification"] = (
                (server.backing_cpu() - backing_start) / delivered * 1e6
            )
        results["loadgen_cpu_pct"] = (time.process_time() - gen_start) / wall * 100

        # Reconnect and catch up: only our server keeps anything to catch up from.
        if server.ours and reconnect > 0:
            count = min(n, reconnect)
            results["reconnect_clients"] = count
            results.update(
                await reconnect_storm(http, server, clients, cookies, receiver, count, missed)
            )
        for client in clients:
            client.close()
    return results


# --- report ------------------------------------------------------------------------------------

ROWS = (
    ("connect_per_s", "connect rate (sockets/s)", "higher"),
    ("connect_cpu_us", "server CPU per handshake (us)", "lower"),
    ("rss_per_socket_kib", "memory per idle socket (KiB)", "lower"),
    ("fanout_p50_ms", "fan-out latency p50 (ms)", "lower"),
    ("fanout_p99_ms", "fan-out latency p99 (ms)", "lower"),
    ("fanout_all_ms", "fan-out time to reach all (ms, median)", "lower"),
    ("targeted_per_s", "targeted publishes (notifications/s)", "higher"),
    ("targeted_p50_ms", "targeted end-to-end p50 (ms)", "lower"),
    ("targeted_p99_ms", "targeted end-to-end p99 (ms)", "lower"),
    ("bulk_per_s", "bulk publish (notifications/s)", "higher"),
    ("fanout_cpu_us", "server CPU per notification, fan-out (us)", "lower"),
    ("targeted_cpu_us", "server CPU per notification, targeted (us)", "lower"),
    ("bulk_cpu_us", "server CPU per notification, bulk (us)", "lower"),
    ("server_cpu_us_per_notification", "server CPU per notification, all (us)", "lower"),
    ("backing_cpu_us_per_notification", "Redis + PostgreSQL CPU per notification (us)", "lower"),
    ("reconnect_ms", "reconnect + catch up, all clients (ms)", "lower"),
    ("reconnect_handshakes_ms", "reconnect: every welcome received (ms)", "lower"),
    ("reconnect_cpu_us", "server CPU per reconnect + catch-up (us)", "lower"),
    ("reconnect_retries", "reconnect: handshakes retried (503, reset)", "info"),
    ("loadgen_cpu_pct", "load generator CPU (% of one core)", "info"),
)
LABEL = 44
COLUMN = 16


def report(n: int, figures: dict[str, dict[str, float]], missed: int) -> str:
    names = list(figures)
    ratio = "in-process" in figures and "bare" in figures
    counts = [int(f["reconnect_clients"]) for f in figures.values() if "reconnect_clients" in f]
    title = f"\nN = {n} sockets"
    if counts:
        title += f"; reconnect: {counts[0]} clients, {missed} notifications missed each"
    lines = [title]
    lines += [f"  {name}: {PINNING[name]}" for name in names]
    header = f"| {'figure':{LABEL}} |" + "".join(f" {name:>{COLUMN}} |" for name in names)
    rule = f"| {'-' * LABEL} |" + "".join(f" {'-' * COLUMN}:|" for _ in names)
    if ratio:
        header += f" {'in-process/bare':>15} |"
        rule += f" {'-' * 15}:|"
    lines += [header, rule]
    for key, label, _better in ROWS:
        if not any(key in f for f in figures.values()):
            continue
        line = f"| {label:{LABEL}} |"
        for name in names:
            value = figures[name].get(key)
            line += f" {value:{COLUMN}.1f} |" if value is not None else f" {'-':>{COLUMN}} |"
        if ratio:
            ours, bare = figures["in-process"].get(key), figures["bare"].get(key)
            text = f"{ours / bare:.2f}" if ours is not None and bare else "-"
            line += f" {text:>15} |"
        lines.append(line)
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    raise_fd_limit()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOADGEN_CORE})
    wanted = [name for name in DEPLOYMENTS if name in args.deployments]
    backing = Backing(wanted)
    failed = False
    summary: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name in wanted:
            if name in backing.missing:
                print(f"skipping {name}: {backing.missing[name]}", flush=True)
        wanted = [name for name in wanted if name not in backing.missing]
        for n in args.sockets:
            figures: dict[str, dict[str, float]] = {}
            for name in wanted:
                started = time.monotonic()
                try:
                    with deployment(name, backing) as server:
                        figures[name] = await run_server(
                            server, n, args.targeted, args.rounds, args.reconnect, args.missed
                        )
                except Exception:  # one broken deployment should not cost the others' figures
                    failed = True
                    print(f"{name} N={n} failed:\n{traceback.format_exc()}", flush=True)
                    continue
                rounded = {k: round(v, 2) for k, v in figures[name].items()}
                took = time.monotonic() - started
                print(f"{name} N={n} ({took:.0f} s): {json.dumps(rounded)}", flush=True)
            summary[str(n)] = figures
            if figures:
                print(report(n, figures, args.missed), flush=True)
    finally:
        backing.stop()
    if args.json:
        document = {"pinning": {name: PINNING[name] for name in wanted}, "sockets": summary}
        with open(args.json, "w") as handle:  # noqa: ASYNC230 (once, at the end)
            json.dump(document, handle, indent=2)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--targeted", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--deployments", nargs="+", choices=DEPLOYMENTS, default=list(DEPLOYMENTS),
        help="which to run (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--reconnect", type=int, default=2000,
        help="clients that drop and reconnect (at most N; 0: skip)",
    )  # fmt: skip
    parser.add_argument("--missed", type=int, default=3, help="notifications each one misses")
    parser.add_argument("--json", help="also write the figures to this file")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
