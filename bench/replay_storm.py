"""Replay storm: ten sockets resuming from 0 over a 20,000-notification inbox, in a loop, while
another client polls /healthz. Prints how fast /healthz answers, with the replay limit on (the
default) and, for comparison, set so high that nothing is truncated.

    .venv/bin/python bench/replay_storm.py                 # 10 sockets, 20,000 stored, 10 s
    .venv/bin/python bench/replay_storm.py --seconds 5

Nothing here is a test; it prints figures. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_bench import API_KEY, free_port, pct, sign_up, start


async def storm(base: str, cookie: str, sockets: int, seconds: float) -> dict[str, float]:
    stop = time.monotonic() + seconds
    replays = 0
    frames = 0
    latencies: list[float] = []

    async def resume_loop(http: aiohttp.ClientSession) -> None:
        nonlocal replays, frames
        while time.monotonic() < stop:
            async with http.ws_connect(
                f"{base}/ws?last_id=0", headers={"Origin": base, "Cookie": cookie}
            ) as ws:
                async for message in ws:
                    frames += 1
                    if '"replay_done"' in message.data:
                        replays += 1
                        break

    async def poll(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            async with http.get(f"{base}/healthz") as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        await asyncio.gather(poll(http), *(resume_loop(http) for _ in range(sockets)))
    return {
        "replays": replays,
        "frames_per_s": frames / seconds,
        "healthz_p50_ms": pct(latencies, 0.5) * 1000,
        "healthz_p99_ms": pct(latencies, 0.99) * 1000,
        "healthz_max_ms": max(latencies) * 1000,
    }


def fill(db_path: Path, user_id: int, count: int) -> None:
    with sqlite3.connect(db_path, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO notifications (user_id, type, event, key, data, created_at)"
            " VALUES (?, 'notification', 'notification', NULL, '{\"message\":\"old\"}',"
            " '2026-12-01T00:00:00Z')",
            [(user_id,)] * count,
        )


async def run_once(limit: int, stored: int, sockets: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "storm.db"
        port = free_port()
        command = [
            sys.executable, "run.py", "--port", str(port), "--db", str(db_path),
            "--api-key", API_KEY, "--argon2-memory-kib", "64", "--argon2-time-cost", "1",
            "--log-level", "WARNING", "--ws-replay-limit", str(limit),
            "--ws-max-per-user", str(sockets + 5),
        ]  # fmt: skip
        server = start("ours", command, port, "/api/publish")
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                cookie = await sign_up(http, base, 0)
            fill(db_path, 1, stored)
            return await storm(base, cookie, sockets, seconds)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--stored", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rows = {
        "replay limit 1,000 (default)": asyncio.run(
            run_once(1000, args.stored, args.sockets, args.seconds)
        ),
        "no truncation": asyncio.run(
            run_once(10 * args.stored, args.stored, args.sockets, args.seconds)
        ),
    }
    print(f"{args.sockets} sockets resuming from 0 over {args.stored:,} notifications, "
          f"{args.seconds:.0f} s each:")  # fmt: skip
    names = list(next(iter(rows.values())))
    print(f"| {'figure':<18} | " + " | ".join(f"{k:>28}" for k in rows) + " |")
    print(f"| {'-' * 18} | " + " | ".join("-" * 27 + ":" for _ in rows) + " |")
    for name in names:
        print(f"| {name:<18} | " + " | ".join(f"{r[name]:>28.1f}" for r in rows.values()) + " |")


if __name__ == "__main__":
    main()
