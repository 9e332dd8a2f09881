"""Input that other parsers read differently: non-ASCII digits, malformed form bodies,
duplicate JSON keys, and WebSocket frames at the size limit. Each is refused cleanly (a form
error, a 400, an error frame) or read the one safe way; none is a 500 or a partial change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestServer
from markupsafe import escape

from app import keys
from app.config import ConfigError, settings_from_args
from app.db import Database
from app.realtime.protocol import MAX_FRAME_BYTES
from tests.conftest import TEST_API_KEY, Browser, BrowserFactory
from tests.flows import accepted_booking, create_service, future_slot, pay
from tests.ws_helpers import open_live, receive, receive_until, still_answers, wait_closed

# Digits that str.isdigit() and int() accept but a person typing a number does not mean:
# superscript two, full-width, Arabic-Indic, Devanagari.
FW, AR, DV = 0xFF10, 0x0660, 0x0966  # the zero of full-width, Arabic-Indic, Devanagari digits


def digits(text: str, zero: int) -> str:
    """`text` with its ASCII digits written in the script whose zero is `zero`."""
    return text.translate({ord("0") + n: zero + n for n in range(10)})


FOREIGN_DIGITS = ["²", digits("12", FW), digits("12", AR), digits("12", DV)]
API_KEY = TEST_API_KEY


async def count(db: Database, table: str) -> int:
    return int(await db.fetch_value(f"SELECT count(*) FROM {table}"))


# --- 7: numbers are ASCII digits only ----------------------------------------------------


@pytest.mark.parametrize("path", ["/services", "/notifications"])
@pytest.mark.parametrize("page", [*FOREIGN_DIGITS, "0", "-1", "1.5", "9" * 5000, ""])
async def test_a_page_number_that_is_not_ascii_digits_shows_the_first_page(
    client_browser: Browser, path: str, page: str
) -> None:
    response = await client_browser.get(path, params={"page": page})

    assert response.status == 200, (await response.text())[:500]


@pytest.mark.parametrize("duration", [*FOREIGN_DIGITS, digits("90", FW), digits("90", AR), "1²0"])
async def test_a_duration_in_non_ascii_digits_is_a_form_error_and_no_service(
    provider: Browser, db: Database, duration: str
) -> None:
    response = await provider.post(
        "/services/new",
        {"name": "Tutoring", "price": "40", "duration_minutes": duration},
    )
    page = await response.text()

    assert response.status == 400, page[:500]
    assert "Enter the duration in minutes, from 5 to 1440." in page
    assert await count(db, "services") == 0


@pytest.mark.parametrize(
    "price",
    [digits("150", FW), digits("150", AR), "150." + digits("50", AR), "²", "1\u00a0500"],
)
async def test_a_price_in_non_ascii_digits_is_a_form_error_and_no_service(
    provider: Browser, db: Database, price: str
) -> None:
    response = await provider.post(
        "/services/new", {"name": "Tutoring", "price": price, "duration_minutes": "60"}
    )
    page = await response.text()

    assert response.status == 400, page[:500]
    assert 'id="e-price"' in page
    assert await count(db, "services") == 0


@pytest.mark.parametrize(
    "card",
    [
        digits("4242424242424242", FW),  # full-width: isdigit() and the Luhn sum both pass
        digits("4242424242424242", AR),
        "4242\u00a04242\u00a04242\u00a04242",  # no-break spaces between the groups
        "4242\u30004242\u30004242\u30004242",
    ],
)
async def test_a_card_number_in_non_ascii_digits_is_refused_with_no_payment(
    provider: Browser, client_browser: Browser, db: Database, card: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)

    status, page = await pay(client_browser, booking_id, card=card)

    assert status == 400, page[:500]
    assert 'id="e-card_number"' in page
    assert await count(db, "payments") == 0


async def test_a_booking_time_in_non_ascii_digits_is_a_form_error_and_no_booking(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    full_width = digits(future_slot(), FW)

    response = await client_browser.post(
        f"/services/{service_id}/book", {"scheduled_at": full_width, "note": ""}
    )
    page = await response.text()

    assert response.status == 400, page[:500]
    assert f'<p class="error" id="e-scheduled_at">{escape("Choose a date and time.")}' in page
    assert await count(db, "bookings") == 0


@pytest.mark.parametrize("segment", ["²", digits("1", FW), digits("1", AR)])
async def test_an_id_in_non_ascii_digits_in_the_path_is_not_found(
    provider: Browser, segment: str
) -> None:
    await create_service(provider)  # id 1 exists, so only the digits decide

    response = await provider.get(f"/services/{segment}")

    assert response.status == 404


@pytest.mark.parametrize("last_id", ["²", digits("1", AR), "-1", "9" * 30])
async def test_a_websocket_last_id_in_non_ascii_digits_is_a_400(
    client_browser: Browser, server: TestServer, last_id: str
) -> None:
    response = await client_browser.get(
        "/ws",
        params={"last_id": last_id},
        headers={
            "Origin": f"http://{server.host}:{server.port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )

    assert response.status == 400
    assert "last_id" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_PORT", digits("8080", AR)),
        ("APP_PORT", digits("8080", FW)),
        ("APP_WS_QUEUE_SIZE", "²"),
        ("APP_WS_HEARTBEAT", digits("25", FW)),
        ("APP_SHUTDOWN_SPREAD", digits("10.5", AR)),
    ],
)
def test_a_setting_in_non_ascii_digits_is_a_config_error(
    tmp_path: Path, name: str, value: str
) -> None:
    env = {"APP_DB": str(tmp_path / "app.db"), "APP_SECRET_KEY": "k" * 32, name: value}

    with pytest.raises(ConfigError, match=f"{name} must be a (whole )?number written with"):
        settings_from_args([], env)


# --- 8: malformed form bodies are a 400 --------------------------------------------------

PART = b'Content-Disposition: form-data; name="email"\r\n\r\nx@example.com\r\n'
MALFORMED_BODIES: list[tuple[str, str, bytes]] = [
    ("no-boundary", "multipart/form-data", b"--b\r\n" + PART + b"--b--\r\n"),
    ("empty-boundary", "multipart/form-data; boundary=", b"--\r\n" + PART),
    ("wrong-boundary", "multipart/form-data; boundary=abc", b"--xyz\r\n" + PART + b"--xyz--\r\n"),
    ("truncated-part", "multipart/form-data; boundary=abc", b"--abc\r\n" + PART[:60]),
    ("truncated-headers", "multipart/form-data; boundary=abc", b"--abc\r\nContent-Dispos"),
    ("empty-body", "multipart/form-data; boundary=abc", b""),
    ("boundary-too-long", "multipart/form-data; boundary=" + "a" * 71, b"--" + b"a" * 71),
    (
        "unknown-part-charset",
        "multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="email"\r\n'
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nx\r\n--abc--\r\n",
    ),
    (
        "undecodable-part",
        "multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\xfe\r\n--abc--\r\n',
    ),
    (
        "unknown-transfer-encoding",
        "multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="email"\r\n'
        b"Content-Transfer-Encoding: rot13\r\n\r\nx\r\n--abc--\r\n",
    ),
    (
        "bad-part-header",
        "multipart/form-data; boundary=abc",
        b"--abc\r\nContent-Disposition form-data\r\n\r\nx\r\n--abc--\r\n",
    ),
    (
        "too-many-part-headers",
        "multipart/form-data; boundary=abc",
        b"--abc\r\n" + b"X-A: 1\r\n" * 200 + PART + b"--abc--\r\n",
    ),
    ("unknown-urlencoded-charset", "application/x-www-form-urlencoded; charset=nope", b"a=1"),
    ("undecodable-urlencoded", "application/x-www-form-urlencoded", b"email=\xff\xfe"),
]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [(content_type, body) for _name, content_type, body in MALFORMED_BODIES],
    ids=[name for name, _content_type, _body in MALFORMED_BODIES],
)
async def test_a_malformed_form_body_on_login_is_a_400_error_page(
    new_browser: BrowserFactory, db: Database, content_type: str, body: bytes
) -> None:
    await (await new_browser()).signup("x@example.com", "X")
    anonymous = await new_browser()
    sessions = await count(db, "sessions")

    response = await anonymous.client.post(
        "/login", data=body, headers={"Content-Type": content_type}, allow_redirects=False
    )
    page = await response.text()

    assert response.status == 400, page[:500]
    assert response.content_type == "text/html"
    assert "<h1>Bad request</h1>" in page and "Traceback" not in page
    assert await count(db, "sessions") == sessions
    assert await count(db, "login_attempts") == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [(content_type, body) for _name, content_type, body in MALFORMED_BODIES],
    ids=[name for name, _content_type, _body in MALFORMED_BODIES],
)
async def test_a_malformed_form_body_on_a_signed_in_form_is_a_400_and_changes_nothing(
    provider: Browser, db: Database, content_type: str, body: bytes
) -> None:
    response = await provider.client.post(
        "/services/new", data=body, headers={"Content-Type": content_type}, allow_redirects=False
    )
    page = await response.text()

    assert response.status == 400, page[:500]
    assert "<h1>Bad request</h1>" in page
    assert await count(db, "services") == 0
    await provider.page("/services")  # still signed in, still served


async def test_a_well_formed_multipart_form_still_works(provider: Browser, db: Database) -> None:
    fields = {
        "csrf_token": await provider.csrf(),
        "name": "Piano lessons",
        "price": "45.00",
        "duration_minutes": "60",
        "online": "1",
    }
    response = await provider.client.post(
        "/services/new",
        data=FormData(fields, default_to_multipart=True),
        allow_redirects=False,
    )

    assert response.status == 303, (await response.text())[:500]
    assert await count(db, "services") == 1


async def test_a_malformed_multipart_body_on_the_api_is_a_json_400(
    client_browser: Browser, db: Database
) -> None:
    response = await client_browser.client.post(
        "/api/publish",
        data=MALFORMED_BODIES[0][2],
        headers={"Content-Type": "multipart/form-data", "Authorization": f"Bearer {API_KEY}"},
    )

    assert response.status == 400
    assert "error" in await response.json()
    assert await count(db, "notifications") == 0


# --- 9: a key twice in one JSON object is refused -----------------------------------------

DUPLICATE_KEY_FRAMES = [
    '{"type":"ping","type":"mark_all_read"}',
    '{"type":"mark_all_read","client_msg_id":"a-1","client_msg_id":"a-2"}',
    '{"type":"mark_read","ids":[1],"ids":[]}',
    '{"type":"ping","x":{"a":1,"a":2}}',
    '{"type":"ping","x":[{"a":1},{"b":{"c":1,"c":1}}]}',
    '{"type":"ping","\\u0074ype":"mark_all_read"}',  # the same key, spelled escaped
]


@pytest.mark.parametrize("text", DUPLICATE_KEY_FRAMES)
async def test_a_frame_with_a_duplicate_key_gets_bad_json_and_the_socket_stays_usable(
    client_browser: Browser, server: TestServer, app: web.Application, db: Database, text: str
) -> None:
    assert client_browser.user_id is not None
    await app[keys.NOTIFIER].send_to_user(client_browser.user_id, "notification", {"m": "hi"})
    ws, _ = await open_live(client_browser, server)
    unread = await db.fetch_value(
        "SELECT unread_count FROM users WHERE id = ?", (client_browser.user_id,)
    )

    await ws.send_str(text)
    error = await receive(ws)

    assert error["type"] == "error" and error["code"] == "bad_json", error
    assert "duplicate key" in error["message"]
    await still_answers(ws)
    assert unread == 1
    assert (
        await db.fetch_value(
            "SELECT unread_count FROM users WHERE id = ?", (client_browser.user_id,)
        )
        == unread
    )
    assert await count(db, "client_messages") == 0
    await ws.close()


@pytest.mark.parametrize(
    "body",
    [
        '{{"user_ids": [{u}], "user_ids": [{u}, {u}], "data": {{}}}}',
        '{{"user_ids": [{u}], "data": {{"message": "a", "message": "b"}}}}',
        '{{"user_ids": [{u}], "data": {{"x": {{"y": [{{"k": 1, "k": 2}}]}}}}}}',
        '{{"user_ids": [{u}], "type": "notification", "type": "booking_update", "data": {{}}}}',
    ],
    ids=["top-level", "in-data", "nested", "type"],
)
async def test_a_publish_body_with_a_duplicate_key_is_a_400_and_stores_nothing(
    client_browser: Browser, db: Database, body: str
) -> None:
    response = await client_browser.client.post(
        "/api/publish",
        data=body.format(u=client_browser.user_id),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )

    assert response.status == 400
    assert "duplicate key" in (await response.json())["error"]
    assert await count(db, "notifications") == 0


# --- 16: a frame of exactly 64 KiB is accepted, one byte more closes 1009 -----------------


def ping_of(size: int) -> str:
    """A ping frame of exactly `size` bytes of UTF-8; the padding is an extra field."""
    head, tail = '{"type":"ping","pad":"', '"}'
    frame = head + "x" * (size - len(head) - len(tail))
    frame += tail
    assert len(frame.encode()) == size
    return frame


async def test_a_frame_of_exactly_64_kib_is_answered(
    client_browser: Browser, server: TestServer
) -> None:
    assert MAX_FRAME_BYTES == 65_536
    ws, _ = await open_live(client_browser, server)

    await ws.send_str(ping_of(MAX_FRAME_BYTES))
    pong, skipped = await receive_until(ws, "pong")

    assert pong == {"type": "pong", "id": None} and skipped == []
    await still_answers(ws)
    await ws.close()


async def test_a_frame_of_64_kib_in_multibyte_characters_is_answered(
    client_browser: Browser, server: TestServer
) -> None:
    head, tail = '{"type":"ping","pad":"', '"}'
    frame = head + "é" * ((MAX_FRAME_BYTES - len(head) - len(tail)) // 2) + tail
    assert len(frame.encode()) == MAX_FRAME_BYTES
    ws, _ = await open_live(client_browser, server)

    await ws.send_str(frame)

    assert (await receive_until(ws, "pong"))[0]["type"] == "pong"
    await ws.close()


async def test_a_frame_one_byte_over_64_kib_closes_with_1009(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)

    await ws.send_str(ping_of(MAX_FRAME_BYTES + 1))

    assert (await wait_closed(ws))[0] == 1009
