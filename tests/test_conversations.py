"""Conversations per booking (docs/conversations.md), through HTTP and real sockets: two
parties and an outsider, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from app import keys
from app.clock import to_text, utc_now
from app.config import Settings
from app.conversations.text import linkify
from app.db import Database
from tests.conftest import Browser, MakeSettings
from tests.flows import accepted_booking, act
from tests.ws_helpers import Frame, eventually, open_live, receive_until


@pytest.fixture
def settings(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Settings:
    return make_settings(**{"presence_grace_seconds": 0.3, **getattr(request, "param", {})})


@pytest.fixture
async def booking_id(provider: Browser, client_browser: Browser) -> int:
    return await accepted_booking(provider, client_browser)


async def messages_in(db: Database, booking_id: int) -> list[tuple[int, int, str]]:
    rows = await db.fetch_all(
        "SELECT seq, sender_id, body FROM messages WHERE booking_id = ? ORDER BY seq",
        (booking_id,),
    )
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


async def stream_rows(db: Database) -> int:
    return int(await db.fetch_value("SELECT count(*) FROM notifications"))


async def send(ws: ClientWebSocketResponse, booking_id: int, body: str, msg_id: str) -> None:
    await ws.send_json(
        {"type": "send_message", "booking_id": booking_id, "body": body, "client_msg_id": msg_id}
    )


async def mark_read(ws: ClientWebSocketResponse, booking_id: int, seq: int, msg_id: str) -> None:
    await ws.send_json(
        {"type": "read", "booking_id": booking_id, "seq": seq, "client_msg_id": msg_id}
    )


async def next_of(ws: ClientWebSocketResponse, kind: str, event: str | None = None) -> Frame:
    """The next frame of this type (and data.type), skipping others."""
    while True:
        frame, _ = await receive_until(ws, kind)
        if event is None or frame.get("data", {}).get("type") == event:
            return frame


async def view(ws: ClientWebSocketResponse, *booking_ids: int) -> Frame:
    """Say the socket shows these threads; returns the first presence answer."""
    await ws.send_json({"type": "view", "booking_ids": list(booking_ids)})
    frame, _ = await receive_until(ws, "presence")
    return frame


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def client_msg_id_of(page: str) -> str:
    match = re.search(r'name="client_msg_id" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


# --- messages through the form ---------------------------------------------------------------


async def test_form_posts_a_message_both_parties_see_it_escaped_with_safe_links(
    provider: Browser, client_browser: Browser, booking_id: int, db: Database
) -> None:
    body = "Gate code <b>42</b> https://maps.example.com/x?a=1&b=2 and javascript:alert(1)"
    page = await client_browser.page(f"/bookings/{booking_id}")
    response = await client_browser.post(
        f"/bookings/{booking_id}/messages",
        {"body": body, "client_msg_id": client_msg_id_of(page)},
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/bookings/{booking_id}#m-1"
    assert await messages_in(db, booking_id) == [(1, client_browser.user_id, body)]
    for who in (provider, client_browser):
        html = await who.page(f"/bookings/{booking_id}")
        assert "Gate code &lt;b&gt;42&lt;/b&gt;" in html
        assert "<b>42</b>" not in html
        assert (
            '<a href="https://maps.example.com/x?a=1&amp;b=2"'
            ' rel="nofollow noopener noreferrer ugc" target="_blank">' in html
        )
        assert 'href="javascript' not in html
        assert 'id="m-1"' in html


async def test_a_double_submitted_form_posts_once(
    client_browser: Browser, booking_id: int, db: Database
) -> None:
    page = await client_browser.page(f"/bookings/{booking_id}")
    form = {"body": "On my way", "client_msg_id": client_msg_id_of(page)}
    first = await client_browser.post(f"/bookings/{booking_id}/messages", form)
    second = await client_browser.post(f"/bookings/{booking_id}/messages", form)
    assert first.status == second.status == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert len(await messages_in(db, booking_id)) == 1


async def test_the_form_needs_its_csrf_token(
    client_browser: Browser, booking_id: int, db: Database
) -> None:
    response = await client_browser.post(
        f"/bookings/{booking_id}/messages", {"body": "hi"}, csrf=False
    )
    assert response.status == 403
    assert await messages_in(db, booking_id) == []


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("   \n  ", 400, "the message is empty"),
        ("x" * 4001, 400, "at most 4,000 characters"),
    ],
)
async def test_empty_or_oversize_messages_are_refused_and_the_draft_kept(
    client_browser: Browser, booking_id: int, db: Database, body: str, status: int, says: str
) -> None:
    before = await stream_rows(db)
    response = await client_browser.post(f"/bookings/{booking_id}/messages", {"body": body})
    html = await response.text()
    assert response.status == status
    assert says in html
    assert 'aria-invalid="true"' in html
    assert await messages_in(db, booking_id) == []
    assert await stream_rows(db) == before


async def test_a_4000_character_message_is_accepted(
    client_browser: Browser, booking_id: int, db: Database
) -> None:
    response = await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "y" * 4000})
    assert response.status == 303
    [(_, _, body)] = await messages_in(db, booking_id)
    assert len(body) == 4000


async def test_an_outsider_gets_404_everywhere_and_changes_nothing(
    client_browser: Browser, stranger: Browser, booking_id: int, db: Database
) -> None:
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "private"})
    assert (await stranger.get(f"/bookings/{booking_id}")).status == 404
    for path, form in (
        (f"/bookings/{booking_id}/messages", {"body": "let me in"}),
        (f"/bookings/{booking_id}/conversation/mute", {"muted": "1"}),
    ):
        assert (await stranger.post(path, form)).status == 404
    assert [body for _, _, body in await messages_in(db, booking_id)] == ["private"]
    muted = await db.fetch_value(
        "SELECT count(*) FROM conversation_members WHERE user_id = ?", (stranger.user_id,)
    )
    assert muted == 0


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
        ("javascript:alert(1) data:text/html,x", "javascript:alert(1) data:text/html,x"),
        ("at https://x.org/a.", 'at <a href="https://x.org/a" {A}https://x.org/a</a>.'),
        (
            "(https://en.wikipedia.org/wiki/Foo_(bar))",
            '(<a href="https://en.wikipedia.org/wiki/Foo_(bar)" {A}'
            "https://en.wikipedia.org/wiki/Foo_(bar)</a>)",
        ),
        (
            '"https://q.com/?a=1&b=2"',
            '&#34;<a href="https://q.com/?a=1&amp;b=2" {A}https://q.com/?a=1&amp;b=2</a>&#34;',
        ),
        ("xhttps://no.example", "xhttps://no.example"),
    ],
)
def test_message_text_is_escaped_and_only_http_links_become_links(text: str, html: str) -> None:
    a = 'rel="nofollow noopener noreferrer ugc" target="_blank">'
    assert str(linkify(text)) == html.replace("{A}", a)


# --- messages through the socket --------------------------------------------------------------


async def test_a_socket_message_reaches_every_socket_of_both_parties_once(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    laptop, _ = await open_live(client_browser, server)
    phone, _ = await open_live(client_browser, server)
    other, _ = await open_live(provider, server)
    await send(laptop, booking_id, "Running 5 minutes late", "m-1")
    ack, _ = await receive_until(laptop, "ack")
    assert ack["client_msg_id"] == "m-1"
    for ws in (laptop, phone, other):
        frame = await next_of(ws, "message", "message")
        assert frame["key"] == f"conversation:{booking_id}"
        assert isinstance(frame["id"], int) and isinstance(frame["seq"], int)
        message = frame["data"]["message"]
        assert message["body"] == "Running 5 minutes late"
        assert message["seq"] == 1
        assert message["sender_id"] == client_browser.user_id
        assert message["client_msg_id"] == "m-1"
    provider_ws = other
    # A resend after a drop: acknowledged again, stored once, delivered once.
    await send(laptop, booking_id, "Running 5 minutes late", "m-1")
    ack, before = await receive_until(laptop, "ack")
    assert ack["client_msg_id"] == "m-1"
    assert not [f for f in before if f["type"] == "message"]
    assert len(await messages_in(db, booking_id)) == 1
    await provider_ws.send_json({"type": "ping"})
    _, skipped = await receive_until(provider_ws, "pong")
    assert not [f for f in skipped if f["type"] == "message"]


async def test_the_recipient_frame_carries_their_unread_counts(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    sender, _ = await open_live(client_browser, server)
    recipient, welcome = await open_live(provider, server)
    assert welcome["unread_messages"] == 0
    for n in (1, 2):
        await send(sender, booking_id, f"question {n}", f"q-{n}")
        frame = await next_of(recipient, "message", "message")
        assert frame["data"]["unread"] == n
        assert frame["data"]["unread_messages"] == n
        own = await next_of(sender, "message", "message")
        assert own["data"]["unread"] == 0
    _, welcome = await open_live(provider, server)
    assert welcome["unread_messages"] == 2
    html = await provider.page("/bookings")
    assert f'data-conversation-unread="{booking_id}">2 unread messages' in html
    assert re.search(r"data-unread-messages>2<", html)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"body": "   "}, "message_empty"),
        ({"body": "z" * 4001}, "message_too_long"),
        ({"body": 7}, "bad_frame"),
        ({"body": "hi", "booking_id": "one"}, "bad_frame"),
    ],
)
async def test_bad_socket_messages_get_an_error_naming_them_and_change_nothing(
    client_browser: Browser,
    server: TestServer,
    booking_id: int,
    db: Database,
    frame: dict[str, object],
    code: str,
) -> None:
    ws, _ = await open_live(client_browser, server)
    before = await stream_rows(db)
    await ws.send_json(
        {"type": "send_message", "booking_id": booking_id, "client_msg_id": "bad-1", **frame}
    )
    error, _ = await receive_until(ws, "error")
    assert error["code"] == code
    assert error["client_msg_id"] == "bad-1"
    assert await messages_in(db, booking_id) == []
    assert await stream_rows(db) == before


async def test_a_message_to_someone_elses_booking_is_not_found(
    stranger: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    ws, _ = await open_live(stranger, server)
    for frame in (
        {"type": "send_message", "booking_id": booking_id, "body": "hi", "client_msg_id": "s"},
        {"type": "read", "booking_id": booking_id, "seq": 1, "client_msg_id": "r"},
        {"type": "typing", "booking_id": booking_id, "client_msg_id": "t"},
        {"type": "view", "booking_ids": [booking_id], "client_msg_id": "v"},
        {"type": "send_message", "booking_id": 999999, "body": "hi", "client_msg_id": "n"},
    ):
        await ws.send_json(frame)
        error, before = await receive_until(ws, "error")
        assert error["code"] == "not_found", frame
        assert not [f for f in before if f["type"] == "presence"]
    assert await messages_in(db, booking_id) == []


async def test_offline_party_gets_the_messages_replayed_in_order_on_resume(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    recipient, welcome = await open_live(provider, server)
    last_seq = welcome["last_seq"]
    await recipient.close()
    sender, _ = await open_live(client_browser, server)
    for n in range(1, 6):
        await send(sender, booking_id, f"note {n}", f"n-{n}")
        await receive_until(sender, "ack")
    ws = await provider.client.ws_connect(
        f"/ws?last_seq={last_seq}", headers={"Origin": f"http://{server.host}:{server.port}"}
    )
    frames: list[Frame] = []
    done, frames = await receive_until(ws, "replay_done")
    bodies = [f["data"]["message"]["body"] for f in frames if f["type"] == "message"]
    assert bodies == [f"note {n}" for n in range(1, 6)]
    seqs = [f["seq"] for f in frames if "seq" in f and f["type"] != "welcome"]
    assert seqs == sorted(set(seqs)) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # Live from here, nothing repeated.
    await send(sender, booking_id, "note 6", "n-6")
    live = await next_of(ws, "message", "message")
    assert live["data"]["message"]["body"] == "note 6"
    assert live["seq"] == done["last_seq"] + 1


# --- read receipts --------------------------------------------------------------------------


async def test_read_receipts_move_forward_only_and_reach_the_sender(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    sender, _ = await open_live(client_browser, server)
    reader, _ = await open_live(provider, server)
    reader_phone, _ = await open_live(provider, server)
    for n in (1, 2, 3):
        await send(sender, booking_id, f"m{n}", f"m{n}")
        await next_of(reader, "message", "message")
    await mark_read(reader, booking_id, 2, "r1")
    seen = await next_of(sender, "message", "message_read")
    assert seen["data"] == {
        "type": "message_read",
        "booking_id": booking_id,
        "reader_id": provider.user_id,
        "read_seq": 2,
        "unread": 0,
        "unread_messages": 0,
    }
    mine = await next_of(reader_phone, "message", "message_read")
    assert mine["data"]["unread"] == 1 and mine["data"]["unread_messages"] == 1
    # Backwards and past the newest: never moves back, stops at the newest.
    await mark_read(reader, booking_id, 1, "r2")
    await receive_until(reader, "ack")
    await mark_read(reader, booking_id, 99, "r3")
    latest = await next_of(sender, "message", "message_read")
    assert latest["data"]["read_seq"] == 3
    read_seq = await db.fetch_value(
        "SELECT read_seq FROM conversation_members WHERE booking_id = ? AND user_id = ?",
        (booking_id, provider.user_id),
    )
    assert read_seq == 3
    assert (
        await db.fetch_value("SELECT unread_messages FROM users WHERE id = ?", (provider.user_id,))
        == 0
    )
    html = await client_browser.page(f"/bookings/{booking_id}")
    assert re.search(r'id="m-3"[^>]*>.*?data-seen>Seen<', html, re.S)
    assert html.count("data-seen>") == 1


async def test_replying_reads_the_thread_and_clears_its_notifications(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "Is 10 ok?"})
    unread = await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND event = 'new_message'"
        " AND read_at IS NULL",
        (provider.user_id,),
    )
    assert unread == 1
    await provider.post(f"/bookings/{booking_id}/messages", {"body": "Yes"})
    unread = await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND event = 'new_message'"
        " AND read_at IS NULL",
        (provider.user_id,),
    )
    assert unread == 0
    assert "data-unread-messages hidden" in await provider.page("/bookings")


# --- typing ---------------------------------------------------------------------------------


async def test_typing_reaches_the_other_party_looking_at_the_thread_only(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    typist, _ = await open_live(client_browser, server)
    typist_phone, _ = await open_live(client_browser, server)
    watcher, _ = await open_live(provider, server)
    elsewhere, _ = await open_live(provider, server)
    await view(watcher, booking_id)
    await view(typist_phone, booking_id)
    before = await stream_rows(db)
    await typist.send_json({"type": "typing", "booking_id": booking_id})
    frame, _ = await receive_until(watcher, "typing")
    assert frame == {
        "type": "typing",
        "id": None,
        "booking_id": booking_id,
        "user_id": client_browser.user_id,
        "name": "Casey Client",
    }
    # A second one at once is dropped quietly (at most one per 2 s passes).
    await typist.send_json({"type": "typing", "booking_id": booking_id})
    await typist.send_json({"type": "ping"})
    await receive_until(typist, "pong")
    await watcher.send_json({"type": "ping"})
    _, between = await receive_until(watcher, "pong")
    assert not [f for f in between if f["type"] == "typing"]
    for ws in (elsewhere, typist_phone):
        await ws.send_json({"type": "ping"})
        _, between = await receive_until(ws, "pong")
        assert not [f for f in between if f["type"] == "typing"]
    assert await stream_rows(db) == before  # never stored


async def test_a_typing_flood_is_refused_without_harm(
    client_browser: Browser, server: TestServer, booking_id: int, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    for _ in range(60):
        await ws.send_json({"type": "typing", "booking_id": booking_id})
    error, _ = await receive_until(ws, "error")
    assert error["code"] == "rate_limited"


# --- presence -------------------------------------------------------------------------------


async def test_presence_online_then_last_seen_after_the_grace_period(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    watcher, _ = await open_live(client_browser, server)
    first = await view(watcher, booking_id)
    assert first == {
        "type": "presence",
        "id": None,
        "user_id": provider.user_id,
        "online": False,
        "last_seen": None,
    }
    other, _ = await open_live(provider, server)
    online, _ = await receive_until(watcher, "presence")
    assert online["online"] is True
    await other.close()
    offline, _ = await receive_until(watcher, "presence")
    assert offline["online"] is False
    assert isinstance(offline["last_seen"], str) and offline["last_seen"].endswith("Z")
    html = await client_browser.page(f"/bookings/{booking_id}")
    assert "Pat Provider was last seen" in html


async def test_a_flapping_link_does_not_flood_the_other_side(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    watcher, _ = await open_live(client_browser, server)
    await view(watcher, booking_id)
    other, _ = await open_live(provider, server)
    await receive_until(watcher, "presence")
    for _ in range(5):  # reconnects within the grace period
        await other.close()
        other, _ = await open_live(provider, server)
    # Every change written and announced: still online, and nothing was said about it.
    presence = server.app[keys.PRESENCE]
    await eventually(lambda: presence.waiting == 0, what="no one waiting out the grace")
    await presence.flush()
    await server.app[keys.HUB].drain()
    await watcher.send_json({"type": "ping"})
    _, between = await receive_until(watcher, "pong", within=2)
    assert not [f for f in between if f["type"] == "presence"]
    html = await client_browser.page(f"/bookings/{booking_id}")
    assert "Pat Provider is online" in html


# --- new_message notifications --------------------------------------------------------------


async def test_a_recipient_not_looking_gets_a_new_message_notification(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    recipient, welcome = await open_live(provider, server)
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "Door code is 1234"})
    frame = await next_of(recipient, "notification", "new_message")
    assert frame["key"] == f"conversation:{booking_id}"
    assert frame["data"]["sender_name"] == "Casey Client"
    assert frame["data"]["preview"] == "Door code is 1234"
    assert frame["data"]["muted"] is False
    assert frame["unread"] == welcome["unread"] + 1
    inbox = await provider.page("/notifications")
    assert "Casey Client sent you a message about House Cleaning" in inbox


async def test_a_recipient_looking_at_the_thread_gets_no_notification(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    recipient, _ = await open_live(provider, server)
    await view(recipient, booking_id)
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "Here now"})
    await next_of(recipient, "message", "message")
    count = await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND event = 'new_message'",
        (provider.user_id,),
    )
    assert count == 0
    # Stops looking (the page is hidden): the next one notifies.
    await recipient.send_json({"type": "view", "booking_ids": []})
    await recipient.send_json({"type": "ping"})
    await receive_until(recipient, "pong")
    await eventually(
        lambda: _not_on_topic(server.app, provider.user_id, booking_id), what="view dropped"
    )
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "Hello?"})
    await next_of(recipient, "notification", "new_message")


async def _not_on_topic(app: web.Application, user_id: int | None, booking_id: int) -> bool:
    assert user_id is not None
    presence = app[keys.PRESENCE]
    await presence.flush()
    return not await presence.store.on_topic(  # type: ignore[attr-defined]
        user_id, f"conversation:{booking_id}", presence.stale_before()
    )


async def test_a_muted_conversation_still_notifies_but_says_so(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int
) -> None:
    response = await provider.post(f"/bookings/{booking_id}/conversation/mute", {"muted": "1"})
    assert response.status == 303
    assert "Show pop-ups for this conversation again" in await provider.page(
        f"/bookings/{booking_id}"
    )
    recipient, _ = await open_live(provider, server)
    await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "psst"})
    frame = await next_of(recipient, "notification", "new_message")
    assert frame["data"]["muted"] is True


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"messages_per_minute": 3}], indirect=True)
async def test_a_message_flood_is_refused_across_form_and_socket(
    client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    ws, _ = await open_live(client_browser, server)
    for n in range(3):
        await send(ws, booking_id, f"m{n}", f"f-{n}")
        await receive_until(ws, "ack")
    await send(ws, booking_id, "one more", "f-3")
    error, _ = await receive_until(ws, "error")
    assert (error["code"], error["client_msg_id"]) == ("rate_limited", "f-3")
    response = await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "form"})
    assert response.status == 429
    assert "messages a minute" in await response.text()
    assert len(await messages_in(db, booking_id)) == 3


@pytest.mark.parametrize(("days", "allowed"), [(29, True), (31, False)])
async def test_an_ended_booking_stays_writable_for_30_days(
    provider: Browser,
    client_browser: Browser,
    server: TestServer,
    booking_id: int,
    db: Database,
    days: int,
    allowed: bool,
) -> None:
    assert await act(client_browser, booking_id, "cancel") == 303
    await db.write_statement(
        "UPDATE bookings SET updated_at = ? WHERE id = ?",
        (to_text(utc_now() - timedelta(days=days)), booking_id),
    )
    response = await client_browser.post(f"/bookings/{booking_id}/messages", {"body": "thanks"})
    if allowed:
        assert response.status == 303
    else:
        assert response.status == 409
        assert "read-only" in await response.text()
        assert "read-only" in await provider.page(f"/bookings/{booking_id}")
    assert len(await messages_in(db, booking_id)) == (1 if allowed else 0)


async def test_a_process_taken_for_dead_writes_its_presence_again(
    provider: Browser, client_browser: Browser, server: TestServer, booking_id: int, db: Database
) -> None:
    """A process that stalled past the heartbeat's limit was swept by another: at its next
    heartbeat it notices and writes who it holds again."""
    assert provider.user_id is not None
    watcher, _ = await open_live(client_browser, server)
    await open_live(provider, server)
    presence = server.app[keys.PRESENCE]
    await presence.flush()
    assert (await view(watcher, booking_id))["online"] is True
    await db.write_statement(
        "UPDATE presence_nodes SET heartbeat_at = 0 WHERE node = ?", (presence.node,)
    )
    await presence.store.sweep(presence.stale_before())  # what another process would do
    assert not (await presence.states([provider.user_id]))[provider.user_id].online
    await presence.beat()
    await presence.flush()
    assert (await presence.states([provider.user_id]))[provider.user_id].online
    frame, _ = await receive_until(watcher, "presence")
    assert frame["online"] is True
