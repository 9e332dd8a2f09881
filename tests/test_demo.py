"""`--demo`: a newcomer's first look has accounts to log in with, services in several
categories, and ratings, all made through the site's own rules; a second start adds nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app import create_app, keys
from app.demo import DEMO_PASSWORD
from tests.conftest import MakeSettings


async def test_the_demo_has_reviewed_services_and_accounts_that_log_in(
    make_settings: MakeSettings,
    aiohttp_server: Any,
    aiohttp_client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(make_settings(demo=True))
    server = await aiohttp_server(app)
    db = app[keys.DB]
    assert "demo account: client@example.com / demo-password" in capsys.readouterr().out

    anonymous = await aiohttp_client(server)
    home = await (await anonymous.get("/")).text()
    # Featured cards carry their ratings: the best rated come first.
    assert "Rated 5.0 out of 5 from 1 review" in home
    assert "House cleaning" in home and "Guitar lessons" in home
    assert int(await db.fetch_value("SELECT count(*) FROM reviews")) == 3
    statuses = await db.fetch_all("SELECT DISTINCT status FROM bookings")
    assert [row["status"] for row in statuses] == ["completed"]
    paid = await db.fetch_all("SELECT DISTINCT status FROM payments")
    assert [row["status"] for row in paid] == ["succeeded"]
    # Each review reached its provider as a real notification.
    assert (
        int(await db.fetch_value("SELECT count(*) FROM notifications WHERE event = 'new_review'"))
        == 3
    )

    person = await aiohttp_client(server)
    page = await (await person.get("/login")).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    response = await person.post(
        "/login",
        data={"email": "sam@example.com", "password": DEMO_PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_a_second_start_with_demo_adds_nothing(
    make_settings: MakeSettings, aiohttp_server: Any
) -> None:
    first = create_app(make_settings(demo=True))
    await aiohttp_server(first)
    services = int(await first[keys.DB].fetch_value("SELECT count(*) FROM services"))

    again = create_app(make_settings(demo=True))
    await aiohttp_server(again)

    assert int(await again[keys.DB].fetch_value("SELECT count(*) FROM services")) == services
    assert int(await again[keys.DB].fetch_value("SELECT count(*) FROM reviews")) == 3
