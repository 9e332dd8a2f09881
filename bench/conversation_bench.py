"""Conversation benchmark: messages between the two parties of a booking, over real sockets,
through one conversation and across many at once.

    .venv/bin/python bench/conversation_bench.py                   # 1,000 conversations
    .venv/bin/python bench/conversation_bench.py --quick           # a small smoke run
    .venv/bin/python bench/conversation_bench.py --py-spy /tmp/conv.txt    # + hot functions
    .venv/bin/python bench/conversation_bench.py --deployment redis

The server is `run.py` on a temporary SQLite database, started as bench/ws_bench.py starts it
(`--deployment in-process`: one process on core 0, this load generator on core 1; `redis`:
`--workers 2 --redis-url` with a `redis-server` on a free port, one worker per core). Setup goes
through the site's own HTTP routes, concurrently: every person signs up and logs in as
bench/ws_bench.py does it, each provider offers one service (`POST /services/new`) and each
client books one (`POST /services/{id}/book`), so there is one provider and one client per
booking. Bookings stay pending: a pending booking's conversation is open.

Workloads (sockets are bench/wsclient.py's; every socket sends `view` for its booking first, as
the booking page does, so the recipient counts as looking at the thread and no `new_message`
notification is made; `--not-viewing` measures the other path):

- one conversation, alternating: the client and the provider each have a sending socket and a
  second device (another socket of the same person); they take turns, one message in flight;
- one conversation, window: the same, `--window` messages in flight, senders alternating;
- N conversations (`--conversations`, default 1,000): each party one socket; `--messages`
  messages (default 20 per conversation) spread round-robin over the conversations (senders
  alternating in each), once for each `--window-many` (default 10 and 200 in flight: light
  load, and saturation), on the same sockets.

Latency is from just before the `send_message` frame is written to the `message` stream frame
(or the `ack`) arriving: at the recipient's sockets, at the sender's second device, and back at
the sending socket itself. A message is done once every socket of both parties has it; the
throughput is messages over the time from the first send to the last message done. This
process does not collect garbage while it measures (a full collection here took up to 160 ms,
which showed as server latency).

Server CPU is read from /proc, also per thread: the event loop (each process's main thread)
and the rest (aiosqlite's one thread per SQLite connection). `--py-spy FILE` records the server
with py-spy (`--nonblocking`, so the figures stay near the unprofiled ones) during the pass with
the largest window, and prints how busy each thread was and where the event loop spent it.

Limits, which this script does not raise: a person may send `Settings.messages_per_minute`
(30) messages a minute, and a socket 20 frames a second with bursts of 40
(`Settings.ws_rate_per_second`, `ws_rate_burst`). The benchmark keeps the defaults a site runs
with (`--messages-per-minute` could raise the first; the second has no flag), so no person
sends more than 30 messages in a run: one conversation is measured in bursts of
60 (30 each, within both limits) on `--rounds` different bookings, and the many-conversation
workload spreads its messages over 2 x N people (`--messages` times the number of passes at
most 2 x N x 30). The whole run is bounded by `--timeout` (default 30 minutes).

Nothing here is a test; it prints figures. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import gc
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ws_bench import (
    LOADGEN_CORE,
    PINNING,
    ROOT,
    TICKS,
    Backing,
    Server,
    deployment,
    pct,
    process_tree,
    sign_up,
    worker_pids,
)
from wsclient import WSClient, connect

from app.config import Settings

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}
PER_PERSON = int(_DEFAULTS["messages_per_minute"])  # type: ignore[call-overload]
FRAME_BURST = int(_DEFAULTS["ws_rate_burst"])  # type: ignore[call-overload]
FRAME_RATE = float(_DEFAULTS["ws_rate_per_second"])  # type: ignore[arg-type]

WAIT = 120.0  # no single step may take longer
DEPLOYMENTS = {"in-process": "in-process", "redis": "redis-2-workers"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LOCATION_ID = re.compile(r"/(\d+)$")
_RUNS = itertools.count(1)


# --- setup over HTTP ---------------------------------------------------------------------------


async def csrf_token(http: aiohttp.ClientSession, url: str, cookie: str) -> str:
    async with http.get(url, headers={"Cookie": cookie}) as response:
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status}")
        match = _CSRF.search(await response.text())
    if match is None:
        raise RuntimeError(f"GET {url}: no csrf_token")
    return match.group(1)


async def post_form(
    http: aiohttp.ClientSession, url: str, cookie: str, form: dict[str, str]
) -> int:
    """POST a form as a browser would; returns the id at the end of the 303's Location."""
    async with http.post(
        url, data=form, headers={"Cookie": cookie}, allow_redirects=False
    ) as response:
        if response.status != 303:
            raise RuntimeError(f"POST {url}: {response.status} {(await response.text())[:300]}")
        match = _LOCATION_ID.search(response.headers["Location"])
    if match is None:
        raise RuntimeError(f"POST {url}: Location {response.headers['Location']}")
    return int(match.group(1))


@dataclasses.dataclass
class Booking:
    booking_id: int
    client_cookie: str
    provider_cookie: str


async def make_bookings(base: str, count: int) -> tuple[list[Booking], float]:
    """`count` bookings, each between a provider and a client of its own, through HTTP."""
    started = time.perf_counter()
    slot = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT10:00")
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        # Logins in flight count against the per-address limit (20), all from 127.0.0.1.
        logins = asyncio.Semaphore(16)
        others = asyncio.Semaphore(48)

        async def one(i: int) -> Booking:
            async with logins:
                provider = await sign_up(http, base, 2 * i)
                client = await sign_up(http, base, 2 * i + 1)
            async with others:
                token = await csrf_token(http, f"{base}/services/new", provider)
                service_id = await post_form(
                    http,
                    f"{base}/services/new",
                    provider,
                    {
                        "name": f"Bench service {i}",
                        "description": "A service to talk about.",
                        "price": "100.00",
                        "duration_minutes": "60",
                        "online": "1",
                        "csrf_token": token,
                    },
                )
                token = await csrf_token(http, f"{base}/services/{service_id}", client)
                booking_id = await post_form(
                    http,
                    f"{base}/services/{service_id}/book",
                    client,
                    {"scheduled_at": slot, "note": "", "csrf_token": token},
                )
            return Booking(booking_id, client, provider)

        bookings = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 900)
    return list(bookings), time.perf_counter() - started


# --- sockets and the messages in flight ---------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Sent:
    sent_at: float
    sender: int
    via: WSClient
    waiting: int  # sockets that have not had its message frame yet
    done: asyncio.Future[None]


class Traffic:
    """Every socket's frames: welcomes, presence answers, acks, message frames, errors."""

    def __init__(self) -> None:
        self.user_of: dict[WSClient, int] = {}
        self.viewed: dict[WSClient, asyncio.Future[None]] = {}
        self.reset()

    def reset(self) -> None:
        self.sent: dict[str, Sent] = {}
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.repeats = 0
        self.new_message = 0  # `new_message` notifications (the recipient was not looking)
        self.last_done = 0.0

    async def open(self, port: int, cookie: str) -> WSClient:
        headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie}
        welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_text(client: WSClient, payload: bytes, now: float) -> None:
            self.on_text(client, payload, now)
            if client in self.user_of and not welcomed.done():
                welcomed.set_result(None)

        client = await connect("127.0.0.1", port, "/ws", headers, on_text)
        await asyncio.wait_for(welcomed, WAIT)
        return client

    async def view(self, client: WSClient, booking_id: int) -> None:
        """Say the socket shows this conversation; wait for the presence answer."""
        self.viewed[client] = asyncio.get_running_loop().create_future()
        client.send_text(json.dumps({"type": "view", "booking_ids": [booking_id]}).encode())
        await asyncio.wait_for(self.viewed[client], WAIT)

    def send(
        self, via: WSClient, booking_id: int, msg_id: str, deliveries: int
    ) -> asyncio.Future[None]:
        """Send a message; the future is done once `deliveries` sockets have its frame."""
        done = asyncio.get_running_loop().create_future()
        frame = {
            "type": "send_message",
            "booking_id": booking_id,
            "body": f"Message {msg_id}: see you at ten.",
            "client_msg_id": msg_id,
        }
        payload = json.dumps(frame).encode()
        self.sent[msg_id] = Sent(time.perf_counter(), self.user_of[via], via, deliveries, done)
        via.send_text(payload)
        return done

    def on_text(self, client: WSClient, payload: bytes, now: float) -> None:
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind == "welcome":
            client.user_id = int(frame["user_id"])
            self.user_of[client] = client.user_id
        elif kind == "presence":
            future = self.viewed.get(client)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == "ack":
            sent = self.sent.get(frame.get("client_msg_id"))
            if sent is not None:
                self.latency["ack"].append(now - sent.sent_at)
        elif kind == "message" and frame["data"].get("type") == "message":
            self.on_message(client, frame["data"]["message"], now)
        elif kind == "notification" and frame["data"].get("type") == "new_message":
            self.new_message += 1
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1
            sent = self.sent.get(frame.get("client_msg_id"))
            if sent is not None and not sent.done.done():
                sent.done.set_exception(RuntimeError(f"refused: {frame}"))

    def on_message(self, client: WSClient, message: dict[str, object], now: float) -> None:
        sent = self.sent.get(str(message.get("client_msg_id")))
        if sent is None:
            return
        if sent.waiting <= 0:
            self.repeats += 1
            return
        elapsed = now - sent.sent_at
        if self.user_of[client] != sent.sender:
            self.latency["recipient"].append(elapsed)
        elif client is sent.via:
            self.latency["echo"].append(elapsed)
        else:
            self.latency["other_device"].append(elapsed)
        sent.waiting -= 1
        if sent.waiting == 0 and not sent.done.done():
            self.last_done = now
            sent.done.set_result(None)


@dataclasses.dataclass
class Party:
    user_id: int
    sockets: list[WSClient]  # the first one sends


async def open_party(traffic: Traffic, port: int, cookie: str, devices: int) -> Party:
    sockets = [await traffic.open(port, cookie) for _ in range(devices)]
    user = traffic.user_of[sockets[0]]
    return Party(user, sockets)


async def run_messages(
    traffic: Traffic,
    work: list[tuple[Party, Party, int]],
    count: int,
    window: int,
) -> dict[str, float]:
    """Send `count` messages over the conversations in `work` (round-robin; in each, the
    client and the provider take turns), `window` in flight; figures once all are done."""
    traffic.reset()
    tag = next(_RUNS)  # client_msg_ids never repeat within a run of this script
    slots = asyncio.Semaphore(window)
    pending: list[asyncio.Future[None]] = []
    failures: list[BaseException] = []
    first = time.perf_counter()

    def finished(future: asyncio.Future[None]) -> None:
        slots.release()
        if future.exception() is not None:
            failures.append(future.exception())  # type: ignore[arg-type]

    async def send_all() -> None:
        nonlocal first
        for i in range(count):
            client, provider, booking_id = work[i % len(work)]
            turn = (i // len(work)) % 2
            sender, recipient = (client, provider) if turn == 0 else (provider, client)
            await slots.acquire()
            if failures:
                break
            if i == 0:
                first = time.perf_counter()
            deliveries = len(sender.sockets) + len(recipient.sockets)
            done = traffic.send(sender.sockets[0], booking_id, f"r{tag}-{i}", deliveries)
            done.add_done_callback(finished)
            pending.append(done)
        await asyncio.gather(*pending, return_exceptions=True)

    # A socket the server closes (slow consumer, too many frames) fails the run at once.
    closures = [s.closed for c, p, _b in work for s in c.sockets + p.sockets]
    # No garbage collection here while measuring: a full collection over this process's
    # sockets and futures took 60 to 160 ms, and showed as a server stall in the latencies.
    gc.collect()
    gc.disable()
    sending = asyncio.ensure_future(send_all())
    limit = WAIT + count / 20  # at least 20 messages a second, or something is wrong
    try:
        await asyncio.wait([sending, *closures], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sending.cancel()
        gc.enable()
    if not sending.done() or sending.cancelled():
        finished_count = sum(1 for f in pending if f.done())
        if any(c.done() for c in closures):
            raise RuntimeError(
                f"the server closed a socket mid-run ({finished_count} of {count} done)"
            )
        raise RuntimeError(f"{finished_count} of {count} messages done in {limit:.0f} s")
    if failures:
        raise RuntimeError(f"{len(failures)} messages failed, first: {failures[0]}")
    elapsed = traffic.last_done - first
    await asyncio.sleep(0.2)  # anything delivered twice would arrive by now
    results = {"messages": count, "elapsed_s": elapsed, "per_s": count / elapsed}
    for kind, values in traffic.latency.items():
        results[f"{kind}_p50_ms"] = pct(values, 0.50) * 1000
        results[f"{kind}_p99_ms"] = pct(values, 0.99) * 1000
    results["repeats"] = traffic.repeats
    results["errors"] = sum(traffic.errors.values())
    results["new_message"] = traffic.new_message
    return results


# --- workloads ---------------------------------------------------------------------------------


async def one_conversation(
    server: Server, traffic: Traffic, bookings: list[Booking], window: int, viewing: bool
) -> dict[str, float]:
    """A burst of 2 x PER_PERSON messages in each of these conversations, one at a time:
    each party has a sending socket and a second device."""
    rates: list[float] = []
    latency: dict[str, list[float]] = collections.defaultdict(list)
    cpu = 0.0
    total = 0
    elapsed = 0.0
    new_message = 0
    for booking in bookings:
        client = await open_party(traffic, server.port, booking.client_cookie, 2)
        provider = await open_party(traffic, server.port, booking.provider_cookie, 2)
        if viewing:
            for socket_ in client.sockets + provider.sockets:
                await traffic.view(socket_, booking.booking_id)
        await asyncio.sleep(0.1)
        mark = server.cpu()
        figures = await run_messages(
            traffic, [(client, provider, booking.booking_id)], 2 * PER_PERSON, window
        )
        cpu += server.cpu() - mark
        rates.append(figures["per_s"])
        total += int(figures["messages"])
        elapsed += figures["elapsed_s"]
        new_message += int(figures["new_message"])
        for kind, values in traffic.latency.items():
            latency[kind] += values
        if figures["repeats"] or figures["errors"]:
            print(f"  booking {booking.booking_id}: {figures}", flush=True)
        for socket_ in client.sockets + provider.sockets:
            socket_.close()
    results = {
        "conversations": len(bookings),
        "messages": total,
        "per_s": statistics.median(rates),
        "per_s_min": min(rates),
        "per_s_max": max(rates),
        "elapsed_s": elapsed,
        "server_cpu_us": cpu / total * 1e6,
        "new_message": new_message,
    }
    for kind, values in latency.items():
        results[f"{kind}_p50_ms"] = pct(values, 0.50) * 1000
        results[f"{kind}_p99_ms"] = pct(values, 0.99) * 1000
    return results


async def many_conversations(
    server: Server,
    traffic: Traffic,
    bookings: list[Booking],
    messages: int,
    windows: list[int],
    viewing: bool,
    profile: Path | None,
) -> dict[str, dict[str, float]]:
    """Each party of every booking with one socket; `messages` spread over all of them, once
    per window (the same sockets). py-spy records the pass with the largest window."""
    semaphore = asyncio.Semaphore(100)

    async def parties(booking: Booking) -> tuple[Party, Party, int]:
        async with semaphore:
            client = await open_party(traffic, server.port, booking.client_cookie, 1)
            provider = await open_party(traffic, server.port, booking.provider_cookie, 1)
            if viewing:
                await traffic.view(client.sockets[0], booking.booking_id)
                await traffic.view(provider.sockets[0], booking.booking_id)
            return client, provider, booking.booking_id

    started = time.perf_counter()
    work = list(await asyncio.wait_for(asyncio.gather(*(parties(b) for b in bookings)), 600))
    opened = time.perf_counter() - started
    columns: dict[str, dict[str, float]] = {}
    for window in windows:
        await asyncio.sleep(1.0)
        profiled = profile is not None and window == max(windows)
        spy = start_py_spy(server, profile) if profile and profiled else None
        spied = 0.0
        mark = server.cpu()
        threads = thread_cpu(server.pid)
        gen = time.process_time()
        try:
            results = await run_messages(traffic, work, messages, window)
        finally:
            if spy is not None:
                spied = stop_py_spy(spy)
        results["server_cpu_us"] = (server.cpu() - mark) / messages * 1e6
        after = thread_cpu(server.pid)
        results["loop_cpu_us"] = (after[0] - threads[0]) / messages * 1e6
        results["threads_cpu_us"] = (after[1] - threads[1]) / messages * 1e6
        results["loadgen_cpu_pct"] = (time.process_time() - gen) / results["elapsed_s"] * 100
        results["conversations"] = len(bookings)
        if not columns:
            results["sockets_open_s"] = opened
        name = f"{len(bookings)} convs, window {window}" + (" (py-spy)" if profiled else "")
        columns[name] = results
        print(f"{name}: {_rounded(results)}", flush=True)
        if spied:
            results["py_spy_s"] = spied
    for client, provider, _booking in work:
        for socket_ in client.sockets + provider.sockets:
            socket_.close()
    return columns


# --- py-spy ------------------------------------------------------------------------------------


PY_SPY_RATE = 100  # samples a second per thread
_LOOP_FRAMES = ("Handle._run (asyncio/", "BaseEventLoop.run_forever (asyncio/")


def start_py_spy(server: Server, path: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Record the server (every worker) until stopped, as collapsed stacks per thread;
    `--nonblocking`: the server is never paused (its figures stay near the unprofiled ones)."""
    pids = worker_pids(server.pid) or [server.pid]
    command = [
        str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(server.pid),
        "--format", "raw", "--rate", str(PY_SPY_RATE), "--nonblocking", "--threads",
        "--output", str(path),
    ]  # fmt: skip
    if len(pids) > 1:
        command.append("--subprocesses")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # it attaches
    return process, time.perf_counter()


def stop_py_spy(spy: tuple[subprocess.Popen[bytes], float]) -> float:
    """Stop it (it writes what it has); returns the seconds it recorded."""
    process, started = spy
    seconds = time.perf_counter() - started
    process.send_signal(signal.SIGINT)
    try:
        _out, errors = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _out, errors = process.communicate()
    if process.returncode not in (0, -signal.SIGINT):
        print(f"py-spy exited with {process.returncode}: {errors.decode()[-500:]}", flush=True)
    return seconds


def _frame_name(frame: str, line: bool = False) -> str:
    """`send (/work/main/app/conversations/service.py:95)` -> `send (app/conversations/
    service.py)`: per function (`line`: per line)."""
    frame = frame.strip() if line else re.sub(r":\d+\)$", ")", frame.strip())
    frame = frame.replace(f"{ROOT}/", "")
    return re.sub(r"\(.*?site-packages/", "(", frame)


def hot_functions(path: Path, seconds: float, top: int = 15) -> str:
    """From py-spy's collapsed stacks: how busy each thread was; in the event loop threads
    (MainThread, every worker's) the functions it was in (self time) and the app functions
    it was in or under (the innermost `app/` frame of each sample, below the loop's own
    frames: the library and event-loop time each one causes); in the other threads, the
    lines they were on. Samples in the selector (waiting for sockets, which py-spy does not
    always see as idle) are counted apart."""
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    lines_of_others: collections.Counter[str] = collections.Counter()
    loop = polling = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        at = next((i for i, f in enumerate(frames) if f.startswith("thread (")), None)
        if not count_text.isdigit() or at is None or at + 1 >= len(frames):
            continue
        count = int(count_text)
        thread = re.sub(r"^thread \(\d+\): ", "", frames[at])
        threads[thread] += count
        if thread != "MainThread":
            lines_of_others[f"{thread}: {_frame_name(frames[-1], line=True)}"] += count
            continue
        names = [_frame_name(f) for f in frames[at + 1 :]]
        if names[-1].startswith("EpollSelector.select "):
            polling += count
            continue
        loop += count
        own[names[-1]] += count
        # Below the loop's own frames (a worker's `worker_main` runs the loop: not its cost).
        loop_frames = [i for i, name in enumerate(names) if name.startswith(_LOOP_FRAMES)]
        app = [name for name in names[max(loop_frames, default=0) :] if "(app/" in name]
        under[app[-1] if app else "(no app frame: event loop, aiohttp)"] += count
    if not loop:
        return "py-spy: no samples of the event loop"
    possible = seconds * PY_SPY_RATE / 100  # samples per percent of one core

    def share(counter: collections.Counter[str], whole: float) -> list[str]:
        return [f"  {n / whole:5.1f} %  {name}" for name, n in counter.most_common(top)]

    out = [
        f"py-spy, {seconds:.0f} s at {PY_SPY_RATE} Hz, samples of running threads (its idle "
        "detection is not perfect: a thread waiting on a queue is sometimes counted):",
        "threads, % of one core:",
        *share(threads, possible),
        f"  (of MainThread: {polling / possible:.1f} % in EpollSelector.select, counted apart)",
        "event loop thread(s) outside the selector, self time, % of those samples:",
        *share(own, loop / 100),
        "the same by innermost app function (its own time and the library time under it):",
        *share(under, loop / 100),
        "other threads, by line, % of one core:",
        *share(lines_of_others, possible),
    ]
    return "\n".join(out)


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the main threads (event loops) of `pid`'s tree, and of its other
    threads (SQLite connections, the executor)."""
    main = other = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{member}/task"):
                with contextlib.suppress(OSError, IndexError):
                    stat = Path(f"/proc/{member}/task/{task}/stat").read_text()
                    ticks = sum(int(v) for v in stat.rsplit(")", 1)[1].split()[11:13])
                    if int(task) == member:
                        main += ticks
                    else:
                        other += ticks
    return main / TICKS, other / TICKS


# --- report ------------------------------------------------------------------------------------

ROWS = (
    ("conversations", "conversations", ".0f"),
    ("messages", "messages", ".0f"),
    ("per_s", "messages/s (one conversation: median of rounds)", ".0f"),
    ("per_s_min", "messages/s, slowest round", ".0f"),
    ("per_s_max", "messages/s, fastest round", ".0f"),
    ("elapsed_s", "time sending (s, all rounds)", ".2f"),
    ("recipient_p50_ms", "to the recipient's sockets, p50 (ms)", ".2f"),
    ("recipient_p99_ms", "to the recipient's sockets, p99 (ms)", ".2f"),
    ("other_device_p50_ms", "to the sender's other device, p50 (ms)", ".2f"),
    ("other_device_p99_ms", "to the sender's other device, p99 (ms)", ".2f"),
    ("echo_p50_ms", "back to the sending socket, p50 (ms)", ".2f"),
    ("echo_p99_ms", "back to the sending socket, p99 (ms)", ".2f"),
    ("ack_p50_ms", "ack, p50 (ms)", ".2f"),
    ("ack_p99_ms", "ack, p99 (ms)", ".2f"),
    ("server_cpu_us", "server CPU per message (us)", ".0f"),
    ("loop_cpu_us", "  of which event loop threads (us)", ".0f"),
    ("threads_cpu_us", "  of which other threads: SQLite... (us)", ".0f"),
    ("new_message", "new_message notifications received", ".0f"),
    ("loadgen_cpu_pct", "load generator CPU (% of one core)", ".0f"),
    ("sockets_open_s", "opening the sockets + view (s)", ".1f"),
)
LABEL = 48
COLUMN = 22


def report(columns: dict[str, dict[str, float]]) -> str:
    names = list(columns)
    lines = [
        f"| {'figure':{LABEL}} |" + "".join(f" {name:>{COLUMN}} |" for name in names),
        f"| {'-' * LABEL} |" + "".join(f" {'-' * (COLUMN - 1)}:|" for _ in names),
    ]
    for key, label, spec in ROWS:
        if not any(key in figures for figures in columns.values()):
            continue
        line = f"| {label:{LABEL}} |"
        for name in names:
            value = columns[name].get(key)
            text = "-" if value is None else format(value, spec)
            line += f" {text:>{COLUMN}} |"
        lines.append(line)
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOADGEN_CORE})
    name = DEPLOYMENTS[args.deployment]
    backing = Backing([name])
    if name in backing.missing:
        print(f"cannot run {args.deployment}: {backing.missing[name]}", flush=True)
        return 1
    passes = len(args.window_many)
    per_person = passes * -(-args.messages // (2 * args.conversations))
    print(f"deployment {args.deployment}: {PINNING[name]}", flush=True)
    print(
        f"limits: {PER_PERSON} messages a minute per person (Settings.messages_per_minute) and "
        f"{FRAME_RATE:.0f} frames a second per socket, bursts of {FRAME_BURST} "
        "(Settings.ws_rate_per_second / ws_rate_burst): the defaults a site runs with, which "
        f"no person exceeds here: one conversation "
        f"= a burst of {2 * PER_PERSON} ({PER_PERSON} from each party) on each of "
        f"{args.rounds} bookings per workload; {args.conversations:,} conversations = "
        f"{args.messages:,} messages over {2 * args.conversations:,} people per pass, "
        f"{passes} pass(es), at most {per_person} from each person",
        flush=True,
    )
    if not args.viewing:
        print("sockets do not view their thread: each message also makes a new_message")
    rounds = 2 * args.rounds
    with deployment(name, backing) as server:
        base = f"http://127.0.0.1:{server.port}"
        bookings, took = await make_bookings(base, rounds + args.conversations)
        print(
            f"setup: {2 * len(bookings):,} people signed up and logged in, "
            f"{len(bookings):,} services offered and booked, over HTTP, in {took:.1f} s "
            f"({len(bookings) / took:.0f} bookings/s)",
            flush=True,
        )
        traffic = Traffic()
        columns: dict[str, dict[str, float]] = {}
        started = time.monotonic()
        columns["1 conv, alternating"] = await one_conversation(
            server, traffic, bookings[: args.rounds], 1, args.viewing
        )
        print(f"one conversation, alternating ({time.monotonic() - started:.0f} s): "
              f"{_rounded(columns['1 conv, alternating'])}", flush=True)  # fmt: skip
        started = time.monotonic()
        key = f"1 conv, window {args.window}"
        columns[key] = await one_conversation(
            server, traffic, bookings[args.rounds : rounds], args.window, args.viewing
        )
        print(f"one conversation, window {args.window} ({time.monotonic() - started:.0f} s): "
              f"{_rounded(columns[key])}", flush=True)  # fmt: skip
        columns.update(
            await many_conversations(
                server,
                traffic,
                bookings[rounds:],
                args.messages,
                args.window_many,
                args.viewing,
                args.py_spy,
            )
        )
        if traffic.errors:
            print(f"error frames: {dict(traffic.errors)}")
    print()
    print(f"Conversations, {args.deployment} ({PINNING[name]})")
    print(report(columns), flush=True)
    spied = [c["py_spy_s"] for c in columns.values() if "py_spy_s" in c]
    if args.py_spy and args.py_spy.exists() and spied:
        print()
        print(hot_functions(args.py_spy, spied[0]))
    return 0


def _rounded(figures: dict[str, float]) -> str:
    return json.dumps({k: round(v, 2) for k, v in figures.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument(
        "--messages", type=int, default=None,
        help="messages over the N conversations (default 20 per conversation)",
    )  # fmt: skip
    parser.add_argument("--deployment", choices=list(DEPLOYMENTS), default="in-process")
    parser.add_argument(
        "--rounds", type=int, default=10,
        help="bookings each one-conversation workload bursts through",
    )  # fmt: skip
    parser.add_argument("--window", type=int, default=16, help="in flight, one conversation")
    parser.add_argument(
        "--window-many", type=int, nargs="+", default=[10, 200],
        help="in flight, N conversations: one pass of --messages per value",
    )  # fmt: skip
    parser.add_argument(
        "--not-viewing", dest="viewing", action="store_false",
        help="sockets do not send `view`: every message also makes a new_message notification",
    )  # fmt: skip
    parser.add_argument(
        "--py-spy", type=Path, default=None,
        help="record the server with py-spy (collapsed stacks) during the N-conversation "
        "workload, to this file, and print its hottest functions",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="the whole run, in seconds")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.rounds = min(args.conversations, 50), min(args.rounds, 3)
        args.window_many = [min(w, args.conversations) for w in args.window_many]
    if args.conversations < 1 or args.rounds < 1 or args.window < 1 or min(args.window_many) < 1:
        parser.error("--conversations, --rounds, --window and --window-many must be at least 1")
    if args.messages is None:
        args.messages = 20 * args.conversations
    passes = len(args.window_many)
    most = 2 * args.conversations * PER_PERSON // passes
    if not 0 < args.messages <= most:
        parser.error(
            f"--messages must be 1 to {most:,}: {args.conversations:,} conversations' "
            f"{2 * args.conversations:,} people may send {PER_PERSON} messages a minute each, "
            f"over {passes} pass(es)"
        )
    try:
        code = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except TimeoutError:
        print(f"the run took longer than --timeout {args.timeout:.0f} s", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
