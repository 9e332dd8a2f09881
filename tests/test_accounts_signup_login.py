"""Sign-up, login and logout, as a person at the forms would see them, checked in the database."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from app import create_app, keys
from app.accounts.views import SIGNED_UP, WRONG_CREDENTIALS
from app.config import Argon2Params
from app.db import Database
from tests.conftest import PASSWORD, Browser, BrowserFactory, MakeSettings


def field_error(page: str, field: str) -> str | None:
    """The error message shown next to a form field, if any."""
    match = re.search(rf'<p class="error" id="e-{field}">(.*?)</p>', page, re.S)
    return None if match is None else html.unescape(match.group(1))


def form_error(page: str) -> str | None:
    match = re.search(r'<p class="form-error" role="alert">(.*?)</p>', page, re.S)
    return None if match is None else html.unescape(match.group(1))


def session_cookie(browser: Browser, name: str = "session") -> str:
    for morsel in browser.client.session.cookie_jar:
        if morsel.key == name and morsel.value:
            return morsel.value
    raise AssertionError(f"the browser holds no {name} cookie")


async def count(db: Database, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(await db.fetch_value(sql, params))


# --- Sign-up --------------------------------------------------------------------------------


async def test_signup_creates_the_account_and_leads_to_the_login_form_with_the_email_filled(
    new_browser: BrowserFactory, db: Database
) -> None:
    browser = await new_browser()
    response = await browser.post(
        "/signup", {"email": "Ada@Example.com", "name": "Ada Lovelace", "password": PASSWORD}
    )

    assert response.status == 303
    assert response.headers["Location"] == "/login"
    row = await db.fetch_one("SELECT id, email, name, password_hash FROM users")
    assert row is not None
    assert (row["email"], row["name"]) == ("ada@example.com", "Ada Lovelace")
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    assert await count(db, "SELECT COUNT(*) FROM sessions") == 0
    login_page = await browser.page("/login")
    assert SIGNED_UP in html.unescape(login_page)
    assert 'value="ada@example.com"' in login_page
    # Logging in with the new password works.
    assert (await browser.login("ada@example.com")).status == 303
    assert "Ada Lovelace" in await browser.page("/bookings")


async def _signup_answer(browser: Browser, email: str, password: str) -> tuple[Any, ...]:
    """Everything a stranger can observe of a sign-up: the answer, and the page it leads to."""
    response = await browser.post(
        "/signup", {"email": email, "name": "Someone Else", "password": password}
    )
    cookies = sorted(response.cookies)
    follow = await browser.get(response.headers.get("Location", "/"))
    body = re.sub(r'value="[0-9a-f]{64}"', "", await follow.text())  # the CSRF token differs
    return response.status, response.headers.get("Location"), cookies, follow.status, body


async def test_signup_answers_the_same_whether_or_not_the_email_is_registered(
    new_browser: BrowserFactory, db: Database, app: web.Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await new_browser()).signup("taken@example.com", "First Person")
    hashed: list[str] = []
    passwords = app[keys.PASSWORDS]
    original = passwords.hash

    async def counting_hash(password: str) -> str:
        hashed.append(password)
        return await original(password)

    monkeypatch.setattr(passwords, "hash", counting_hash)

    taken = await _signup_answer(await new_browser(), "TAKEN@Example.com", "another password 1")
    fresh = await _signup_answer(await new_browser(), "fresh@example.com", "another password 2")

    # Same status, same redirect, same cookies, same page after it (but for the email shown).
    assert taken[:4] == fresh[:4] == (303, "/login", ["session"], 200)
    assert taken[4].replace("taken@example.com", "EMAIL") == fresh[4].replace(
        "fresh@example.com", "EMAIL"
    )
    # Both did the same expensive work (one Argon2 hash), so neither answers faster.
    assert hashed == ["another password 1", "another password 2"]
    # The taken account is untouched, and its owner's password still works.
    assert await count(db, "SELECT COUNT(*) FROM users WHERE email = 'taken@example.com'") == 1
    owner = await new_browser()
    assert (await owner.login("taken@example.com")).status == 303
    impostor = await new_browser()
    assert (await impostor.login("taken@example.com", "another password 1")).status == 400


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        ("not-an-email", PASSWORD, "email", "Enter an email address like name@example.com."),
        ("", PASSWORD, "email", "Email is required."),
        ("short@example.com", "Zq9-xw7", "password", "Use at least 8 characters."),
        ("long@example.com", "x" * 257, "password", "Use at most 256 characters."),
    ],
    ids=["invalid-email", "missing-email", "short-password", "over-long-password"],
)
async def test_signup_with_a_bad_field_shows_the_error_next_to_that_field(
    new_browser: BrowserFactory,
    db: Database,
    email: str,
    password: str,
    field: str,
    message: str,
) -> None:
    browser = await new_browser()
    response = await browser.post(
        "/signup", {"email": email, "name": "Someone", "password": password}
    )

    page = await response.text()
    assert response.status == 400
    assert field_error(page, field) == message
    assert 'aria-invalid="true" aria-describedby="e-' + field + '"' in page
    assert 'value="Someone"' in page
    assert password not in page
    assert await count(db, "SELECT COUNT(*) FROM users") == 0


async def test_a_password_of_exactly_256_characters_is_accepted(
    new_browser: BrowserFactory, db: Database
) -> None:
    browser = await new_browser()
    await browser.signup("max@example.com", "Max Length", password="p" * 256)

    other = await new_browser()
    assert (await other.login("max@example.com", "p" * 256)).status == 303


# --- Login ----------------------------------------------------------------------------------


async def test_login_with_the_right_password_signs_in_and_opens_a_session(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    laptop = await new_browser()
    response = await laptop.login("CLIENT@example.com")

    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert (
        await count(
            db, "SELECT COUNT(*) FROM sessions WHERE user_id = ?", (client_browser.user_id,)
        )
        == 2
    )
    assert "Casey Client" in await laptop.page("/bookings")


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    browser = await new_browser()
    wrong_password = await browser.login("client@example.com", "not the password")
    unknown_email = await browser.login("nobody@example.com", PASSWORD)

    wrong_page, unknown_page = await wrong_password.text(), await unknown_email.text()
    assert wrong_password.status == unknown_email.status == 400
    assert form_error(wrong_page) == form_error(unknown_page) == WRONG_CREDENTIALS
    assert "not the password" not in wrong_page
    assert 'value="client@example.com"' in wrong_page
    assert await count(db, "SELECT COUNT(*) FROM sessions") == 1  # the sign-up's only
    assert (await browser.get("/bookings")).status == 303


async def test_login_rehashes_the_password_when_the_argon2_cost_changed(
    make_settings: MakeSettings, client_browser: Browser, db: Database, aiohttp_server: Any
) -> None:
    old_hash = await db.fetch_value(
        "SELECT password_hash FROM users WHERE id = ?", (client_browser.user_id,)
    )
    assert "$m=64," in old_hash

    stronger = make_settings(argon2=Argon2Params(memory_kib=256, time_cost=2))
    server = await aiohttp_server(create_app(stronger))
    client = TestClient(server)
    await client.start_server()
    try:
        response = await Browser(client).login("client@example.com")
        assert response.status == 303
    finally:
        await client.close()

    new_hash = await db.fetch_value(
        "SELECT password_hash FROM users WHERE id = ?", (client_browser.user_id,)
    )
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert "$m=256,t=2,p=1$" in new_hash
    # The new hash still accepts the same password, on the original app too.
    assert (await client_browser.login("client@example.com")).status == 303


async def test_login_does_not_rehash_when_the_cost_is_unchanged(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    query = "SELECT password_hash FROM users WHERE id = ?"
    before = await db.fetch_value(query, (client_browser.user_id,))
    assert (await (await new_browser()).login("client@example.com")).status == 303
    assert await db.fetch_value(query, (client_browser.user_id,)) == before


async def test_after_five_failures_even_the_right_password_is_refused_for_that_account(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    attacker = await new_browser()
    for _ in range(5):
        assert (await attacker.login("client@example.com", "guess-guess")).status == 400

    owner = await new_browser()
    response = await owner.login("client@example.com")

    page = await response.text()
    assert response.status == 429
    assert "Too many failed attempts" in (form_error(page) or "")
    assert await count(db, "SELECT COUNT(*) FROM sessions") == 1  # no new session
    assert (await owner.get("/bookings")).status == 303


async def test_a_successful_login_clears_the_accounts_failure_count(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    browser = await new_browser()
    for _ in range(4):
        assert (await browser.login("client@example.com", "guess-guess")).status == 400
    assert (await browser.login("client@example.com")).status == 303

    other = await new_browser()
    for _ in range(4):
        assert (await other.login("client@example.com", "guess-guess")).status == 400
    assert (await other.login("client@example.com")).status == 303


async def test_many_failures_from_one_address_block_logins_to_every_account(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    # Spread over many emails, so no single account reaches its own limit.
    sprayer = await new_browser()
    for n in range(20):
        response = await sprayer.login(f"victim{n}@example.com", "guess-guess")
        assert response.status == 400, n

    response = await (await new_browser()).login("client@example.com")

    assert response.status == 429
    assert "Too many failed attempts" in (form_error(await response.text()) or "")


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/bookings", "/bookings"),
        ("/services?q=clean", "/services?q=clean"),
        ("//evil.example", "/"),
        ("//evil.example/bookings", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        # A browser drops tabs and newlines from a URL and trims controls and spaces at its
        # ends: each of these is //evil.example to it.
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
        ("\t//evil.example", "/"),
        (" //evil.example", "/"),
        ("\x00//evil.example", "/"),
        ("/\t\\evil.example", "/"),
        ("/book\tings", "/bookings"),
    ],
)
async def test_login_follows_next_only_to_a_path_on_this_site(
    client_browser: Browser, new_browser: BrowserFactory, target: str, landing: str
) -> None:
    browser = await new_browser()
    response = await browser.post(
        "/login", {"email": "client@example.com", "password": PASSWORD, "next": target}
    )

    assert response.status == 303
    assert response.headers["Location"] == landing


async def test_the_login_form_does_not_carry_a_foreign_next_target(
    new_browser: BrowserFactory,
) -> None:
    browser = await new_browser()
    page = await browser.page("/login?next=https://evil.example/phish")
    assert 'name="next" value="/"' in page
    assert "evil.example" not in page


# --- Logout ---------------------------------------------------------------------------------


async def test_logout_ends_the_session_so_a_copied_cookie_no_longer_works(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    stolen = session_cookie(client_browser)
    replay = await new_browser()
    # Before logout, the copied cookie does sign its holder in (the test can fail).
    before = await replay.get("/bookings", headers={"Cookie": f"session={stolen}"})
    assert before.status == 200

    response = await client_browser.post("/logout")

    assert response.status == 303
    assert response.headers["Location"] == "/login"
    after = await replay.get("/bookings", headers={"Cookie": f"session={stolen}"})
    assert after.status == 303
    assert after.headers["Location"].startswith("/login")
    assert (await client_browser.get("/bookings")).status == 303
    revoked_at = await db.fetch_value(
        "SELECT revoked_at FROM sessions WHERE user_id = ?", (client_browser.user_id,)
    )
    assert revoked_at is not None


async def test_logout_leaves_the_same_persons_other_browsers_signed_in(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    phone = await new_browser()
    assert (await phone.login("client@example.com")).status == 303

    assert (await client_browser.post("/logout")).status == 303

    assert (await phone.get("/bookings")).status == 200
    assert (
        await count(
            db,
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND user_id = ?",
            (client_browser.user_id,),
        )
        == 1
    )


async def test_a_next_target_hidden_by_a_tab_in_the_query_string_stays_on_the_site(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    browser = await new_browser()
    form = await browser.page("/login?next=/%09/evil.example")
    assert 'name="next" value="/"' in form

    signed_in = await client_browser.get("/login?next=/%09/evil.example")
    assert signed_in.status == 303
    assert signed_in.headers["Location"] == "/"
