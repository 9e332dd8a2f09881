"""Quiet hours and per-channel preferences: push and email wait through a person's quiet
hours (critical events do not), and an event turned off for a channel never goes out on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from app import keys
from app.clock import to_text, utc_now
from app.config import Settings
from app.db import Database
from app.notifications.quiet import QuietHours, validate
from tests.conftest import Browser, MakeSettings
from tests.push_endpoint import PushService, start_push_service
from tests.smtp_server import SmtpServer, smtp_server  # noqa: F401 (a fixture)
from tests.test_push import PUSH_SETTINGS, subscribe

CLIENT = "client@example.com"


@pytest.fixture
def settings(make_settings: MakeSettings, smtp_server: SmtpServer) -> Settings:  # noqa: F811
    return make_settings(
        **PUSH_SETTINGS,
        smtp_url=smtp_server.url,
        email_scan_seconds=3600.0,
        public_url="https://market.example",
    )


@pytest.fixture
async def push_service() -> Any:
    service = await start_push_service()
    yield service
    assert service.server is not None
    await service.server.close()


def window_around_now(zone: str = "Asia/Tokyo") -> dict[str, str]:
    """Quiet hours, in that zone's local time, that hold right now (and wrap past midnight
    when now is late in the day)."""
    local = utc_now().astimezone(ZoneInfo(zone))
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=1)).strftime("%H:%M")
    return {"quiet_start": start, "quiet_end": end, "time_zone": zone}


async def notify(app: web.Application, user_id: int | None, event: str) -> int:
    assert user_id is not None
    notification = await app[keys.NOTIFIER].send_to_user(
        user_id, "booking_update", {"type": event, "message": f"{event} now", "booking_id": 3}
    )
    return notification.id


async def age(db: Database) -> None:
    await db.write_statement(
        "UPDATE notifications SET created_at = ?", (to_text(utc_now() - timedelta(hours=1)),)
    )


@pytest.mark.parametrize(
    ("start", "end", "at", "quiet"),
    [
        ("22:00", "07:00", "23:30", True),
        ("22:00", "07:00", "03:00", True),
        ("22:00", "07:00", "07:00", False),
        ("22:00", "07:00", "12:00", False),
        ("09:00", "17:00", "09:00", True),
        ("09:00", "17:00", "17:00", False),
        ("09:00", "09:00", "09:00", False),  # an empty window is off
    ],
)
def test_a_window_may_wrap_past_midnight(start: str, end: str, at: str, quiet: bool) -> None:
    hours = QuietHours(start, end, "UTC")
    hour, minute = map(int, at.split(":"))
    assert hours.quiet_at(datetime(2026, 12, 4, hour, minute, tzinfo=UTC)) is quiet


def test_the_window_is_the_persons_local_time() -> None:
    hours = QuietHours("22:00", "07:00", "America/New_York")
    assert hours.quiet_at(datetime(2026, 12, 4, 4, 0, tzinfo=UTC))  # 23:00 in New York
    assert not hours.quiet_at(datetime(2026, 12, 4, 14, 0, tzinfo=UTC))  # 09:00 there


def test_bad_quiet_hours_name_their_field() -> None:
    assert validate("22:00", "", "UTC") == {"quiet_end": "Give both times, or neither."}
    assert "quiet_start" in validate("25:00", "07:00", "UTC")
    assert "time_zone" in validate("22:00", "07:00", "Mars/Olympus")
    assert validate("", "", "Europe/Paris") == {}


async def test_the_settings_form_saves_quiet_hours_and_refuses_bad_ones(
    client_browser: Browser, db: Database
) -> None:
    bad = await client_browser.post(
        "/account/quiet-hours",
        {"quiet_start": "22:00", "quiet_end": "7am", "time_zone": "Europe/Paris"},
    )
    assert bad.status == 400
    assert "Use HH:MM" in await bad.text()
    assert await db.fetch_value("SELECT quiet_start FROM users") is None
    good = await client_browser.post(
        "/account/quiet-hours",
        {"quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "Europe/Paris"},
    )
    assert good.status == 303
    row = await db.fetch_one("SELECT quiet_start, quiet_end, time_zone FROM users")
    assert row is not None and tuple(row) == ("22:00", "07:00", "Europe/Paris")
    assert 'value="22:00"' in await client_browser.page("/account/notifications")


async def test_quiet_hours_hold_pushes_but_not_critical_ones(
    client_browser: Browser, app: web.Application, db: Database, push_service: PushService
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    assert (await client_browser.post("/account/quiet-hours", window_around_now())).status == 303
    held = await notify(app, client_browser.user_id, "booking_accepted")
    critical = await notify(app, client_browser.user_id, "booking_cancelled")
    await age(db)
    assert await app[keys.PUSH].send_due() == 1
    [push] = await push_service.wait_for(1)
    assert push.payload["id"] == critical
    # The window ends (quiet hours off): the held one goes.
    await client_browser.post("/account/quiet-hours", {"time_zone": "UTC"})
    assert await app[keys.PUSH].send_due() == 1
    assert (await push_service.wait_for(2))[1].payload["id"] == held


async def test_quiet_hours_hold_emails_but_not_critical_ones(
    client_browser: Browser,
    app: web.Application,
    db: Database,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    assert (await client_browser.post("/account/quiet-hours", window_around_now())).status == 303
    await notify(app, client_browser.user_id, "booking_accepted")
    await notify(app, client_browser.user_id, "payment_failed")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 1
    [first] = smtp_server.mailbox.to(CLIENT)
    assert "payment_failed now" in str(first.get_content())
    assert "booking_accepted now" not in str(first.get_content())
    await client_browser.post("/account/quiet-hours", {"time_zone": "UTC"})
    assert await app[keys.EMAIL].send_due() == 1
    assert "booking_accepted now" in str(smtp_server.mailbox.to(CLIENT)[1].get_content())


async def test_an_event_turned_off_for_push_or_email_never_goes_out_there(
    client_browser: Browser,
    app: web.Application,
    db: Database,
    push_service: PushService,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    # Everything on except push and email for booking_accepted.
    form = {
        f"{channel}:{event}": "1"
        for event in ("booking_accepted", "booking_declined")
        for channel in ("in_app", "desktop", "push", "email")
        if not (event == "booking_accepted" and channel in ("push", "email"))
    }
    assert (await client_browser.post("/account/notifications", form)).status == 303
    await notify(app, client_browser.user_id, "booking_accepted")
    declined = await notify(app, client_browser.user_id, "booking_declined")
    await age(db)
    assert await app[keys.PUSH].send_due() == 1
    assert [p.payload["id"] for p in await push_service.wait_for(1)] == [declined]
    assert await app[keys.PUSH].send_due() == 0  # the muted one is settled, not retried
    await client_browser.post("/account/email", {"email_notifications": "always"})
    assert await app[keys.EMAIL].send_due() == 1
    body = str(smtp_server.mailbox.to(CLIENT)[0].get_content())
    assert "booking_declined now" in body and "booking_accepted now" not in body
