"""CSRF on every form, security headers, error pages, login-protected pages, hashing cost,
and the failed-login limiter."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from app import create_app, keys
from app.config import Argon2Params, Settings
from app.db import Database
from app.email.digest import unsubscribe_token
from app.email.views import unsubscribe_key
from tests.conftest import PASSWORD, Browser, BrowserFactory
from tests.flows import (
    accepted_booking,
    book,
    create_service,
    future_slot,
    id_from_location,
    pay,
    payment_key,
)

CSRF_MESSAGE = "This form has expired or did not come from this site."
CROSS_SITE_MESSAGE = "This request came from another site and was refused."
SITE_HEADER = '<header class="site-header">'
# Each table with the columns that order its rows.
TABLES = {
    "users": "id",
    "sessions": "id",
    "services": "id",
    "bookings": "id",
    "payments": "id",
    "notifications": "id",
    "notification_preferences": "user_id, event",
    "conversations": "booking_id",
    "conversation_members": "booking_id, user_id",
    "messages": "id",
    "push_subscriptions": "id",
    "reviews": "id",
}


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the app keeps about people and their business."""
    return {
        table: [tuple(row) for row in await db.fetch_all(f"SELECT * FROM {table} ORDER BY {key}")]
        for table, key in TABLES.items()
    }


# --- CSRF -----------------------------------------------------------------------------------


@dataclass
class People:
    provider: Browser
    client: Browser
    new_browser: BrowserFactory
    db: Database


@dataclass
class Target:
    """A form submission that would change something if the site accepted it."""

    browser: Browser
    path: str
    form: dict[str, str]


async def _latest_notification(people: People) -> int:
    return int(
        await people.db.fetch_value(
            "SELECT MAX(id) FROM notifications WHERE user_id = ?", (people.client.user_id,)
        )
    )


async def _signup(p: People) -> Target:
    form = {"email": "new@example.com", "name": "New Person", "password": PASSWORD}
    return Target(await p.new_browser(), "/signup", form)


async def _login(p: People) -> Target:
    form = {"email": "client@example.com", "password": PASSWORD}
    return Target(await p.new_browser(), "/login", form)


async def _logout(p: People) -> Target:
    return Target(p.client, "/logout", {})


async def _service_new(p: People) -> Target:
    form = {"name": "Tutoring", "description": "Maths.", "price": "40.00", "duration_minutes": "60"}
    return Target(p.provider, "/services/new", form | {"online": "1"})


async def _service_edit(p: People) -> Target:
    service_id = await create_service(p.provider)
    form = {"name": "Deep Cleaning", "description": "More.", "price": "200.00"}
    form |= {"duration_minutes": "90", "online": "1"}
    return Target(p.provider, f"/services/{service_id}/edit", form)


async def _service_unpublish(p: People) -> Target:
    return Target(p.provider, f"/services/{await create_service(p.provider)}/unpublish", {})


async def _service_publish(p: People) -> Target:
    service_id = await create_service(p.provider)
    assert (await p.provider.post(f"/services/{service_id}/unpublish")).status == 303
    return Target(p.provider, f"/services/{service_id}/publish", {})


async def _service_book(p: People) -> Target:
    service_id = await create_service(p.provider)
    form = {"scheduled_at": future_slot(), "note": ""}
    return Target(p.client, f"/services/{service_id}/book", form)


def _booking_action(action: str, who: str) -> Callable[[People], Awaitable[Target]]:
    async def setup(p: People) -> Target:
        if action == "complete":
            booking_id = await accepted_booking(p.provider, p.client)
        else:
            booking_id = await book(p.client, await create_service(p.provider))
        browser = p.provider if who == "provider" else p.client
        return Target(browser, f"/bookings/{booking_id}/{action}", {})

    return setup


async def _booking_pay(p: People) -> Target:
    booking_id = await accepted_booking(p.provider, p.client)
    form = {
        "amount": "150.00",
        "card_number": "4242 4242 4242 4242",
        "idempotency_key": await payment_key(p.client, booking_id),
    }
    return Target(p.client, f"/bookings/{booking_id}/pay", form)


async def _booking_review(p: People) -> Target:
    booking_id = await accepted_booking(p.provider, p.client)
    assert (await p.provider.post(f"/bookings/{booking_id}/complete")).status == 303
    return Target(p.client, f"/bookings/{booking_id}/review", {"rating": "4", "body": "Good"})


async def _payment_refund(p: People) -> Target:
    status, location = await pay(p.client, await accepted_booking(p.provider, p.client))
    assert status == 303, location
    return Target(p.provider, f"/payments/{id_from_location(location)}/refund", {})


async def _notifications_read_all(p: People) -> Target:
    await accepted_booking(p.provider, p.client)  # the client hears of the acceptance
    return Target(p.client, "/notifications/read-all", {})


async def _notification_read(p: People) -> Target:
    await accepted_booking(p.provider, p.client)
    return Target(p.client, f"/notifications/{await _latest_notification(p)}/read", {})


async def _session_revoke(p: People) -> Target:
    phone = await p.new_browser()
    assert (await phone.login("client@example.com")).status == 303
    session_id = await p.db.fetch_value("SELECT MAX(id) FROM sessions")
    return Target(p.client, f"/account/sessions/{session_id}/revoke", {})


async def _notification_preferences(p: People) -> Target:
    form = {"in_app:new_booking": "1", "desktop:booking_accepted": "1"}  # the rest unticked
    return Target(p.client, "/account/notifications", form)


async def _booking_messages(p: People) -> Target:
    booking_id = await accepted_booking(p.provider, p.client)
    return Target(p.client, f"/bookings/{booking_id}/messages", {"body": "Gate code 1234"})


async def _conversation_mute(p: People) -> Target:
    booking_id = await accepted_booking(p.provider, p.client)
    return Target(p.client, f"/bookings/{booking_id}/conversation/mute", {"muted": "1"})


PUSH_FORM = {
    "endpoint": "https://push.example.com/send/abc",
    "p256dh": "B" + "A" * 86,  # 65 bytes, base64url, starting 0x04
    "auth": "A" * 22,  # 16 bytes
}


async def _push_subscribe(p: People) -> Target:
    return Target(p.client, "/account/push", PUSH_FORM)


async def _push_remove(p: People) -> Target:
    response = await p.client.post("/account/push", PUSH_FORM)
    assert response.status == 201, await response.text()
    return Target(p.client, "/account/push/remove", {"endpoint": PUSH_FORM["endpoint"]})


async def _email_mode(p: People) -> Target:
    return Target(p.client, "/account/email", {"email_notifications": "never"})


async def _email_unsubscribe(p: People) -> Target:
    assert p.client.user_id is not None
    secret = p.client.client.server.app[keys.SETTINGS].secret_key  # type: ignore[union-attr]
    token = unsubscribe_token(unsubscribe_key(secret), p.client.user_id)
    return Target(p.client, "/email/unsubscribe", {"u": str(p.client.user_id), "t": token})


async def _quiet_hours(p: People) -> Target:
    form = {"quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "Europe/Paris"}
    return Target(p.client, "/account/quiet-hours", form)


FORM_ROUTES: dict[str, Callable[[People], Awaitable[Target]]] = {
    "/signup": _signup,
    "/login": _login,
    "/logout": _logout,
    "/services/new": _service_new,
    "/services/{id}/edit": _service_edit,
    "/services/{id}/unpublish": _service_unpublish,
    "/services/{id}/publish": _service_publish,
    "/services/{id}/book": _service_book,
    "/bookings/{id}/accept": _booking_action("accept", "provider"),
    "/bookings/{id}/decline": _booking_action("decline", "provider"),
    "/bookings/{id}/cancel": _booking_action("cancel", "client"),
    "/bookings/{id}/complete": _booking_action("complete", "provider"),
    "/bookings/{id}/pay": _booking_pay,
    "/bookings/{id}/review": _booking_review,
    "/bookings/{id}/messages": _booking_messages,
    "/bookings/{id}/conversation/mute": _conversation_mute,
    "/payments/{id}/refund": _payment_refund,
    "/notifications/read-all": _notifications_read_all,
    "/notifications/{id}/read": _notification_read,
    "/account/sessions/{id}/revoke": _session_revoke,
    "/account/notifications": _notification_preferences,
    "/account/push": _push_subscribe,
    "/account/push/remove": _push_remove,
    "/account/email": _email_mode,
    "/email/unsubscribe": _email_unsubscribe,
    "/account/quiet-hours": _quiet_hours,
}
routes = pytest.mark.parametrize("route", list(FORM_ROUTES))


@pytest.fixture
async def people(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> People:
    return People(provider, client_browser, new_browser, db)


def test_every_form_route_of_the_app_is_in_the_csrf_list(settings: Settings) -> None:
    app = create_app(settings)
    examples = [template.replace("{id}", "1") for template in FORM_ROUTES]
    uncovered = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method != "POST" or canonical.startswith("/api/"):
            continue
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(canonical))
        if not any(re.fullmatch(pattern, example) for example in examples):
            uncovered.append(canonical)
    assert uncovered == []


@routes
async def test_a_form_with_a_valid_token_does_change_something(people: People, route: str) -> None:
    """The control for the refusals below: each listed submission is a real change."""
    target = await FORM_ROUTES[route](people)
    before = await snapshot(people.db)

    response = await target.browser.post(target.path, target.form)

    # 303 for most forms, 200 for the unsubscribe confirmation, 201 / 204 for the push routes
    # the script calls.
    assert response.status in (200, 201, 204, 303), await response.text()
    assert await snapshot(people.db) != before


@routes
async def test_a_form_without_a_csrf_token_is_refused_and_changes_nothing(
    people: People, route: str
) -> None:
    target = await FORM_ROUTES[route](people)
    before = await snapshot(people.db)

    response = await target.browser.post(target.path, target.form, csrf=False)

    page = await response.text()
    assert response.status == 403
    assert CSRF_MESSAGE in page
    assert SITE_HEADER in page
    assert await snapshot(people.db) == before


@routes
async def test_a_form_with_another_browsers_token_is_refused_and_changes_nothing(
    people: People, route: str
) -> None:
    target = await FORM_ROUTES[route](people)
    foreign_token = await (await people.new_browser()).csrf()
    before = await snapshot(people.db)

    response = await target.browser.post(target.path, target.form | {"csrf_token": foreign_token})

    assert response.status == 403
    assert CSRF_MESSAGE in await response.text()
    assert await snapshot(people.db) == before


@routes
async def test_a_form_posted_from_another_site_is_refused_even_with_a_valid_token(
    people: People, route: str
) -> None:
    target = await FORM_ROUTES[route](people)
    before = await snapshot(people.db)

    response = await target.browser.post(
        target.path, target.form, headers={"Origin": "https://evil.example"}
    )

    assert response.status == 403
    assert CROSS_SITE_MESSAGE in await response.text()
    assert await snapshot(people.db) == before


async def test_a_form_from_the_sites_own_origin_is_accepted(
    provider: Browser, server: Any, db: Database
) -> None:
    own = f"http://{server.host}:{server.port}"
    response = await provider.post(
        "/services/new",
        {"name": "Gardening", "price": "30.00", "duration_minutes": "60", "city": "Leeds"},
        headers={"Origin": own},
    )
    assert response.status == 303
    assert await db.fetch_value("SELECT name FROM services") == "Gardening"


async def test_a_token_from_before_login_is_no_longer_valid_after_it(
    client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    browser = await new_browser()
    old_token = await browser.csrf()
    assert (await browser.login("client@example.com")).status == 303

    response = await browser.post(
        "/services/new",
        {"name": "X", "price": "1.00", "duration_minutes": "60", "csrf_token": old_token},
    )

    assert response.status == 403
    assert await db.fetch_value("SELECT COUNT(*) FROM services") == 0


# --- Response headers -----------------------------------------------------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (part.split() for part in csp.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


@pytest.mark.parametrize("path", ["/services", "/login", "/no-such-page"])
async def test_every_page_carries_the_security_headers(
    new_browser: BrowserFactory, path: str
) -> None:
    response = await (await new_browser()).get(path)

    csp = _directives(response.headers["Content-Security-Policy"])
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {"same-origin", "strict-origin-when-cross-origin"}


@pytest.mark.parametrize(
    "path",
    ["/bookings", "/services", "/account/sessions", "/account/notifications", "/notifications"],
)
async def test_signed_in_pages_are_never_cached(client_browser: Browser, path: str) -> None:
    response = await client_browser.get(path)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"


# --- Error pages ----------------------------------------------------------------------------


async def test_an_unknown_address_shows_a_not_found_page_in_the_site_layout(
    new_browser: BrowserFactory,
) -> None:
    response = await (await new_browser()).get("/no/such/page")

    page = await response.text()
    assert response.status == 404
    assert response.content_type == "text/html"
    assert SITE_HEADER in page
    assert "<h1>Not found</h1>" in page
    assert "Traceback" not in page


async def test_an_unknown_booking_shows_a_not_found_page_in_the_site_layout(
    client_browser: Browser,
) -> None:
    response = await client_browser.get("/bookings/987654")

    page = await response.text()
    assert response.status == 404
    assert SITE_HEADER in page
    assert "Casey Client" in page  # still signed in, in the header
    assert "Traceback" not in page


async def test_a_wrong_method_shows_a_method_not_allowed_page_in_the_site_layout(
    client_browser: Browser,
) -> None:
    response = await client_browser.get("/logout")

    page = await response.text()
    assert response.status == 405
    assert SITE_HEADER in page
    assert "Method not allowed" in page
    assert "Traceback" not in page
    assert (await client_browser.get("/bookings")).status == 200  # GET did not log out


async def test_an_unexpected_error_shows_a_calm_page_and_logs_the_traceback(
    settings: Settings, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: db password hunter2")

    app = create_app(settings)
    app.router.add_get("/explode", explode)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)

    with caplog.at_level(logging.ERROR, logger="app.middlewares"):
        response = await client.get("/explode")

    page = await response.text()
    assert response.status == 500
    assert SITE_HEADER in page
    assert "Something went wrong" in page
    assert "Traceback" not in page
    assert "RuntimeError" not in page
    assert "hunter2" not in page
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert logged, "the traceback should be logged"
    assert "hunter2" in str(logged[0].exc_info[1])  # type: ignore[index]
    # The server lives on after the error.
    assert (await client.get("/services")).status == 200


# --- Login-protected pages ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/bookings",
        "/my/services",
        "/services/new",
        "/notifications",
        "/notifications?kind=booking_update",
        "/account/sessions",
        "/account/notifications",
    ],
)
async def test_a_signed_out_visitor_is_sent_to_login_and_brought_back(
    client_browser: Browser, new_browser: BrowserFactory, path: str
) -> None:
    visitor = await new_browser()
    response = await visitor.get(path)

    assert response.status == 303
    location = URL(response.headers["Location"])
    assert location.path == "/login"
    assert location.query["next"] == path

    # Logging in from that page lands where they were going.
    page = await (await visitor.get(str(location))).text()
    assert 'name="next" value="' + path.replace("&", "&amp;") + '"' in page
    after = await visitor.post(
        "/login", {"email": "client@example.com", "password": PASSWORD, "next": path}
    )
    assert after.headers["Location"] == path
    assert (await visitor.get(path)).status == 200


# --- Password hashing -----------------------------------------------------------------------


def test_the_default_argon2_cost_meets_the_owasp_minimum() -> None:
    params = Argon2Params()
    assert params.memory_kib >= 19456
    assert params.time_cost >= 2
    assert params.parallelism >= 1


async def test_an_app_with_default_settings_stores_hashes_at_that_cost(
    settings: Settings,
) -> None:
    app = create_app(Settings(db_path=settings.db_path, secret_key=settings.secret_key))
    passwords = app[keys.PASSWORDS]

    stored = await passwords.hash("a long enough password")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify(stored, "a long enough password")
    assert not await passwords.verify(stored, "another password")
    assert not await passwords.verify(None, "a long enough password")
    assert not await passwords.verify("not a hash", "a long enough password")
