"""Web Push end to end against a local RFC 8030 push service (tests/push_endpoint.py): the
VAPID JWT is checked and every body decrypted. Due pushes are looked for by calling
`send_due()` on notifications made old, never by waiting on a timer."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app, keys
from app.clock import to_text, utc_now
from app.config import ConfigError, Settings, settings_from_args
from app.db import Database
from app.push.sender import topic_of
from app.push.vapid import application_server_key, new_private_pem
from app.push.views import BadSubscription, check_endpoint
from tests.conftest import Browser, MakeSettings
from tests.push_endpoint import Device, PushService, start_push_service
from tests.ws_helpers import metric, open_live, receive_until

# One site, one VAPID key (run.py reads it from the file beside the cookie secret).
VAPID = new_private_pem()
# The scan loop stays out of the way: the tests call send_due() themselves.
PUSH_SETTINGS = {
    "push_allow_local_endpoints": True,
    "push_scan_seconds": 3600.0,
    "vapid_private_key": VAPID,
}


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(**PUSH_SETTINGS)


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    service = await start_push_service()
    yield service
    assert service.server is not None
    await service.server.close()


async def subscribe(browser: Browser, device: Device, endpoint: str) -> int:
    response = await browser.post("/account/push", {"endpoint": endpoint, **device.keys()})
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def notify(app: web.Application, user_id: int | None, event: str, **data: Any) -> int:
    assert user_id is not None
    notification = await app[keys.NOTIFIER].send_to_user(
        user_id, "booking_update", {"type": event, "message": f"{event} happened", **data}
    )
    return notification.id


async def age(db: Database, seconds: int = 120) -> None:
    """Every notification so far was made `seconds` ago: past the push delay."""
    await db.write_statement(
        "UPDATE notifications SET created_at = ?",
        (to_text(utc_now() - timedelta(seconds=seconds)),),
    )


async def test_a_device_subscribes_with_csrf_and_valid_keys_only(
    client_browser: Browser, push_service: PushService, db: Database
) -> None:
    device, endpoint = push_service.new_device()
    form = {"endpoint": endpoint, **device.keys()}
    assert (await client_browser.post("/account/push", form, csrf=False)).status == 403
    for bad in ({"p256dh": "AAAA"}, {"auth": "not base64!"}, {"endpoint": ""}):
        response = await client_browser.post("/account/push", {**form, **bad})
        assert response.status == 400
        assert "error" in await response.json()
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0
    await subscribe(client_browser, device, endpoint)
    key = await (await client_browser.get("/account/push")).json()
    assert key["public_key"] == application_server_key(
        client_browser.client.server.app[keys.VAPID_PEM]
    )  # type: ignore[union-attr]
    assert "data-push-devices" in await client_browser.page("/account/sessions")


async def test_an_unacknowledged_notification_is_pushed_once_to_each_device(
    client_browser: Browser,
    new_browser: Any,
    push_service: PushService,
    app: web.Application,
    db: Database,
    make_settings: MakeSettings,
    aiohttp_server: Any,
) -> None:
    phone = await new_browser()
    assert (await phone.login("client@example.com")).status == 303
    laptop_device, laptop_endpoint = push_service.new_device()
    phone_device, phone_endpoint = push_service.new_device()
    await subscribe(client_browser, laptop_device, laptop_endpoint)
    await subscribe(phone, phone_device, phone_endpoint)
    notification_id = await notify(app, client_browser.user_id, "payment_failed", payment_id=7)
    await age(db)

    # Two processes look at once: each device still gets it once.
    other = await aiohttp_server(create_app(make_settings(**PUSH_SETTINGS)))
    sent = sum(await asyncio.gather(app[keys.PUSH].send_due(), other.app[keys.PUSH].send_due()))
    assert sent == 2
    received = await push_service.wait_for(2)
    assert {r.token for r in received} == {laptop_device.token, phone_device.token}
    for push in received:
        assert push.payload == {
            "title": "Marketplace",
            "body": "payment_failed happened",
            "url": "/payments/7",
            "tag": "payment:7",
            "id": notification_id,
        }
        assert push.headers["TTL"] == "86400"
        assert push.headers["Urgency"] == "high"  # a critical event
        assert push.headers["Topic"] == "payment-7"
        assert push.vapid_key == application_server_key(app[keys.VAPID_PEM])
        assert push.claims["sub"] == "mailto:admin@localhost"
    assert push_service.refused == []
    assert await app[keys.PUSH].send_due() == 0
    assert await db.fetch_value(
        "SELECT pushed_at FROM notifications WHERE id = ?", (notification_id,)
    )
    assert "Pushed to your devices" in await client_browser.page("/notifications")
    pushed = metric(app, "notifications_pushed_total", event="payment_failed")
    pushed += metric(other.app, "notifications_pushed_total", event="payment_failed")
    assert pushed == 1  # the funnel counts the notification once, whatever the devices


async def test_a_notification_acknowledged_or_read_in_time_is_not_pushed(
    client_browser: Browser,
    push_service: PushService,
    app: web.Application,
    server: TestServer,
    db: Database,
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    ws, _ = await open_live(client_browser, server)
    acked = await notify(app, client_browser.user_id, "booking_accepted", booking_id=1)
    frame, _ = await receive_until(ws, "booking_update")
    await ws.send_json({"type": "ack", "id": frame["id"]})
    read = await notify(app, client_browser.user_id, "booking_completed", booking_id=2)
    await app[keys.NOTIFIER].mark_read(client_browser.user_id, [read])
    pushed = await notify(app, client_browser.user_id, "booking_declined", booking_id=3)
    await app[keys.ACKS].flush()
    await age(db)
    assert await app[keys.PUSH].send_due() == 1
    [push] = await push_service.wait_for(1)
    assert push.payload["id"] == pushed
    assert push.headers["Urgency"] == "normal"
    assert acked not in {r.payload["id"] for r in push_service.received}


async def test_a_notification_younger_than_the_delay_waits(
    client_browser: Browser, push_service: PushService, app: web.Application
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    await notify(app, client_browser.user_id, "booking_accepted", booking_id=1)
    assert await app[keys.PUSH].send_due() == 0  # made now; the delay is 30 s


@pytest.mark.parametrize("answer", [404, 410])
async def test_a_subscription_the_push_service_says_is_gone_is_deleted(
    client_browser: Browser,
    push_service: PushService,
    app: web.Application,
    db: Database,
    answer: int,
) -> None:
    device, endpoint = push_service.new_device(answer=answer)
    await subscribe(client_browser, device, endpoint)
    await notify(app, client_browser.user_id, "booking_accepted", booking_id=1)
    await age(db)
    assert await app[keys.PUSH].send_due() == 1
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0


async def test_a_refused_push_is_recorded_and_the_device_kept(
    client_browser: Browser, push_service: PushService, app: web.Application, db: Database
) -> None:
    device, endpoint = push_service.new_device(answer=429)
    await subscribe(client_browser, device, endpoint)
    await notify(app, client_browser.user_id, "booking_accepted", booking_id=1)
    await age(db)
    assert await app[keys.PUSH].send_due() == 1
    assert await db.fetch_value("SELECT status FROM push_deliveries") == 429
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 1
    assert await db.fetch_value("SELECT pushed_at FROM notifications") is None


async def test_logging_out_or_removing_ends_the_devices_push(
    client_browser: Browser, push_service: PushService, db: Database
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    response = await client_browser.post("/account/push/remove", {"endpoint": endpoint})
    assert response.status == 204
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0
    await subscribe(client_browser, device, endpoint)
    assert (await client_browser.post("/logout")).status == 303
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 0


async def test_someone_else_cannot_remove_a_devices_push(
    client_browser: Browser, stranger: Browser, push_service: PushService, db: Database
) -> None:
    device, endpoint = push_service.new_device()
    await subscribe(client_browser, device, endpoint)
    assert (await stranger.post("/account/push/remove", {"endpoint": endpoint})).status == 204
    assert await db.fetch_value("SELECT count(*) FROM push_subscriptions") == 1


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/x",
        "https://localhost/x",
        "https://127.0.0.1/x",
        "https://10.0.0.8/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "ftp://push.example.com/x",
        "https://push.example.com:99999/x",
    ],
)
def test_an_endpoint_inside_the_network_or_not_https_is_refused(endpoint: str) -> None:
    with pytest.raises(BadSubscription):
        check_endpoint(endpoint, allow_local=False)


def test_a_public_https_endpoint_is_accepted() -> None:
    url = "https://fcm.googleapis.com/fcm/send/abc:def"
    assert check_endpoint(url, allow_local=False) == url


def test_collapse_keys_become_valid_topics() -> None:
    assert topic_of("booking:42") == "booking-42"
    assert topic_of("conversation:" + "9" * 40) == ("conversation-" + "9" * 40)[:32]
    assert topic_of(None) is None


def test_the_vapid_key_is_made_once_beside_the_secret_private_and_reused(tmp_path: Path) -> None:
    env = {"APP_DB": str(tmp_path / "data" / "app.db")}
    first = settings_from_args([], env)
    key_file = tmp_path / "data" / "vapid.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert settings_from_args([], env).vapid_private_key == first.vapid_private_key
    assert first.vapid_private_key is not None
    assert len(application_server_key(first.vapid_private_key)) == 87  # 65 bytes, base64url


def test_a_vapid_key_from_the_environment_is_used_and_a_bad_one_refused(tmp_path: Path) -> None:
    env = {"APP_DB": str(tmp_path / "app.db"), "APP_VAPID_PRIVATE_KEY": "-----BEGIN nonsense"}
    with pytest.raises(ConfigError, match="VAPID"):
        settings_from_args([], env)
    raw = "a" * 43  # a 32-byte scalar, base64url
    settings = settings_from_args([], {**env, "APP_VAPID_PRIVATE_KEY": raw})
    assert settings.vapid_private_key is not None
    assert not (tmp_path / "vapid.pem").exists()


async def test_the_sender_looks_by_itself_while_the_app_runs(
    make_settings: MakeSettings, aiohttp_server: Any, push_service: PushService
) -> None:
    site = await aiohttp_server(
        create_app(
            make_settings(**{**PUSH_SETTINGS, "push_scan_seconds": 0.05, "push_delay_seconds": 0})
        )
    )
    async with TestClient(site) as http:
        browser = Browser(http)
        await browser.signup("someone@example.com", "Some One")
        device, endpoint = push_service.new_device()
        await subscribe(browser, device, endpoint)
        notification_id = await notify(site.app, browser.user_id, "booking_accepted", booking_id=5)
        [push] = await push_service.wait_for(1)
    assert push.payload["id"] == notification_id
