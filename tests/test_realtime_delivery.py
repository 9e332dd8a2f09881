"""Live delivery: every device of the person, nobody else, the exact frame, after commit only."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from app import keys
from app.db import Database
from tests.conftest import Browser, BrowserFactory
from tests.flows import book, create_service
from tests.ws_helpers import open_live, receive, receive_text

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def devices_of(
    browser: Browser, new_browser: BrowserFactory, server: TestServer, email: str
) -> list[ClientWebSocketResponse]:
    """Two sockets on the browser's session, and one on a second login (another device)."""
    other_device = await new_browser()
    assert (await other_device.login(email)).status == 303
    sockets = [await open_live(b, server) for b in (browser, browser, other_device)]
    return [ws for ws, _ in sockets]


async def test_every_socket_of_every_session_of_the_user_gets_the_same_frame(
    provider: Browser, new_browser: BrowserFactory, server: TestServer, app: web.Application
) -> None:
    sockets = await devices_of(provider, new_browser, server, "provider@example.com")
    assert provider.user_id is not None
    assert len(app[keys.HUB].connections_of(provider.user_id)) == 3
    sessions = {conn.session_id for conn in app[keys.HUB].connections_of(provider.user_id)}
    assert len(sessions) == 2

    stored = await app[keys.NOTIFIER].send_to_user(
        provider.user_id, "notification", {"message": "Hello everywhere"}
    )

    texts = [await receive_text(ws) for ws in sockets]
    assert texts[0] == texts[1] == texts[2]
    frame = json.loads(texts[0])
    assert frame["id"] == stored.id
    assert frame["data"] == {"message": "Hello everywhere"}
    for ws in sockets:
        await ws.close()


async def test_another_user_receives_nothing_of_what_is_sent_to_someone_else(
    provider: Browser, stranger: Browser, server: TestServer, app: web.Application
) -> None:
    assert provider.user_id is not None and stranger.user_id is not None
    theirs, _ = await open_live(provider, server)
    mine, _ = await open_live(stranger, server)
    notifier = app[keys.NOTIFIER]

    for n in range(5):
        await notifier.send_to_user(provider.user_id, "notification", {"secret": n})
    marker = await notifier.send_to_user(stranger.user_id, "notification", {"marker": True})

    frame = await receive(mine)
    assert frame["id"] == marker.id
    assert frame["data"] == {"marker": True}
    assert [(await receive(theirs))["data"] for _ in range(5)] == [{"secret": n} for n in range(5)]
    await theirs.close()
    await mine.close()


async def test_each_frame_carries_the_authoritative_unread_count_and_reads_reach_every_socket(
    client_browser: Browser,
    new_browser: BrowserFactory,
    server: TestServer,
    app: web.Application,
    db: Database,
) -> None:
    sockets = await devices_of(client_browser, new_browser, server, "client@example.com")
    assert client_browser.user_id is not None
    notifier = app[keys.NOTIFIER]
    stored = [
        await notifier.send_to_user(client_browser.user_id, "notification", {"n": n})
        for n in range(3)
    ]

    for ws in sockets:
        frames = [await receive(ws) for _ in range(3)]
        assert [f["unread"] for f in frames] == [1, 2, 3]
        assert [f["id"] for f in frames] == [n.id for n in stored]

    response = await client_browser.post(f"/notifications/{stored[1].id}/read")
    assert response.status == 303

    for ws in sockets:
        assert await receive(ws) == {
            "type": "notification_read",
            "id": None,
            "ids": [stored[1].id],
            "unread": 2,
        }
    unread = await db.fetch_value(
        "SELECT unread_count FROM users WHERE id = ?", (client_browser.user_id,)
    )
    assert unread == 2
    following = await notifier.send_to_user(client_browser.user_id, "notification", {"n": 3})
    for ws in sockets:
        frame = await receive(ws)
        assert (frame["id"], frame["unread"]) == (following.id, 3)
        await ws.close()


@pytest.mark.parametrize(
    "data",
    [
        {"message": "Réservation confirmée 🎉", "n": 1},
        {
            "nested": {"list": [1, 2.5, None, True, False, "日本語", {"deep": ["😀", "\u2028"]}]},
            "quote": 'He said "hi" \\ then left',
            "empty": {},
            "big": 2**53,
        },
        {},
    ],
    ids=["emoji", "nested", "empty"],
)
async def test_a_frame_carries_id_type_key_and_the_data_exactly_as_published(
    provider: Browser, server: TestServer, app: web.Application, data: dict[str, object]
) -> None:
    assert provider.user_id is not None
    ws, _ = await open_live(provider, server)

    stored = await app[keys.NOTIFIER].send_to_user(
        provider.user_id, "notification", data, key="custom:1"
    )
    text = await receive_text(ws)
    frame = json.loads(text)

    assert set(frame) == {"id", "seq", "type", "key", "unread", "data", "created_at"}
    assert frame["id"] == stored.id
    assert frame["seq"] == stored.seq == 1
    assert frame["type"] == "notification"
    assert frame["key"] == "custom:1"
    assert frame["data"] == data
    assert TIMESTAMP.fullmatch(frame["created_at"])
    assert "\\u" not in text.replace("\\u2028", "")  # characters go as UTF-8, not escaped
    await ws.close()


async def test_booking_through_the_site_reaches_the_providers_socket_live_with_its_key(
    provider: Browser, client_browser: Browser, server: TestServer, db: Database
) -> None:
    service_id = await create_service(provider, name="Piano lessons ♪")
    ws, _ = await open_live(provider, server)

    booking_id = await book(client_browser, service_id, note="Ring twice")

    frame = await receive(ws)
    stored_id = await db.fetch_value(
        "SELECT id FROM notifications WHERE user_id = ? AND event = 'new_booking'",
        (provider.user_id,),
    )
    assert frame["id"] == stored_id
    assert frame["type"] == "booking_update"
    assert frame["key"] == f"booking:{booking_id}"
    assert frame["unread"] == 1
    assert frame["data"]["type"] == "new_booking"
    assert frame["data"]["booking_id"] == booking_id
    assert frame["data"]["service_name"] == "Piano lessons ♪"
    assert frame["data"]["client_name"] == "Casey Client"
    assert TIMESTAMP.fullmatch(frame["created_at"])
    await ws.close()


async def test_a_notification_sent_in_a_transaction_that_rolls_back_is_never_delivered(
    provider: Browser, server: TestServer, app: web.Application, db: Database
) -> None:
    assert provider.user_id is not None
    ws, _ = await open_live(provider, server)
    notifier = app[keys.NOTIFIER]

    with pytest.raises(RuntimeError, match="payment failed"):
        async with db.transaction():
            await notifier.send_to_user(provider.user_id, "notification", {"rolled": "back"})
            raise RuntimeError("payment failed")
    marker = await notifier.send_to_user(provider.user_id, "notification", {"marker": True})

    frame = await receive(ws)
    assert frame["id"] == marker.id
    assert frame["data"] == {"marker": True}
    assert frame["unread"] == 1
    rows = await db.fetch_all(
        "SELECT data FROM notifications WHERE user_id = ?", (provider.user_id,)
    )
    assert [r["data"] for r in rows] == ['{"marker":true}']
    await ws.close()


async def test_a_notification_sent_in_a_transaction_arrives_only_once_it_commits(
    provider: Browser, server: TestServer, app: web.Application, db: Database
) -> None:
    assert provider.user_id is not None
    ws, _ = await open_live(provider, server)
    notifier = app[keys.NOTIFIER]

    async with db.transaction():
        stored = await notifier.send_to_user(provider.user_id, "notification", {"in": "tx"})
        await ws.send_json({"type": "ping"})
        # The socket answers meanwhile, but the notification waits for the commit.
        assert await receive(ws) == {"type": "pong", "id": None}

    frame = await receive(ws)
    assert frame["id"] == stored.id
    await ws.close()
