"""Digest emails against a local SMTP server (aiosmtpd): who gets one, that it comes once and
lists exactly what is unread, the signed unsubscribe link, and a mail server that is down. Due
digests are looked for by calling `send_due()` on notifications made old, not by waiting."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app, keys
from app.clock import to_text, utc_now
from app.config import ConfigError, Settings, settings_from_args
from app.db import Database
from tests.conftest import Browser, MakeSettings
from tests.smtp_server import SmtpServer, smtp_server  # noqa: F401 (a fixture)
from tests.ws_helpers import eventually, metric, open_live

CLIENT = "client@example.com"


def email_settings(smtp: SmtpServer) -> dict[str, Any]:
    return {
        "smtp_url": smtp.url,
        "email_scan_seconds": 3600.0,  # the tests call send_due() themselves
        "public_url": "https://market.example",
        "presence_grace_seconds": 0.0,
    }


@pytest.fixture
def settings(make_settings: MakeSettings, smtp_server: SmtpServer) -> Settings:  # noqa: F811
    return make_settings(**email_settings(smtp_server))


async def notify(app: web.Application, user_id: int | None, text: str) -> int:
    assert user_id is not None
    notification = await app[keys.NOTIFIER].send_to_user(
        user_id, "booking_update", {"type": "booking_accepted", "message": text, "booking_id": 1}
    )
    return notification.id


async def age(db: Database, seconds: int = 3600) -> None:
    await db.write_statement(
        "UPDATE notifications SET created_at = ?",
        (to_text(utc_now() - timedelta(seconds=seconds)),),
    )


def body_of(message: Any) -> str:
    return str(message.get_content())


async def test_one_digest_lists_exactly_the_unread_notifications_once(
    client_browser: Browser,
    app: web.Application,
    db: Database,
    smtp_server: SmtpServer,  # noqa: F811
    make_settings: MakeSettings,
    aiohttp_server: Any,
) -> None:
    first = await notify(app, client_browser.user_id, "Pat accepted House Cleaning")
    read = await notify(app, client_browser.user_id, "Pat accepted Dog Walking")
    await notify(app, client_browser.user_id, "Pat accepted Maths <b>tutoring</b>")
    await app[keys.NOTIFIER].mark_read(client_browser.user_id or 0, [read])
    await age(db)
    other = await aiohttp_server(create_app(make_settings(**email_settings(smtp_server))))
    sent = await asyncio.gather(app[keys.EMAIL].send_due(), other.app[keys.EMAIL].send_due())
    assert sum(sent) == 1
    [message] = smtp_server.mailbox.to(CLIENT)
    assert message["Subject"] == "You have 2 unread notifications on Marketplace"
    body = body_of(message)
    assert "Pat accepted House Cleaning" in body
    assert "Pat accepted Maths <b>tutoring</b>" in body  # plain text: shown as typed
    assert "Dog Walking" not in body
    assert "https://market.example/notifications" in body
    unsubscribe = re.search(r"https://market\.example/email/unsubscribe\?\S+", body)
    assert unsubscribe is not None
    assert str(message["List-Unsubscribe"]).strip() == f"<{unsubscribe.group(0)}>"
    assert await db.fetch_value("SELECT emailed_at FROM notifications WHERE id = ?", (first,))
    assert "Emailed" in await client_browser.page("/notifications")
    emailed = metric(app, "notifications_emailed_total", event="booking_accepted")
    emailed += metric(other.app, "notifications_emailed_total", event="booking_accepted")
    assert emailed == 2
    # Nothing new: no second email.
    assert await app[keys.EMAIL].send_due() == 0
    await notify(app, client_browser.user_id, "Pat marked it done")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 1
    assert "Pat marked it done" in body_of(smtp_server.mailbox.to(CLIENT)[-1])
    assert "House Cleaning" not in body_of(smtp_server.mailbox.to(CLIENT)[-1])


async def test_a_notification_younger_than_the_delay_waits(
    client_browser: Browser,
    app: web.Application,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    await notify(app, client_browser.user_id, "just now")
    assert await app[keys.EMAIL].send_due() == 0
    assert smtp_server.mailbox.to(CLIENT) == []


async def test_someone_online_or_with_a_push_device_gets_no_email_unless_they_asked(
    client_browser: Browser,
    server: TestServer,
    app: web.Application,
    db: Database,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    ws, _ = await open_live(client_browser, server)
    await app[keys.PRESENCE].flush()
    await notify(app, client_browser.user_id, "while online")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 0
    response = await client_browser.post("/account/email", {"email_notifications": "always"})
    assert response.status == 303
    assert await app[keys.EMAIL].send_due() == 1
    await ws.close()
    # A push device instead of a socket: still no email in the default mode.
    await client_browser.post("/account/email", {"email_notifications": "fallback"})
    await app[keys.PRESENCE].flush()
    await client_browser.post(
        "/account/push",
        {"endpoint": "https://push.example.com/x", "p256dh": "B" + "A" * 86, "auth": "A" * 22},
    )
    await notify(app, client_browser.user_id, "with a push device")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 0


async def test_the_unsubscribe_link_confirms_then_stops_the_emails(
    client_browser: Browser,
    new_browser: Any,
    app: web.Application,
    db: Database,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    await notify(app, client_browser.user_id, "first")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 1
    link = re.search(
        r"https://market\.example(/email/unsubscribe\?\S+)",
        body_of(smtp_server.mailbox.to(CLIENT)[0]),
    )
    assert link is not None
    visitor = await new_browser()  # the link works without signing in
    page = await visitor.page(link.group(1))
    assert "Stop notification emails" in page
    assert (
        await db.fetch_value(
            "SELECT email_notifications FROM users WHERE id = ?", (client_browser.user_id,)
        )
        == "fallback"
    )
    query = dict(part.split("=", 1) for part in urlsplit(link.group(1)).query.split("&"))
    forged = await visitor.post("/email/unsubscribe", {"u": query["u"], "t": "x" + query["t"][1:]})
    assert forged.status == 404
    done = await visitor.post("/email/unsubscribe", {"u": query["u"], "t": query["t"]})
    assert done.status == 200
    assert "no more notification emails" in await done.text()
    await notify(app, client_browser.user_id, "second")
    await age(db)
    assert await app[keys.EMAIL].send_due() == 0
    assert len(smtp_server.mailbox.to(CLIENT)) == 1


async def test_a_mail_server_that_is_down_loses_nothing(
    client_browser: Browser,
    app: web.Application,
    db: Database,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    await notify(app, client_browser.user_id, "kept for later")
    await age(db)
    smtp_server.stop()
    assert await app[keys.EMAIL].send_due() == 0
    assert (
        await db.fetch_value("SELECT count(*) FROM notifications WHERE emailed_at IS NOT NULL") == 0
    )
    smtp_server.start()
    assert await app[keys.EMAIL].send_due() == 1
    assert "kept for later" in body_of(smtp_server.mailbox.to(CLIENT)[0])


async def test_without_an_smtp_url_email_is_off_and_the_settings_page_says_so(
    make_settings: MakeSettings, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(create_app(make_settings()))
    assert keys.EMAIL not in server.app
    async with TestClient(server) as http:
        browser = Browser(http)
        await browser.signup("someone@example.com", "Some One")
        page = await browser.page("/account/notifications")
    assert "Email is off on this site" in page


async def test_with_an_smtp_url_the_settings_page_offers_the_choice(
    client_browser: Browser,
) -> None:
    page = await client_browser.page("/account/notifications")
    assert "Email is off" not in page
    assert 'value="fallback" checked' in page


def test_a_bad_smtp_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    env = {"APP_DB": str(tmp_path / "app.db"), "APP_SMTP_URL": "mail://user:s3cret@host"}
    with pytest.raises(ConfigError) as caught:
        settings_from_args([], env)
    assert "APP_SMTP_URL" in str(caught.value) and "s3cret" not in str(caught.value)
    good = settings_from_args([], {**env, "APP_SMTP_URL": "smtp://127.0.0.1:2525"})
    assert good.smtp_url == "smtp://127.0.0.1:2525"


async def test_the_digest_sender_looks_by_itself_while_the_app_runs(
    make_settings: MakeSettings,
    aiohttp_server: Any,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    settings = {**email_settings(smtp_server), "email_scan_seconds": 0.05, "email_delay_seconds": 0}
    site = await aiohttp_server(create_app(make_settings(**settings)))
    async with TestClient(site) as http:
        browser = Browser(http)
        await browser.signup("someone@example.com", "Some One")
        await notify(site.app, browser.user_id, "sent by the loop")
        await eventually(lambda: bool(smtp_server.mailbox.to("someone@example.com")))
    assert "sent by the loop" in body_of(smtp_server.mailbox.to("someone@example.com")[0])
