"""The service worker and the routes a device subscribes through (JSON answers: only the
page's script and the service worker call them)."""

from __future__ import annotations

import binascii
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from app import keys
from app.forms import read_form, text
from app.push import store
from app.push.vapid import application_server_key, b64url_decode
from app.security import csrf_token

SERVICE_WORKER = Path(__file__).resolve().parents[2] / "static" / "js" / "sw.js"
MAX_ENDPOINT = 1000


class BadSubscription(ValueError):
    pass


async def service_worker(request: web.Request) -> web.StreamResponse:
    """Served from the root, so its scope is the whole site."""
    return web.Response(
        body=SERVICE_WORKER.read_bytes(),
        content_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


def _signed_in(request: web.Request) -> int | None:
    user = request.get(keys.USER)
    return None if user is None else user.id


async def push_key(request: web.Request) -> web.StreamResponse:
    if _signed_in(request) is None:
        return web.json_response({"error": "sign in first"}, status=401)
    app = request.config_dict
    return web.json_response(
        {
            "public_key": application_server_key(app[keys.VAPID_PEM]),
            "csrf_token": await csrf_token(request, app[keys.CSRF_KEY]),
        },
        headers={"Cache-Control": "no-store"},
    )


async def subscribe(request: web.Request) -> web.StreamResponse:
    user = request.get(keys.USER)
    if user is None:
        return web.json_response({"error": "sign in first"}, status=401)
    form = await read_form(request)
    try:
        endpoint = check_endpoint(
            text(form, "endpoint"), request.config_dict[keys.SETTINGS].push_allow_local_endpoints
        )
        p256dh = check_key(text(form, "p256dh"), 65, "p256dh")
        auth = check_key(text(form, "auth"), 16, "auth")
    except BadSubscription as exc:
        return web.json_response({"error": str(exc)}, status=400)
    subscription_id = await store.save(
        request.config_dict[keys.DB],
        user_id=user.id,
        session_id=user.session_id,
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        user_agent=request.headers.get("User-Agent", ""),
    )
    return web.json_response({"id": subscription_id}, status=201)


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    user_id = _signed_in(request)
    if user_id is None:
        return web.json_response({"error": "sign in first"}, status=401)
    form = await read_form(request)
    await store.remove(request.config_dict[keys.DB], user_id, text(form, "endpoint"))
    return web.Response(status=204)


def check_endpoint(endpoint: str, allow_local: bool) -> str:
    """A push service URL: https, a public host name or address. An endpoint is a URL this
    server will POST to, so one pointing inside the network is refused (allow_local: the
    tests' local push service)."""
    if not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise BadSubscription("the subscription has no endpoint, or one that is too long")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise BadSubscription("the endpoint is not a URL") from None
    if allow_local and parts.scheme in ("http", "https") and host:
        return endpoint
    if parts.scheme != "https" or not host:
        raise BadSubscription("the endpoint must be an https:// URL")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise BadSubscription("the endpoint must be a public push service")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return endpoint
    if not address.is_global:
        raise BadSubscription("the endpoint must be a public push service")
    return endpoint


def check_key(value: str, size: int, name: str) -> str:
    try:
        raw = b64url_decode(value)
    except (binascii.Error, ValueError):
        raise BadSubscription(f"{name} is not base64url") from None
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        raise BadSubscription(f"{name} is not a key of the right size")
    return value
