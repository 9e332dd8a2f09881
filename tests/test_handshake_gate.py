"""The handshake gate: a bounded number of WebSocket handshakes at once; the rest wait their
turn, and one that waits too long gets 503 instead of piling up."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app.metrics import Metrics
from app.realtime.handshake_gate import RELEASE, HandshakeGate


async def test_a_second_handshake_waits_until_the_first_is_through() -> None:
    gate = HandshakeGate(1, wait_seconds=5, metrics=Metrics())
    first = await gate.enter()
    assert first is not None
    second = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)  # let it reach the semaphore
    assert not second.done()
    first()
    first()  # giving a slot back twice gives it back once
    release = await asyncio.wait_for(second, 1)
    assert release is not None
    third = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert not third.done(), "only one slot: the double release did not add one"
    release()
    assert await asyncio.wait_for(third, 1) is not None


async def test_a_handshake_that_waits_too_long_gets_503_and_other_paths_never_wait(
    aiohttp_client: Any,
) -> None:
    metrics = Metrics()
    gate = HandshakeGate(1, wait_seconds=0.2, metrics=metrics)
    welcomed = asyncio.Event()
    hold = asyncio.Event()

    async def ws(request: web.Request) -> web.Response:
        welcomed.set()
        await hold.wait()  # a handshake still in progress: its slot is taken
        request[RELEASE]()
        return web.Response(text="through")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="page")

    app = web.Application(middlewares=[gate.middleware("/ws")])
    app.router.add_get("/ws", ws)
    app.router.add_get("/page", page)
    client = await aiohttp_client(app)

    first = asyncio.create_task(client.get("/ws"))
    await asyncio.wait_for(welcomed.wait(), 5)
    assert await (await client.get("/page")).text() == "page"
    refused = await client.get("/ws")
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    refusals = metrics.registry.get_sample_value("ws_connections_refused_total", {"reason": "busy"})
    assert refusals == 1
    hold.set()
    assert await (await first).text() == "through"
    welcomed.clear()
    hold.clear()
    hold.set()
    assert (await client.get("/ws")).status == 200  # the slot came back
