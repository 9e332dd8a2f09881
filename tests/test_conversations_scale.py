"""Conversations across processes: two apps on one database with Redis between them are one
site. Messages, typing and presence reach people whichever process their sockets are on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from app import create_app, keys
from tests.conftest import Browser, MakeSettings
from tests.flows import accepted_booking
from tests.redis_fixtures import RedisServer
from tests.ws_helpers import Frame, receive, receive_until

Site = tuple[TestServer, TestServer]


@pytest.fixture
async def site(make_settings: MakeSettings, aiohttp_server: Any, redis_server: RedisServer) -> Site:
    def app() -> Any:
        return create_app(make_settings(redis_url=redis_server.url, presence_grace_seconds=0.3))

    return await aiohttp_server(app()), await aiohttp_server(app())


async def browser_on(server: TestServer, made: list[TestClient]) -> Browser:
    client = TestClient(server)
    await client.start_server()
    made.append(client)
    return Browser(client)


@pytest.fixture
async def people(site: Site) -> Any:
    """The client on process A (and a second device on B), the provider on B."""
    a, b = site
    made: list[TestClient] = []
    client_a = await browser_on(a, made)
    await client_a.signup("client@example.com", "Casey Client")
    client_b = await browser_on(b, made)
    assert (await client_b.login("client@example.com")).status == 303
    provider = await browser_on(b, made)
    await provider.signup("provider@example.com", "Pat Provider")
    booking_id = await accepted_booking(provider, client_a)
    yield client_a, client_b, provider, booking_id
    for client in made:
        await client.close()


async def live(browser: Browser) -> ClientWebSocketResponse:
    server = browser.client.server
    ws = await browser.client.ws_connect(
        "/ws", headers={"Origin": f"http://{server.host}:{server.port}"}
    )
    assert (await receive(ws))["type"] == "welcome"
    return ws


async def frames_until_pong(ws: ClientWebSocketResponse) -> list[Frame]:
    await ws.send_json({"type": "ping"})
    _, before = await receive_until(ws, "pong")
    return before


async def next_presence(ws: ClientWebSocketResponse, *, online: bool) -> Frame:
    """The next presence frame saying this (a repeat of the current state may come first:
    each process announces what it wrote)."""
    while True:
        frame, _ = await receive_until(ws, "presence")
        if frame["online"] is online:
            return frame


def only(frames: list[Frame], test: Callable[[Frame], bool]) -> list[Frame]:
    return [f for f in frames if test(f)]


async def test_a_message_reaches_both_parties_on_every_process_once(
    site: Site, people: Any
) -> None:
    client_a, client_b, provider, booking_id = people
    sender, other_device, recipient = (
        await live(client_a),
        await live(client_b),
        await live(provider),
    )
    await sender.send_json(
        {"type": "send_message", "booking_id": booking_id, "body": "hello", "client_msg_id": "x"}
    )
    await receive_until(sender, "ack")
    for ws in (sender, other_device, recipient):
        frame, _ = await receive_until(ws, "message")
        assert frame["data"]["message"]["body"] == "hello"
        later = await frames_until_pong(ws)
        assert not only(later, lambda f: f["type"] == "message" and f["data"]["type"] == "message")


async def test_typing_and_presence_cross_processes_and_looking_mutes_the_notification(
    site: Site, people: Any
) -> None:
    a, _b = site
    client_a, _client_b, provider, booking_id = people
    watcher = await live(client_a)
    await watcher.send_json({"type": "view", "booking_ids": [booking_id]})
    first, _ = await receive_until(watcher, "presence")
    assert first["online"] is False
    other = await live(provider)
    online, _ = await receive_until(watcher, "presence")
    assert (online["user_id"], online["online"]) == (provider.user_id, True)
    # The provider looks at the thread on B and types: the client on A sees it.
    await other.send_json({"type": "view", "booking_ids": [booking_id]})
    await receive_until(other, "presence")
    await other.send_json({"type": "typing", "booking_id": booking_id})
    typing, _ = await receive_until(watcher, "typing")
    assert typing["user_id"] == provider.user_id
    # Looking on B: a message sent on A raises no notification for the provider.
    await watcher.send_json(
        {"type": "send_message", "booking_id": booking_id, "body": "hi", "client_msg_id": "h"}
    )
    await receive_until(other, "message")
    db = a.app[keys.DB]
    assert (
        await db.fetch_value(
            "SELECT count(*) FROM notifications WHERE user_id = ? AND event = 'new_message'",
            (provider.user_id,),
        )
        == 0
    )
    # The provider leaves B: after the grace period A's socket hears it.
    await other.close()
    offline = await next_presence(watcher, online=False)
    assert offline["last_seen"]


async def test_a_dead_process_stops_making_people_look_online(site: Site, people: Any) -> None:
    a, b = site
    client_a, _client_b, provider, booking_id = people
    watcher = await live(client_a)
    await live(provider)
    await b.app[keys.PRESENCE].flush()
    await watcher.send_json({"type": "view", "booking_ids": [booking_id]})
    state, _ = await receive_until(watcher, "presence")
    assert state["online"] is True
    # B stops beating (as if SIGKILLed): once its heartbeat is stale, A sweeps it.
    await b.app[keys.PRESENCE].stop()
    await a.app[keys.DB].write_statement(
        "UPDATE presence_nodes SET heartbeat_at = 0 WHERE node = ?", (b.app[keys.PRESENCE].node,)
    )
    await a.app[keys.PRESENCE].beat()
    offline = await next_presence(watcher, online=False)
    assert offline["user_id"] == provider.user_id
