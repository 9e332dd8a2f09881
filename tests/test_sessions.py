"""Server-side sessions: fixation, expiry, revocation from the sessions page, cookie hygiene."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet

from app import create_app
from app.clock import to_text, utc_now
from app.config import Settings
from app.db import Database
from app.security import derive_key
from tests.conftest import PASSWORD, Browser, BrowserFactory, MakeSettings, sqlite_only

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def session_cookie(browser: Browser, name: str = "session") -> str:
    for morsel in browser.client.session.cookie_jar:
        if morsel.key == name and morsel.value:
            return morsel.value
    raise AssertionError(f"the browser holds no {name} cookie")


def cookie_token(settings: Settings, cookie: str) -> str:
    """The session token inside the encrypted cookie, read with the app's own key."""
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(settings.secret_key, "session-cookie")))
    data: dict[str, Any] = json.loads(fernet.decrypt(cookie.encode()))
    token = data["session"]["sid"]
    assert isinstance(token, str)
    return token


async def visit_with_cookie(browser: Browser, path: str, cookie: str) -> int:
    """GET `path` carrying only `cookie` as the session; returns the status."""
    response = await browser.get(path, headers={"Cookie": f"session={cookie}"})
    return response.status


async def session_ids(db: Database, user_id: int | None) -> list[int]:
    rows = await db.fetch_all("SELECT id FROM sessions WHERE user_id = ? ORDER BY id", (user_id,))
    return [row["id"] for row in rows]


async def test_logging_in_replaces_the_anonymous_cookie_and_the_old_one_stays_signed_out(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    browser = await new_browser()
    login_page = await browser.get("/login")
    before = login_page.cookies["session"].value
    assert before

    response = await browser.login("client@example.com")

    assert response.status == 303
    after = response.cookies["session"].value
    assert after and after != before
    other = await new_browser()
    assert await visit_with_cookie(other, "/bookings", before) == 303
    assert await visit_with_cookie(other, "/bookings", after) == 200


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
async def test_an_expired_session_sends_the_person_back_to_the_login_page(
    client_browser: Browser, db: Database, column: str
) -> None:
    assert (await client_browser.get("/bookings")).status == 200
    async with db.transaction() as tx:
        await tx.execute(
            f"UPDATE sessions SET {column} = '2001-01-01T00:00:00Z' WHERE user_id = ?",
            (client_browser.user_id,),
        )

    response = await client_browser.get("/bookings")

    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/bookings"
    # The useless cookie is dropped, so the browser stays signed out.
    assert response.cookies["session"].value == ""
    assert (await client_browser.get("/bookings")).status == 303


async def test_a_session_idle_for_less_than_the_limit_still_works_and_is_touched(
    client_browser: Browser, db: Database
) -> None:
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE sessions SET last_seen_at = ? WHERE user_id = ?",
            (to_text(utc_now() - timedelta(days=1)), client_browser.user_id),
        )
    old = await db.fetch_value(
        "SELECT last_seen_at FROM sessions WHERE user_id = ?", (client_browser.user_id,)
    )

    assert (await client_browser.get("/bookings")).status == 200

    touched = await db.fetch_value(
        "SELECT last_seen_at FROM sessions WHERE user_id = ?", (client_browser.user_id,)
    )
    assert touched > old


async def test_one_browser_can_end_another_browsers_session_from_the_sessions_page(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    phone = await new_browser()
    assert (await phone.login("client@example.com")).status == 303
    laptop_id, phone_id = await session_ids(db, client_browser.user_id)

    page = await client_browser.page("/account/sessions")
    listed = [int(n) for n in re.findall(r'data-session-id="(\d+)"', page)]
    assert sorted(listed) == [laptop_id, phone_id]
    assert f'action="/account/sessions/{phone_id}/revoke"' in page

    response = await client_browser.post(f"/account/sessions/{phone_id}/revoke")

    assert response.status == 303
    assert response.headers["Location"] == "/account/sessions"
    assert (await phone.get("/bookings")).status == 303
    assert (await client_browser.get("/bookings")).status == 200
    rows = await db.fetch_all(
        "SELECT id, revoked_at FROM sessions WHERE user_id = ?", (client_browser.user_id,)
    )
    revoked = {row["id"]: row["revoked_at"] for row in rows}
    assert revoked[phone_id] is not None
    assert revoked[laptop_id] is None
    page = await client_browser.page("/account/sessions")
    assert re.findall(r'data-session-id="(\d+)"', page) == [str(laptop_id)]


async def test_ending_this_browsers_own_session_signs_it_out(
    client_browser: Browser, db: Database
) -> None:
    (own_id,) = await session_ids(db, client_browser.user_id)

    response = await client_browser.post(f"/account/sessions/{own_id}/revoke")

    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert (await client_browser.get("/bookings")).status == 303
    assert await db.fetch_value("SELECT revoked_at FROM sessions WHERE id = ?", (own_id,))


async def test_nobody_can_end_another_persons_session(
    client_browser: Browser, stranger: Browser, db: Database
) -> None:
    (victim_id,) = await session_ids(db, client_browser.user_id)

    response = await stranger.post(f"/account/sessions/{victim_id}/revoke")

    assert response.status == 404
    assert "That session does not exist or has already ended." in await response.text()
    assert (
        await db.fetch_value("SELECT revoked_at FROM sessions WHERE id = ?", (victim_id,)) is None
    )
    assert (await client_browser.get("/bookings")).status == 200
    assert (await stranger.get("/bookings")).status == 200


async def test_ending_an_already_ended_session_answers_not_found(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    phone = await new_browser()
    assert (await phone.login("client@example.com")).status == 303
    _, phone_id = await session_ids(db, client_browser.user_id)
    assert (await client_browser.post(f"/account/sessions/{phone_id}/revoke")).status == 303
    first = await db.fetch_value("SELECT revoked_at FROM sessions WHERE id = ?", (phone_id,))

    response = await client_browser.post(f"/account/sessions/{phone_id}/revoke")

    assert response.status == 404
    assert (
        await db.fetch_value("SELECT revoked_at FROM sessions WHERE id = ?", (phone_id,)) == first
    )


def _tamper(cookie: str) -> str:
    middle = len(cookie) // 2
    flipped = "".join("B" if ch == "A" else "A" for ch in cookie[middle : middle + 4])
    return cookie[:middle] + flipped + cookie[middle + 4 :]


async def test_a_tampered_cookie_counts_as_signed_out_not_as_an_error(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    cookie = session_cookie(client_browser)
    tampered = _tamper(cookie)
    assert tampered != cookie
    other = await new_browser()

    response = await other.get("/bookings", headers={"Cookie": f"session={tampered}"})
    assert response.status == 303
    assert response.headers["Location"].startswith("/login")

    response = await other.get("/services", headers={"Cookie": f"session={tampered}"})
    page = await response.text()
    assert response.status == 200
    assert 'href="/login"' in page
    assert "Casey Client" not in page


async def test_the_database_keeps_only_a_sha256_of_the_session_token(
    client_browser: Browser, settings: Settings, db: Database
) -> None:
    token = cookie_token(settings, session_cookie(client_browser))

    row = await db.fetch_one("SELECT * FROM sessions WHERE user_id = ?", (client_browser.user_id,))
    assert row is not None
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in tuple(row))


@sqlite_only  # a look at SQLite's own files; PostgreSQL's are the server's, not ours to read
async def test_the_session_token_is_nowhere_in_the_sqlite_files(
    client_browser: Browser, settings: Settings, db: Database
) -> None:
    token = cookie_token(settings, session_cookie(client_browser))
    files = [Path(str(settings.db_path) + suffix) for suffix in ("", "-wal")]

    assert files[0].exists()
    for path in files:
        if path.exists():
            assert token.encode() not in path.read_bytes(), path


async def test_the_session_cookie_is_httponly_and_samesite_lax(
    new_browser: BrowserFactory,
) -> None:
    browser = await new_browser()
    response = await browser.post(
        "/signup", {"email": "c@example.com", "name": "Cookie Person", "password": PASSWORD}
    )

    assert response.status == 303
    morsel = response.cookies["session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain-HTTP development server


async def test_over_https_the_cookie_is_a_secure_host_prefixed_cookie(
    make_settings: MakeSettings, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(create_app(make_settings(https=True)))
    # The browser jar would not send a Secure cookie over the test's plain HTTP: carry it by hand.
    client = TestClient(server, cookie_jar=DummyCookieJar())
    await client.start_server()
    try:
        login_page = await client.get("/login")
        anonymous = login_page.cookies["__Host-session"]
        assert "session" not in login_page.cookies
        token = _CSRF.search(await login_page.text())
        assert token is not None

        response = await client.post(
            "/signup",
            data={
                "email": "secure@example.com",
                "name": "Secure Person",
                "password": PASSWORD,
                "csrf_token": token.group(1),
            },
            headers={"Cookie": f"__Host-session={anonymous.value}"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/login"
        response = await client.post(
            "/login",
            data={
                "email": "secure@example.com",
                "password": PASSWORD,
                "csrf_token": token.group(1),
            },
            headers={"Cookie": f"__Host-session={response.cookies['__Host-session'].value}"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        morsel = response.cookies["__Host-session"]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert not morsel["domain"]

        signed_in = await client.get(
            "/bookings",
            headers={"Cookie": f"__Host-session={morsel.value}"},
            allow_redirects=False,
        )
        assert signed_in.status == 200
        assert "Secure Person" in await signed_in.text()
    finally:
        await client.close()


async def test_logging_in_again_ends_the_session_this_browser_had(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    first_cookie = next(m.value for m in client_browser.client.session.cookie_jar)
    first_id = await db.fetch_value("SELECT max(id) FROM sessions")

    assert (await client_browser.login("client@example.com")).status == 303

    revoked = await db.fetch_value("SELECT revoked_at FROM sessions WHERE id = ?", (first_id,))
    assert revoked is not None
    assert await db.fetch_value("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == 1
    # A copy of the old cookie no longer signs anyone in; the new one does.
    copy = await new_browser()
    copy.client.session.cookie_jar.update_cookies({"session": first_cookie})
    assert (await copy.get("/bookings")).status == 303
    assert (await client_browser.get("/bookings")).status == 200
