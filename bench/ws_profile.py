"""Profile one workload of `ws_bench.py` on our server (or the bare floor) with py-spy.

    .venv/bin/python bench/ws_profile.py fanout --sockets 1000 --seconds 20
    .venv/bin/python bench/ws_profile.py connect --sockets 500 --gil
    .venv/bin/python bench/ws_profile.py targeted --server bare

The server is started and pinned as the benchmark does, N sockets are opened, then the
workload runs in a loop while `py-spy record` samples the server (py-spy needs root, for
ptrace). It prints the server's CPU per thread over the run (the event loop's, and each of
aiosqlite's threads: SQLite's work is there), then the functions of the event loop's thread
with the most samples, by inclusive time (on the stack) and by own time (at the top of it).
The raw (collapsed) stacks stay in `--out` with a .txt suffix, for a flame graph tool.

`--gil` keeps only samples that hold the GIL (closer to CPU time than wall time). Own time is
blurred when aiosqlite's threads want the GIL: handing it over is counted in whatever Python
frame the event loop's thread was running.

Workloads: `fanout` (one publish to all N users, repeatedly), `bulk` (five at once),
`targeted` (publishes of one user each, 64 in flight), `connect` (each socket closed and
opened again, 100 handshakes in flight), `idle` (nothing: the heartbeat).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_bench import (
    LOADGEN_CORE,
    TICKS,
    WAIT,
    Receiver,
    Server,
    open_sockets,
    publish,
    raise_fd_limit,
    sign_up,
    start_bare,
    start_ours,
)
from wsclient import connect

PY_SPY = Path(sys.executable).parent / "py-spy"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of `pid`, by thread name and id."""
    result: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            result[f"{name}/{task.name}"] = cpu_seconds_of(task / "stat")
    return result


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def summarize(raw: Path, top: int) -> str:
    """The functions with most samples, inclusive and own, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        if "Thread._bootstrap" in stack:
            continue  # another thread (aiosqlite's): its CPU is in the per-thread figures
        total += count
        frames = [frame.rsplit(":", 1)[0] for frame in stack.split(";")]  # drop line numbers
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples of the event loop's thread"]
    for title, counter in (("inclusive", inclusive), ("own", own)):
        lines.append(f"\n--- {title} ---")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / max(1, total):6.1f}%  {frame}")
    return "\n".join(lines)


async def workload(args: argparse.Namespace, server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    receiver = Receiver()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=128), cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        cookies: list[str] = []
        if server.name == "ours":
            semaphore = asyncio.Semaphore(16)

            async def signup(i: int) -> str:
                async with semaphore:
                    return await sign_up(http, base, i)

            cookies = list(await asyncio.gather(*(signup(i) for i in range(args.sockets))))
        clients, _elapsed = await open_sockets(server, cookies, args.sockets, receiver)
        user_ids = [c.user_id for c in clients if c.user_id is not None]
        await asyncio.sleep(1.0)

        spy = await asyncio.create_subprocess_exec(
            str(PY_SPY), "record", "--pid", str(server.pid), "--format", "raw",
            "--rate", str(args.rate), "--duration", str(args.seconds),
            "-o", str(args.out.with_suffix(".txt")), "--nonblocking",
            *(["--gil"] if args.gil else []),
            *(["--native"] if args.native else []),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        cpu_before = thread_cpu(server.pid)
        deadline = time.monotonic() + args.seconds
        rounds = 0
        if args.workload in ("fanout", "bulk"):
            calls = 1 if args.workload == "fanout" else 5
            while time.monotonic() < deadline:
                receiver.reset(calls * len(user_ids))
                for _ in range(calls):
                    await publish(http, server, user_ids, {"ts": time.perf_counter()})
                await asyncio.wait_for(receiver.done.wait(), WAIT)
                rounds += calls
        elif args.workload == "targeted":
            semaphore = asyncio.Semaphore(64)

            async def one(user_id: int) -> None:
                async with semaphore:
                    await publish(http, server, [user_id], {"ts": time.perf_counter()})

            while time.monotonic() < deadline:
                await asyncio.gather(*(one(random.choice(user_ids)) for _ in range(500)))
                rounds += 500
        elif args.workload == "connect":
            origin = f"http://127.0.0.1:{server.port}"
            semaphore = asyncio.Semaphore(100)

            async def reopen(i: int) -> None:
                async with semaphore:
                    clients[i].close()
                    if server.name == "ours":
                        headers = {"Origin": origin, "Cookie": cookies[i]}
                        path = "/ws?last_id=0"
                    else:
                        headers, path = {"Origin": origin}, f"/ws?user={i + 1}"
                    clients[i] = await connect(
                        "127.0.0.1", server.port, path, headers, receiver.on_text
                    )

            while time.monotonic() < deadline:
                await asyncio.gather(*(reopen(i) for i in range(len(clients))))
                rounds += len(clients)
        else:
            await asyncio.sleep(args.seconds)
        cpu_after = thread_cpu(server.pid)
        print(f"{args.workload}: {rounds} in {args.seconds} s; server CPU per thread (s):")
        for name, seconds in sorted(cpu_after.items()):
            used = seconds - cpu_before.get(name, 0.0)
            if used > 0:
                print(f"  {name:30} {used:7.2f}  ({used / max(1, rounds) * 1e6:.0f} us each)")
        await spy.wait()
        for client in clients:
            client.close()


async def main_async(args: argparse.Namespace) -> None:
    raise_fd_limit()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOADGEN_CORE})
    db_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    server = start_bare() if args.server == "bare" else start_ours(db_dir)
    try:
        await workload(args, server)
    finally:
        server.stop()
        shutil.rmtree(db_dir, ignore_errors=True)
    raw = args.out.with_suffix(".txt")
    if raw.exists():
        print(summarize(raw, args.top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "workload", choices=("fanout", "bulk", "targeted", "connect", "idle"), default="fanout"
    )
    parser.add_argument("--server", choices=("ours", "bare"), default="ours")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ws_profile"))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
