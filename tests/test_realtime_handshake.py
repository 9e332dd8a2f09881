"""The /ws handshake: who may open a socket, from which page, how many, and the welcome."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import keys
from app.config import Settings
from app.db import Database
from tests.conftest import Browser, BrowserFactory, MakeSettings
from tests.ws_helpers import connect, eventually, metric, open_live, origin_of, receive, wait_closed

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
ALLOWED = "https://app.example.com"


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(ws_max_per_user=2, allowed_origins=(ALLOWED,))


async def handshake_status(browser: Browser, server: TestServer, **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(browser, server, **kwargs)
    return refused.value.status


async def test_a_visitor_without_a_session_cookie_is_refused_with_401_before_the_upgrade(
    new_browser: BrowserFactory, server: TestServer
) -> None:
    anonymous = await new_browser()
    response = await anonymous.get("/ws", headers={**UPGRADE, "Origin": origin_of(server)})
    assert response.status == 401
    assert "Sec-WebSocket-Accept" not in response.headers
    assert await response.json() == {"error": "sign in first"}
    assert await handshake_status(anonymous, server) == 401


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("expires_at", "2001-01-01T00:00:00Z"),
        ("last_seen_at", "2001-01-01T00:00:00Z"),
        ("revoked_at", "2001-01-01T00:00:00Z"),
    ],
    ids=["expired", "idle-too-long", "revoked"],
)
async def test_a_session_that_has_ended_is_refused_with_401(
    client_browser: Browser, server: TestServer, db: Database, column: str, value: str
) -> None:
    ws, _ = await open_live(client_browser, server)
    await ws.close()
    async with db.transaction() as tx:
        await tx.execute(
            f"UPDATE sessions SET {column} = ? WHERE user_id = ?", (value, client_browser.user_id)
        )
    assert await handshake_status(client_browser, server) == 401


async def test_a_handshake_without_an_origin_header_is_refused_with_403(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    assert await handshake_status(client_browser, server, headers={}) == 403
    assert metric(app, "ws_connections_refused_total", reason="origin") == 1


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://{host}:{port}.evil.example",
        "http://evil.example.{host}:{port}",
        "http://{host}:{port}/",
        "https://{host}:{port}",
        "http://{host}:1",
        "null",
        "",
    ],
)
async def test_a_handshake_from_another_origin_is_refused_with_403(
    client_browser: Browser, server: TestServer, app: web.Application, origin: str
) -> None:
    headers = {"Origin": origin.format(host=server.host, port=server.port)}
    assert await handshake_status(client_browser, server, headers=headers) == 403
    assert app[keys.HUB].connection_count == 0


async def test_an_origin_listed_in_allowed_origins_may_open_a_socket(
    client_browser: Browser, server: TestServer
) -> None:
    ws = await connect(client_browser, server, headers={"Origin": ALLOWED})
    welcome = await receive(ws)
    assert welcome["type"] == "welcome"
    assert welcome["user_id"] == client_browser.user_id
    await ws.close()


async def test_a_third_socket_over_the_per_user_cap_is_closed_with_1013_and_the_others_stay(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    first, _ = await open_live(client_browser, server)
    second, _ = await open_live(client_browser, server)

    third = await connect(client_browser, server)
    code, reason = await wait_closed(third)

    assert code == 1013
    assert reason == "too many connections"
    assert app[keys.HUB].connection_count == 2
    for ws in (first, second):
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong", "id": None}
    await first.close()
    await eventually(lambda: app[keys.HUB].connection_count == 1)
    fourth, _ = await open_live(client_browser, server)  # a freed slot can be used again
    await fourth.close()
    await second.close()


async def test_the_welcome_frame_gives_the_user_heartbeat_unread_count_and_newest_id(
    client_browser: Browser, stranger: Browser, server: TestServer, app: web.Application
) -> None:
    notifier = app[keys.NOTIFIER]
    assert client_browser.user_id is not None and stranger.user_id is not None
    first = await notifier.send_to_user(client_browser.user_id, "notification", {"n": 1})
    await notifier.send_to_user(client_browser.user_id, "notification", {"n": 2})
    newest = await notifier.send_to_user(client_browser.user_id, "notification", {"n": 3})
    await notifier.send_to_user(stranger.user_id, "notification", {"someone": "else"})
    await notifier.mark_read(client_browser.user_id, [first.id])

    ws = await connect(client_browser, server)
    welcome = await receive(ws)

    assert welcome == {
        "type": "welcome",
        "id": None,
        "user_id": client_browser.user_id,
        "heartbeat": 25,
        "unread": 2,
        "last_id": newest.id,
        "last_seq": newest.seq,
        "unread_messages": 0,
    }
    await ws.close()


async def test_the_welcome_frame_of_a_new_user_has_nothing_unread_and_last_id_0(
    client_browser: Browser, server: TestServer
) -> None:
    ws = await connect(client_browser, server)
    welcome = await receive(ws)
    assert (welcome["unread"], welcome["last_id"]) == (0, 0)
    await ws.close()


@pytest.mark.parametrize(
    "last_id", ["abc", "-1", "1.5", "", "1e3", "9" * 19, "%C2%B2", "%D9%A1", "0x10", "%201"]
)
async def test_a_malformed_last_id_is_refused_with_400(
    client_browser: Browser, server: TestServer, app: web.Application, last_id: str
) -> None:
    assert await handshake_status(client_browser, server, query=f"?last_id={last_id}") == 400
    assert app[keys.HUB].connection_count == 0
