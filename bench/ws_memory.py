"""Where an idle socket's memory goes: tracemalloc over N sockets, ours against the bare floor.

    .venv/bin/python bench/ws_memory.py --sockets 1000

Runs the server in this process (ours through `create_app` and the same listening site as
`run.py`, or `bench/bare_server.py`'s app) with the benchmark's raw client on the same loop,
takes a tracemalloc snapshot before and after opening N sockets, and prints the Python heap
growth per socket and the allocation sites that grew most. The client side is the same for
both servers, so the difference between the two totals is the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bare_server
from ws_bench import API_KEY, Receiver, Server, open_sockets, sign_up

from app import create_app, keys
from app.config import Argon2Params, Settings
from app.serving import LimitedTCPSite


async def serve_ours(tmp: Path) -> tuple[web.AppRunner, int]:
    settings = Settings(
        db_path=tmp / "bench.db",
        secret_key=b"s" * 64,
        api_key=API_KEY,
        argon2=Argon2Params(memory_kib=64, time_cost=1),
        max_connections_per_address=0,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = LimitedTCPSite(runner, app[keys.CONNECTIONS], "127.0.0.1", 0, backlog=1024)
    await site.start()
    return runner, site.port


async def serve_bare() -> tuple[web.AppRunner, int]:
    app = web.Application()
    app[bare_server.SOCKETS] = {}
    app.router.add_get("/ws", bare_server.ws_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def site(frame: tracemalloc.Frame) -> str:
    return f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"


async def measure(name: str, n: int, top: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    runner, port = await (serve_ours(tmp) if name == "ours" else serve_bare())
    server = Server(name, None, port, "")  # type: ignore[arg-type]
    cookies: list[str] = []
    if name == "ours":
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            semaphore = asyncio.Semaphore(16)

            async def signup(i: int) -> str:
                async with semaphore:
                    return await sign_up(http, f"http://127.0.0.1:{port}", i)

            cookies = list(await asyncio.gather(*(signup(i) for i in range(n))))
    await asyncio.sleep(0.5)
    gc.collect()
    before = tracemalloc.take_snapshot()
    clients, _elapsed = await open_sockets(server, cookies, n, Receiver())
    await asyncio.sleep(1.0)
    gc.collect()
    after = tracemalloc.take_snapshot()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"\n{name}: {total / n / 1024:.2f} KiB of Python heap per socket (clients included)")
    for stat in stats[:top]:
        where = site(stat.traceback[0])
        print(f"  {stat.size_diff / n:8.0f} B  {stat.count_diff / n:5.1f} blocks  {where}")
    for client in clients:
        client.close()
    await asyncio.sleep(0.5)
    await runner.cleanup()
    by_site = {site(stat.traceback[0]): stat.size_diff / n for stat in stats}
    by_site[""] = total / n
    return by_site


async def main_async(args: argparse.Namespace) -> None:
    tracemalloc.start(1)
    figures = {name: await measure(name, args.sockets, args.top) for name in args.servers}
    if len(figures) == 2:
        ours, bare = figures["ours"], figures["bare"]
        print(f"\nours - bare: {(ours[''] - bare['']) / 1024:.2f} KiB per socket, by site:")
        diff = {key: ours.get(key, 0.0) - bare.get(key, 0.0) for key in ours.keys() | bare.keys()}
        for key, size in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[1 : args.top + 1]:
            print(f"  {size:8.0f} B  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--servers", nargs="+", default=["bare", "ours"])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
