"""Client frames: every malformed kind is refused cleanly, and the good ones apply exactly once."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestServer

from app import keys
from app.config import Settings
from app.db import Database
from app.notifications.models import Notification
from app.realtime.session import RateLimiter
from tests.conftest import Browser, MakeSettings
from tests.ws_helpers import (
    Frame,
    eventually,
    metric,
    open_live,
    receive,
    receive_until,
    still_answers,
    wait_closed,
)


@pytest.fixture
def settings(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Settings:
    return make_settings(**getattr(request, "param", {}))


def deep(depth: int) -> str:
    return '{"type":"ping","x":' + "[" * depth + "]" * depth + "}"


async def live_with_one_notification(
    browser: Browser, server: TestServer, app: web.Application
) -> tuple[ClientWebSocketResponse, Notification]:
    assert browser.user_id is not None
    ws, _ = await open_live(browser, server)
    notification = await app[keys.NOTIFIER].send_to_user(
        browser.user_id, "notification", {"message": "hi"}
    )
    assert (await receive(ws))["id"] == notification.id
    return ws, notification


async def db_state(db: Database, user_id: int) -> tuple[object, ...]:
    """Everything a client frame could change for this user."""
    rows = await db.fetch_all(
        "SELECT id, seen_at, read_at, delivered_at FROM notifications WHERE user_id = ?"
        " ORDER BY id",
        (user_id,),
    )
    unread = await db.fetch_value("SELECT unread_count FROM users WHERE id = ?", (user_id,))
    messages = await db.fetch_value(
        "SELECT count(*) FROM client_messages WHERE user_id = ?", (user_id,)
    )
    return tuple(tuple(r) for r in rows), unread, messages


async def test_a_binary_frame_closes_the_socket_with_1003(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    await ws.send_bytes(b'{"type": "ping"}')
    assert await wait_closed(ws) == (1003, "text frames only")
    await eventually(lambda: app[keys.HUB].connection_count == 0)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"type": "ping"', "bad_json"),
        ("not json at all", "bad_json"),
        ("", "bad_json"),
        ('{"type":"ping","x":NaN}', "bad_json"),
        ('{"type":"ping","x":Infinity}', "bad_json"),
        ('{"type":"ping","x":-Infinity}', "bad_json"),
        (r'{"type":"ping","x":"\ud800"}', "bad_json"),
        (r'{"type":"ping","\udfff":1}', "bad_json"),
        (deep(20), "bad_json"),
        (deep(30_000), "bad_json"),
        ('{"type":"launch_missiles"}', "unknown_type"),
        ('{"kind":"ping"}', "unknown_type"),
        ('{"type":5}', "unknown_type"),
        ('{"type":"welcome"}', "unknown_type"),
        ("[1, 2]", "bad_frame"),
        ("42", "bad_frame"),
        ('"ping"', "bad_frame"),
        ("null", "bad_frame"),
        ('{"type":"mark_read","ids":"1,2"}', "bad_frame"),
        ('{"type":"mark_read","ids":{"1":true}}', "bad_frame"),
        ('{"type":"mark_read","ids":["1"]}', "bad_frame"),
        ('{"type":"mark_read","ids":[true]}', "bad_frame"),
        ('{"type":"mark_read","ids":[1.0]}', "bad_frame"),
        ('{"type":"mark_read","ids":[-1]}', "bad_frame"),
        ('{"type":"mark_read","ids":[9223372036854775808]}', "bad_frame"),
        ('{"type":"mark_read"}', "bad_frame"),
        ('{"type":"mark_seen","ids":null}', "bad_frame"),
        ('{"type":"mark_read","ids":[' + ",".join(["1"] * 501) + "]}", "bad_frame"),
        ('{"type":"ack","id":"5"}', "bad_frame"),
        ('{"type":"ack"}', "bad_frame"),
        ('{"type":"ping","client_msg_id":5}', "bad_frame"),
        ('{"type":"ping","client_msg_id":""}', "bad_frame"),
        ('{"type":"ping","client_msg_id":"' + "x" * 65 + '"}', "bad_frame"),
        ('{"type":"resume","last_id":0}', "bad_frame"),
    ],
)
async def test_a_bad_text_frame_gets_an_error_frame_and_the_socket_stays_usable(
    client_browser: Browser,
    server: TestServer,
    app: web.Application,
    db: Database,
    text: str,
    code: str,
) -> None:
    ws, _ = await live_with_one_notification(client_browser, server, app)
    assert client_browser.user_id is not None
    before = await db_state(db, client_browser.user_id)

    await ws.send_str(text)
    error = await receive(ws)

    assert error["type"] == "error" and error["id"] is None, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    await still_answers(ws)
    assert await db_state(db, client_browser.user_id) == before
    assert metric(app, "ws_bad_frames_total", reason=code) == 1
    await ws.close()


async def test_nesting_100000_deep_does_not_crash_anything_it_is_just_too_big(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    await ws.send_str(deep(100_000))
    assert (await wait_closed(ws))[0] == 1009
    again, _ = await open_live(client_browser, server)
    await still_answers(again)
    await again.close()


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    await ws.send_str('{"type":"ping","pad":"' + "x" * (64 * 1024) + '"}')
    code, _reason = await wait_closed(ws)
    assert code == 1009
    await eventually(lambda: app[keys.HUB].connection_count == 0)


rate_limited = pytest.mark.parametrize(
    "settings",
    [{"ws_rate_per_second": 5, "ws_rate_burst": 5}],
    indirect=True,
    ids=["5-per-second"],
)


@rate_limited
async def test_frames_beyond_the_rate_limit_get_a_rate_limited_error(
    client_browser: Browser, server: TestServer
) -> None:
    ws, _ = await open_live(client_browser, server)
    for _ in range(6):
        await ws.send_json({"type": "ping"})

    frames = [await receive(ws) for _ in range(6)]

    assert frames[:5] == [{"type": "pong", "id": None}] * 5
    assert (frames[5]["type"], frames[5]["code"]) == ("error", "rate_limited")
    await asyncio.sleep(0.3)  # the bucket refills at 5 a second: one frame is allowed again
    await still_answers(ws)
    await ws.close()


@rate_limited
async def test_a_flood_of_frames_closes_the_socket_with_1008(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    for _ in range(100):
        await ws.send_json({"type": "ping"})

    frames: list[Frame] = []
    while True:
        message = await ws.receive(timeout=5)
        if message.type is not WSMsgType.TEXT:
            break
        frames.append(message.json())

    assert ws.close_code == 1008
    assert [f["type"] for f in frames] == ["pong"] * 5 + ["error"]  # one error frame, not 95
    await eventually(lambda: app[keys.HUB].connection_count == 0)


async def test_a_mark_read_sent_twice_with_one_client_msg_id_is_acked_twice_and_applied_once(
    client_browser: Browser, server: TestServer, app: web.Application, db: Database
) -> None:
    user_id = client_browser.user_id
    assert user_id is not None
    ws, first = await live_with_one_notification(client_browser, server, app)
    other_device, _ = await open_live(client_browser, server)
    notifier = app[keys.NOTIFIER]
    second = await notifier.send_to_user(user_id, "notification", {"message": "two"})
    for socket in (ws, other_device):
        assert (await receive_until(socket, "notification"))[0]["id"] == second.id

    await ws.send_json({"type": "mark_read", "ids": [first.id], "client_msg_id": "m-1"})
    frames = [await receive(ws), await receive(ws)]
    assert {"type": "ack", "id": None, "client_msg_id": "m-1"} in frames
    read = {"type": "notification_read", "id": None, "ids": [first.id], "unread": 1}
    assert read in frames
    assert await receive(other_device) == read

    # The same message again (an offline queue flushed twice), even with more ids in it.
    await ws.send_json({"type": "mark_read", "ids": [first.id, second.id], "client_msg_id": "m-1"})
    assert await receive(ws) == {"type": "ack", "id": None, "client_msg_id": "m-1"}
    marker = await notifier.send_to_user(user_id, "notification", {"message": "marker"})
    for socket in (ws, other_device):
        frame, before = await receive_until(socket, "notification")
        assert frame["id"] == marker.id
        assert before == [], "the repeated mark was applied again"
        assert frame["unread"] == 2

    rows = await db.fetch_all(
        "SELECT id, read_at FROM notifications WHERE user_id = ? ORDER BY id", (user_id,)
    )
    assert [(r["id"], r["read_at"] is not None) for r in rows] == [
        (first.id, True),
        (second.id, False),
        (marker.id, False),
    ]
    assert metric(app, "notifications_read_total", event="notification") == 1
    for socket in (ws, other_device):
        await socket.close()


async def test_a_client_msg_id_is_applied_once_per_user_not_once_for_everybody(
    client_browser: Browser, stranger: Browser, server: TestServer, app: web.Application
) -> None:
    mine, mine_first = await live_with_one_notification(client_browser, server, app)
    theirs, theirs_first = await live_with_one_notification(stranger, server, app)
    for ws, notification in ((mine, mine_first), (theirs, theirs_first)):
        await ws.send_json({"type": "mark_read", "ids": [notification.id], "client_msg_id": "x"})
        frame, _ = await receive_until(ws, "notification_read")
        assert frame["ids"] == [notification.id]
        await ws.close()


async def test_acks_mark_the_users_own_notifications_delivered_and_nobody_elses(
    client_browser: Browser,
    stranger: Browser,
    server: TestServer,
    app: web.Application,
    db: Database,
) -> None:
    assert client_browser.user_id is not None and stranger.user_id is not None
    notifier = app[keys.NOTIFIER]
    ws, _ = await open_live(client_browser, server)
    mine = [
        await notifier.send_to_user(client_browser.user_id, "notification", {"n": n})
        for n in range(2)
    ]
    theirs = await notifier.send_to_user(stranger.user_id, "notification", {"n": "theirs"})
    later = await notifier.send_to_user(client_browser.user_id, "notification", {"n": 2})

    await ws.send_json({"type": "ack", "id": mine[1].id})

    async def first_two_delivered() -> bool:
        return (await delivered(db)) == {
            mine[0].id: True,
            mine[1].id: True,
            theirs.id: False,
            later.id: False,
        }

    await eventually(first_two_delivered, within=3, what="the recorder wrote the acks")
    assert metric(app, "notifications_acknowledged_total", event="notification") == 2

    # An ack naming someone else's notification changes nothing, theirs or ours.
    await ws.send_json({"type": "ack", "id": theirs.id})
    await still_answers(ws)  # the ack has been handled
    await app[keys.ACKS].flush()
    assert await first_two_delivered()

    await ws.send_json({"type": "ack", "id": later.id})

    async def later_delivered() -> bool:
        return (await delivered(db))[later.id]

    await eventually(later_delivered, within=3, what="the later ack written")
    assert (await delivered(db))[theirs.id] is False
    await ws.close()


async def delivered(db: Database) -> dict[int, bool]:
    rows = await db.fetch_all("SELECT id, delivered_at FROM notifications")
    return {row["id"]: row["delivered_at"] is not None for row in rows}


async def test_an_ack_for_an_id_beyond_the_newest_does_not_stop_later_acks_from_counting(
    client_browser: Browser, server: TestServer, app: web.Application, db: Database
) -> None:
    assert client_browser.user_id is not None
    notifier = app[keys.NOTIFIER]
    ws, _ = await open_live(client_browser, server)
    await ws.send_json({"type": "ack", "id": 10**15})
    await still_answers(ws)
    await app[keys.ACKS].flush()

    notification = await notifier.send_to_user(client_browser.user_id, "notification", {})
    await ws.send_json({"type": "ack", "id": notification.id})
    await still_answers(ws)
    await app[keys.ACKS].flush()

    delivered_at = await db.fetch_value(
        "SELECT delivered_at FROM notifications WHERE id = ?", (notification.id,)
    )
    assert delivered_at is not None
    await ws.close()


@pytest.mark.parametrize(
    "settings", [{"client_messages_per_user": 5}], indirect=True, ids=["keep-5"]
)
async def test_each_user_keeps_only_the_newest_client_message_ids(
    client_browser: Browser, stranger: Browser, server: TestServer, db: Database
) -> None:
    theirs, _ = await open_live(stranger, server)
    await theirs.send_json({"type": "mark_all_read", "client_msg_id": "theirs-1"})
    await receive_until(theirs, "ack")
    mine, _ = await open_live(client_browser, server)

    # Distinct ids, as a client making up a new one per frame would send (within the rate).
    for n in range(12):
        await mine.send_json({"type": "mark_all_read", "client_msg_id": f"mine-{n}"})
        await receive_until(mine, "ack")

    kept = await db.fetch_all(
        "SELECT client_msg_id FROM client_messages WHERE user_id = ? ORDER BY id",
        (client_browser.user_id,),
    )
    assert [r[0] for r in kept] == [f"mine-{n}" for n in range(7, 12)]
    # Another person's ids are theirs to keep.
    assert (
        await db.fetch_value(
            "SELECT count(*) FROM client_messages WHERE user_id = ?", (stranger.user_id,)
        )
        == 1
    )
    for ws in (mine, theirs):
        await ws.close()


@pytest.mark.parametrize(
    "settings", [{"maintenance_interval_seconds": 0.1}], indirect=True, ids=["fast-jobs"]
)
async def test_client_message_ids_older_than_a_week_are_pruned_while_running(
    client_browser: Browser, db: Database
) -> None:
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO client_messages (user_id, client_msg_id, created_at) VALUES (?, ?, ?)",
            [
                (client_browser.user_id, "last-month", "2026-11-01T00:00:00Z"),
                (client_browser.user_id, "just-now", "2099-01-01T00:00:00Z"),
            ],
        )

    async def only_recent_left() -> bool:
        rows = await db.fetch_all("SELECT client_msg_id FROM client_messages")
        return [r[0] for r in rows] == ["just-now"]

    await eventually(only_recent_left, what="the old id pruned without a restart")


def test_the_rate_limiter_allows_bursts_and_calls_a_flood_only_past_the_documented_rule() -> None:
    now = [100.0]
    limiter = RateLimiter(20, 40, flood_refusals=40, flood_window=10, clock=lambda: now[0])

    assert all(limiter.allow() for _ in range(40))  # a burst of 40 is fine
    assert not limiter.allow()
    assert not limiter.flooding
    # 25 frames a second for ten seconds: over the rate, refused 5 a second, not a flood
    # before 40 refusals have piled up within 10 s.
    refused = 0
    for _ in range(7):
        now[0] += 1
        for _ in range(25):
            refused += not limiter.allow()
        assert not limiter.flooding
    assert refused == 35  # 36 with the one above
    now[0] += 1
    for _ in range(25):
        limiter.allow()
    assert limiter.flooding  # 40 refused within 10 s
    # A quiet spell clears it.
    now[0] += 11
    assert limiter.allow()
    assert not limiter.flooding


async def test_a_burst_of_40_frames_is_all_answered(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    for _ in range(40):
        await ws.send_json({"type": "ping"})

    frames = [await receive(ws) for _ in range(40)]

    assert frames == [{"type": "pong", "id": None}] * 40
    assert metric(app, "ws_bad_frames_total", reason="rate_limited") == 0
    await ws.close()


async def test_a_flood_is_closed_with_1008_after_40_refusals_not_200(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    for _ in range(200):
        await ws.send_json({"type": "ping"})

    code, _ = await wait_closed(ws)

    assert code == 1008
    # 40 in the burst (plus the few that refilled meanwhile) were answered, then 40 refused.
    assert metric(app, "ws_bad_frames_total", reason="rate_limited") == 40
