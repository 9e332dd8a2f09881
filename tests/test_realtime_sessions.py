"""A session that ends takes its sockets with it (4401), and only its own."""

from __future__ import annotations

import time

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from app import keys
from app.config import Settings
from app.db import Database
from tests.conftest import Browser, BrowserFactory, MakeSettings
from tests.ws_helpers import eventually, metric, open_live, receive, still_answers, wait_closed

CHECK_EVERY = 0.1


@pytest.fixture
def settings(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Settings:
    # By default the periodic check is far slower than the 1 s the tests allow: a close that
    # quick must come from the logout or revocation itself.
    return make_settings(**getattr(request, "param", {"session_check_seconds": 30}))


async def two_sessions(
    provider: Browser, new_browser: BrowserFactory, server: TestServer
) -> tuple[Browser, list[ClientWebSocketResponse], list[ClientWebSocketResponse]]:
    """The provider on a second device; two sockets on each session."""
    laptop = await new_browser()
    assert (await laptop.login("provider@example.com")).status == 303
    phone_sockets = [(await open_live(provider, server))[0] for _ in range(2)]
    laptop_sockets = [(await open_live(laptop, server))[0] for _ in range(2)]
    return laptop, phone_sockets, laptop_sockets


async def test_logging_out_closes_that_sessions_sockets_with_4401_and_not_the_others(
    provider: Browser,
    new_browser: BrowserFactory,
    server: TestServer,
    app: web.Application,
) -> None:
    _laptop, phone, laptop = await two_sessions(provider, new_browser, server)

    response = await provider.post("/logout")
    assert response.status == 303

    for ws in phone:
        assert await wait_closed(ws, within=1) == (4401, "session ended")
    for ws in laptop:
        await still_answers(ws)
    assert provider.user_id is not None
    live = await app[keys.NOTIFIER].send_to_user(provider.user_id, "notification", {})
    for ws in laptop:
        assert (await receive(ws))["id"] == live.id
    hub = app[keys.HUB]
    assert len(hub.connections_of(provider.user_id)) == 2
    assert metric(app, "ws_session_closes_total") == 2
    for ws in laptop:
        await ws.close()


async def test_revoking_a_session_from_the_sessions_page_closes_its_sockets_with_4401(
    provider: Browser,
    new_browser: BrowserFactory,
    server: TestServer,
    db: Database,
) -> None:
    laptop, phone, laptop_sockets = await two_sessions(provider, new_browser, server)
    phone_session = await db.fetch_value(
        "SELECT min(id) FROM sessions WHERE user_id = ?", (provider.user_id,)
    )
    page = await laptop.page("/account/sessions")
    revoke = f"/account/sessions/{phone_session}/revoke"
    assert f'action="{revoke}"' in page  # the page offers to end the phone's session

    started = time.monotonic()
    response = await laptop.post(revoke)
    assert response.status == 303
    assert response.headers["Location"] == "/account/sessions"

    for ws in phone:
        assert await wait_closed(ws, within=1) == (4401, "session ended")
    assert time.monotonic() - started < 1
    for ws in laptop_sockets:
        await still_answers(ws)
        await ws.close()


@pytest.mark.parametrize(
    "settings", [{"session_check_seconds": CHECK_EVERY}], indirect=True, ids=["check-0.1s"]
)
@pytest.mark.parametrize("column", ["expires_at", "last_seen_at", "revoked_at"])
async def test_a_session_that_ends_in_the_database_closes_its_sockets_with_4401_soon(
    provider: Browser,
    new_browser: BrowserFactory,
    server: TestServer,
    app: web.Application,
    db: Database,
    column: str,
) -> None:
    _laptop, phone, laptop = await two_sessions(provider, new_browser, server)
    phone_session = await db.fetch_value(
        "SELECT min(id) FROM sessions WHERE user_id = ?", (provider.user_id,)
    )
    async with db.transaction() as tx:
        await tx.execute(
            f"UPDATE sessions SET {column} = '2001-01-01T00:00:00Z' WHERE id = ?",
            (phone_session,),
        )

    for ws in phone:
        assert await wait_closed(ws, within=3) == (4401, "session ended")
    for ws in laptop:
        await still_answers(ws)
    hub = app[keys.HUB]
    await eventually(lambda: len(hub.connections_of(provider.user_id or 0)) == 2)
    for ws in laptop:
        await ws.close()
