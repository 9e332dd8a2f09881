"""WebSocket benchmark: our server against a bare aiohttp floor, same workloads, same run.

    .venv/bin/python bench/ws_bench.py                     # N = 2000 and 5000
    .venv/bin/python bench/ws_bench.py --sockets 500       # a quick look

For each N and each server: start the server pinned to core 0 (this process, the load
generator, runs on core 1), sign N users up over HTTP (ours only), open N sockets, then:

- connect rate: sockets opened per second (100 handshakes in flight), and the server's CPU
  per handshake (upgrade, checks, welcome: until every socket has its welcome);
- memory per idle socket: server RSS growth from before to after opening them, over N;
- fan-out: one publish to all N users, ten rounds: per-socket latency p50/p99 and the time
  until the last socket has it;
- targeted publishes: 5,000 publishes of one user each, 64 in flight: throughput and
  end-to-end latency p50/p99 (the publisher puts a timestamp in `data`);
- bulk: five publishes of all N users each, back to back: delivered notifications per second;
- CPU: server CPU seconds per delivered notification over the three publish workloads, and the
  load generator's own CPU use (a load generator near 100 % means the figure is capped by it).

Nothing here is a test; it prints figures. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsclient import WSClient, connect

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-api-key-0123456789"
SERVER_CORE, LOADGEN_CORE = 0, 1
TICKS = os.sysconf("SC_CLK_TCK")
WAIT = 120.0  # no single step of a workload may take longer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin(core: int) -> Callable[[], None]:
    def setup() -> None:
        raise_fd_limit()
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {core})

    return setup


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    port: int
    publish_path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(name: str, command: list[str], port: int, publish_path: str) -> Server:
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=pin(SERVER_CORE),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    for line in process.stdout:
        if "Serving" in line:
            break
        if time.monotonic() > deadline:
            break
    else:
        raise RuntimeError(f"{name} server did not start")
    headers = {"Authorization": f"Bearer {API_KEY}"} if name == "ours" else {}
    return Server(name, process, port, publish_path, headers)


def start_ours(db_dir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable, "run.py", "--port", str(port), "--db", str(db_dir / "bench.db"),
        "--api-key", API_KEY, "--argon2-memory-kib", "64", "--argon2-time-cost", "1",
        "--log-level", "WARNING",
        "--max-connections-per-address", "0",  # every bench socket comes from 127.0.0.1
    ]  # fmt: skip
    return start("ours", command, port, "/api/publish")


def start_bare() -> Server:
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(port)]
    return start("bare", command, port, "/publish")


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


class Receiver:
    """Counts frames per workload and records latencies from the `ts` in their data."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.latencies: list[float] = []
        self.done: asyncio.Event = asyncio.Event()
        self.last_arrival = 0.0

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
            if server.name == "ours":
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


async def run_server(server: Server, n: int, targeted: int, rounds: int) -> dict[str, float]:
    results: dict[str, float] = {}
    base = f"http://127.0.0.1:{server.port}"
    receiver = Receiver()
    connector = aiohttp.TCPConnector(limit=128)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        cookies: list[str] = []
        if server.name == "ours":
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
        cpu_before = cpu_seconds(server.pid)
        clients, elapsed = await open_sockets(server, cookies, n, receiver)
        results["connect_per_s"] = n / elapsed
        results["connect_cpu_us"] = (cpu_seconds(server.pid) - cpu_before) / n * 1e6
        await asyncio.sleep(2.0)
        results["rss_per_socket_kib"] = (rss_bytes(server.pid) - rss_before) / n / 1024
        user_ids = [c.user_id for c in clients if c.user_id is not None]
        assert len(user_ids) == n, f"only {len(user_ids)} of {n} sockets got a welcome"

        cpu_start = cpu_seconds(server.pid)
        gen_start = time.process_time()
        wall_start = time.perf_counter()
        delivered = 0

        # Fan-out: one publish to everyone, several rounds.
        mark = cpu_seconds(server.pid)
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
        results["fanout_cpu_us"] = (cpu_seconds(server.pid) - mark) / (rounds * n) * 1e6
        mark = cpu_seconds(server.pid)

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
        results["targeted_cpu_us"] = (cpu_seconds(server.pid) - mark) / targeted * 1e6
        mark = cpu_seconds(server.pid)

        # Bulk: several publishes of everyone, back to back.
        calls = 5
        receiver.reset(calls * n)
        started = time.perf_counter()
        for _ in range(calls):
            await publish(http, server, user_ids, {"ts": time.perf_counter()})
        await asyncio.wait_for(receiver.done.wait(), WAIT)
        results["bulk_per_s"] = calls * n / (receiver.last_arrival - started)
        delivered += calls * n
        results["bulk_cpu_us"] = (cpu_seconds(server.pid) - mark) / (calls * n) * 1e6

        wall = time.perf_counter() - wall_start
        results["server_cpu_us_per_notification"] = (
            (cpu_seconds(server.pid) - cpu_start) / delivered * 1e6
        )
        results["loadgen_cpu_pct"] = (time.process_time() - gen_start) / wall * 100
        for client in clients:
            client.close()
    return results


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
    ("loadgen_cpu_pct", "load generator CPU (% of one core)", "info"),
)


def report(n: int, ours: dict[str, float], bare: dict[str, float]) -> str:
    lines = [
        f"\nN = {n} sockets",
        f"| {'figure':42} | {'ours':>10} | {'bare':>10} | {'ours/bare':>9} |",
        f"| {'-' * 42} | {'-' * 10}:| {'-' * 10}:| {'-' * 9}:|",
    ]
    for key, label, _better in ROWS:
        ratio = ours[key] / bare[key] if bare.get(key) else float("nan")
        lines.append(f"| {label:42} | {ours[key]:10.1f} | {bare[key]:10.1f} | {ratio:9.2f} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    raise_fd_limit()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOADGEN_CORE})
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for n in args.sockets:
        figures: dict[str, dict[str, float]] = {}
        for name in ("bare", "ours"):
            db_dir = Path(tempfile.mkdtemp(prefix="bench-"))
            server = start_bare() if name == "bare" else start_ours(db_dir)
            try:
                figures[name] = await run_server(server, n, args.targeted, args.rounds)
            finally:
                server.stop()
                shutil.rmtree(db_dir, ignore_errors=True)
            rounded = {k: round(v, 2) for k, v in figures[name].items()}
            print(f"{name} N={n}: {json.dumps(rounded)}", flush=True)
        summary[str(n)] = figures
        print(report(n, figures["ours"], figures["bare"]), flush=True)
    if args.json:
        with open(args.json, "w") as handle:  # noqa: ASYNC230 (once, at the end)
            json.dump(summary, handle, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--targeted", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
