"""Micro-benchmark of the fan-out hot path, in one process: the hub's `_deliver` against a bare
`send_str` loop over the same sockets.

    .venv/bin/python bench/deliver_micro.py --sockets 1000 --rounds 50

N real WebSocket connections (aiohttp server side, the benchmark's raw client on the other)
are opened on 127.0.0.1; each server-side socket is wrapped in a `Connection` registered with
a `Hub`, as the `/ws` route does, minus the handshake checks and the store. Then, in turns:

- bare: `await ws.send_str(text)` for each socket, one pre-built text (the floor);
- hub: `await hub._deliver(delivery)` of one group with a row per user (frame text rendered
  per recipient, repeat check, metrics, the write).

Only the synchronous part is timed (every write completes at once: the clients read between
rounds), so the figures are CPU per frame of each path, without the store or the HTTP request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wsclient import WSClient, connect

from app.metrics import Metrics
from app.realtime.connection import Connection
from app.realtime.hub import Hub, HubSettings
from app.realtime.messages import Delivery, DeliveryGroup

HUB = web.AppKey("hub", Hub)
SOCKETS = web.AppKey("sockets", list)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(compress=False, heartbeat=None)
    await ws.prepare(request)
    user_id = int(request.query["user"])
    conn = Connection(
        ws,
        user_id=user_id,
        session_id=user_id,
        queue_size=256,
        metrics=hub.metrics,
        on_closed=hub.unregister,
        backfill=hub.backfill,
        transport=request.transport,
    )
    hub.register(conn)
    conn.go_live()
    request.app[SOCKETS].append(ws)
    await ws.send_str('{"type":"welcome"}')
    async for _message in ws:
        pass
    await conn.finished()
    return ws


async def main_async(args: argparse.Namespace) -> None:
    metrics = Metrics()
    hub = Hub(HubSettings(), metrics)
    app = web.Application()
    app[HUB] = hub
    app[SOCKETS] = []
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    received = 0
    target = 0
    arrived = asyncio.Event()

    def on_text(_client: WSClient, _payload: bytes, _now: float) -> None:
        nonlocal received
        received += 1
        if received >= target:
            arrived.set()

    async def drained(until: int) -> None:
        """Wait until the clients have `until` frames in all."""
        nonlocal target
        target = until
        if received < until:
            arrived.clear()
            await arrived.wait()

    semaphore = asyncio.Semaphore(100)

    async def one(i: int) -> WSClient:
        async with semaphore:
            return await connect("127.0.0.1", port, f"/ws?user={i + 1}", {}, on_text)

    clients = await asyncio.gather(*(one(i) for i in range(args.sockets)))
    await drained(args.sockets)  # every welcome
    sockets: list[web.WebSocketResponse] = app[SOCKETS]
    n = len(sockets)

    data = '{"message":"Your service was booked!","ts":1764790000.123456,"round":1}'
    bare_text = '{"type":"notification","data":' + data + "}"
    seq = 0

    bare: list[float] = []
    ours: list[float] = []
    gc.collect()
    for _round in range(args.rounds):
        expected = received + n
        started = time.perf_counter()
        for ws in sockets:
            await ws.send_str(bare_text)
        bare.append(time.perf_counter() - started)
        await drained(expected)

        seq += 1
        rows = tuple((1000 * seq + i, i + 1, seq, seq) for i in range(n))
        group = DeliveryGroup(
            "notification", "notification", None, data, "2026-12-03T21:31:42Z", rows
        )
        expected = received + n
        started = time.perf_counter()
        await hub._deliver(Delivery((group,)), started)
        ours.append(time.perf_counter() - started)
        await drained(expected)

    def per_frame(samples: list[float]) -> float:
        return statistics.median(samples) / n * 1e6

    print(f"{n} sockets, {args.rounds} rounds, median per frame:")
    print(f"  bare send_str loop : {per_frame(bare):6.2f} us")
    ratio = per_frame(ours) / per_frame(bare)
    print(f"  hub._deliver       : {per_frame(ours):6.2f} us  ({ratio:.2f}x)")
    for client in clients:
        client.close()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
