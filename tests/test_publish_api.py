"""POST /api/publish for other back ends, and the health and metrics endpoints."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from app import keys
from app.config import Settings
from app.db import Database
from tests.conftest import TEST_API_KEY, Browser, MakeSettings
from tests.ws_helpers import eventually, open_live, receive

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


@pytest.fixture
def settings(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Settings:
    return make_settings(**getattr(request, "param", {}))


async def notification_count(db: Database) -> int:
    return int(await db.fetch_value("SELECT count(*) FROM notifications"))


@pytest.mark.parametrize("settings", [{"api_key": None}], indirect=True, ids=["no-key"])
async def test_without_an_api_key_configured_the_publish_api_is_off_with_a_clear_503(
    client_browser: Browser, db: Database
) -> None:
    response = await client_browser.client.post(
        "/api/publish",
        json={"user_ids": [client_browser.user_id], "data": {}},
        headers={"Authorization": "Bearer "},
    )
    assert response.status == 503
    body = await response.json()
    assert "APP_API_KEY" in body["error"]
    assert await notification_count(db) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": f"Bearer {TEST_API_KEY}x"},
        {"Authorization": f"Bearer {TEST_API_KEY[:-1]}"},
        {"Authorization": f"Basic {TEST_API_KEY}"},
        {"Authorization": TEST_API_KEY},
        {"Authorization": "Bearer"},
        {"X-Api-Key": TEST_API_KEY},
    ],
    ids=["none", "wrong", "longer", "shorter", "basic", "no-scheme", "empty", "other-header"],
)
async def test_a_missing_or_wrong_api_key_is_refused_with_401_and_www_authenticate(
    client_browser: Browser, db: Database, headers: dict[str, str]
) -> None:
    response = await client_browser.client.post(
        "/api/publish", json={"user_ids": [client_browser.user_id], "data": {}}, headers=headers
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "API key" in (await response.json())["error"]
    assert await notification_count(db) == 0


BAD_BODIES: list[tuple[str, str, int, str]] = [
    ("not-json", "{not json", 400, "not acceptable JSON"),
    ("empty", "", 400, "not acceptable JSON"),
    ("nan", '{"user_ids": [{u}], "data": {"x": NaN}}', 400, "NaN"),
    ("infinity", '{"user_ids": [{u}], "data": {"x": -Infinity}}', 400, "Infinity"),
    ("lone-surrogate", r'{"user_ids": [{u}], "data": {"x": "\ud800"}}', 400, "invalid"),
    ("array", "[{u}]", 400, "JSON object"),
    ("string", '"hello"', 400, "JSON object"),
    ("no-user-ids", '{"data": {}}', 422, "user_ids"),
    ("empty-user-ids", '{"user_ids": [], "data": {}}', 422, "user_ids"),
    ("repeated", '{"user_ids": [{u}, {u}], "data": {}}', 422, "repeat"),
    ("string-ids", '{"user_ids": ["{u}"], "data": {}}', 422, "user_ids"),
    ("bool-ids", '{"user_ids": [true], "data": {}}', 422, "user_ids"),
    ("float-ids", '{"user_ids": [{u}.0], "data": {}}', 422, "user_ids"),
    ("zero-id", '{"user_ids": [0], "data": {}}', 422, "user_ids"),
    ("huge-id", '{"user_ids": [9223372036854775808], "data": {}}', 422, "user_ids"),
    ("ids-object", '{"user_ids": {"a": {u}}, "data": {}}', 422, "user_ids"),
    ("unknown-type", '{"user_ids": [{u}], "type": "sms", "data": {}}', 422, "type"),
    ("null-type", '{"user_ids": [{u}], "type": null, "data": {}}', 422, "type"),
    ("no-data", '{"user_ids": [{u}]}', 422, "data"),
    ("data-list", '{"user_ids": [{u}], "data": [1]}', 422, "data"),
    ("long-key", '{"user_ids": [{u}], "data": {}, "key": "' + "k" * 101 + '"}', 422, "key"),
    ("key-number", '{"user_ids": [{u}], "data": {}, "key": 5}', 422, "key"),
    ("too-large", '{"user_ids": [{u}], "data": {"x": "' + "y" * 17000 + '"}}', 413, "bytes"),
]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_a_bad_publish_request_gets_a_json_error_and_stores_nothing(
    client_browser: Browser, db: Database, body: str, status: int, fragment: str
) -> None:
    text = body.replace("{u}", str(client_browser.user_id))
    response = await client_browser.client.post(
        "/api/publish",
        data=text.encode("utf-8", "surrogatepass"),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == status
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert fragment in error, error
    assert await notification_count(db) == 0


async def test_a_body_over_the_size_limit_is_refused_with_413(
    client_browser: Browser, db: Database
) -> None:
    response = await client_browser.client.post(
        "/api/publish",
        data=b'{"user_ids": [1], "data": {"x": "' + b"y" * 300_000 + b'"}}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert await notification_count(db) == 0


async def test_unknown_users_are_listed_with_422_and_nobody_gets_anything(
    client_browser: Browser, stranger: Browser, server: TestServer, db: Database
) -> None:
    ws, _ = await open_live(client_browser, server)
    response = await client_browser.client.post(
        "/api/publish",
        json={
            "user_ids": [client_browser.user_id, 999_999, stranger.user_id, 123_456],
            "data": {"message": "hi"},
        },
        headers=AUTH,
    )
    assert response.status == 422
    body = await response.json()
    assert body["unknown_user_ids"] == [123_456, 999_999]
    assert "nothing was sent" in body["error"]
    assert await notification_count(db) == 0
    await ws.send_json({"type": "ping"})
    assert await receive(ws) == {"type": "pong", "id": None}  # and no notification first
    await ws.close()


async def test_a_publish_to_2000_users_stores_one_each_in_user_order_and_reaches_their_sockets(
    provider: Browser,
    client_browser: Browser,
    stranger: Browser,
    server: TestServer,
    db: Database,
) -> None:
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO users (email, name, password_hash, created_at)"
            " VALUES (?, ?, 'x', '2026-01-01T00:00:00Z')",
            [(f"bulk{n}@example.com", f"Bulk {n}") for n in range(1997)],
        )
    user_ids = [int(r["id"]) for r in await db.fetch_all("SELECT id FROM users")]
    assert len(user_ids) == 2000
    random.Random(3).shuffle(user_ids)
    browsers = [provider, client_browser, stranger]
    sockets = [(await open_live(b, server))[0] for b in browsers]
    data: dict[str, Any] = {"message": "Maintenance tonight 🛠", "window": {"from": "22:00"}}

    response = await provider.client.post(
        "/api/publish", json={"user_ids": user_ids, "data": data}, headers=AUTH
    )

    assert response.status == 202
    ids = (await response.json())["ids"]
    assert len(ids) == len(set(ids)) == 2000
    rows = await db.fetch_all("SELECT id, user_id, type, data FROM notifications")
    owner = {r["id"]: r["user_id"] for r in rows}
    assert [owner[i] for i in ids] == user_ids
    assert {(r["type"], r["data"]) for r in rows} == {
        ("notification", '{"message":"Maintenance tonight 🛠","window":{"from":"22:00"}}')
    }
    for browser, ws in zip(browsers, sockets, strict=True):
        frame = await receive(ws)
        assert frame["id"] == ids[user_ids.index(browser.user_id or 0)]
        assert frame["data"] == data
        assert frame["unread"] == 1
        await ws.close()


async def test_healthz_answers_200(client_browser: Browser) -> None:
    response = await client_browser.client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "up"


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_are_prometheus_text_and_count_what_happened(
    client_browser: Browser, server: TestServer, app: web.Application
) -> None:
    ws, _ = await open_live(client_browser, server)
    response = await client_browser.client.post(
        "/api/publish",
        json={"user_ids": [client_browser.user_id], "data": {"type": "promo", "message": "Hi"}},
        headers=AUTH,
    )
    [notification_id] = (await response.json())["ids"]
    assert (await receive(ws))["id"] == notification_id
    assert (await client_browser.post(f"/notifications/{notification_id}/read")).status == 303
    assert (await receive(ws))["type"] == "notification_read"

    response = await client_browser.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    samples = parse_metrics(text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("ws_connections") == 1
    assert value("ws_users_online") == 1
    assert value("ws_frames_sent_total") >= 4  # welcome, replay_done, notification, read
    assert value("ws_frames_dropped_total") == 0
    assert value("ws_replays_total") == 1
    assert value("ws_slow_consumer_closes_total") == 0
    assert value("ws_heartbeat_timeouts_total") == 0
    assert value("notifications_created_total", event="promo") == 1
    assert value("notifications_sent_total", event="promo") == 1
    assert value("notifications_read_total", event="promo") == 1
    assert value("notification_publish_to_send_seconds_count") >= 1
    assert value("notification_publish_to_send_seconds_bucket", le="+Inf") >= 1
    assert "# TYPE notification_publish_to_send_seconds histogram" in text

    await ws.close()
    await eventually(lambda: app[keys.HUB].connection_count == 0)
    samples = parse_metrics(await (await client_browser.client.get("/metrics")).text())
    assert samples[("ws_connections", frozenset())] == 0
    assert samples[("ws_users_online", frozenset())] == 0
