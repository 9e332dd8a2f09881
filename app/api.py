"""The server API for other back ends (`POST /api/publish`), health and metrics."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import keys, strictjson
from app.db import ConflictError
from app.notifications.models import ENVELOPE_TYPES, stored_ids

MAX_USERS_PER_CALL = 10_000
MAX_DATA_BYTES = 16 * 1024
MAX_KEY_LENGTH = 100


class PublishError(Exception):
    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def _check_api_key(request: web.Request) -> None:
    expected = request.config_dict[keys.SETTINGS].api_key
    if expected is None:
        raise PublishError(503, "the publish API is off: start the server with APP_API_KEY set")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise PublishError(401, "missing or wrong API key (Authorization: Bearer <key>)")


def _parse_publish(body: object) -> tuple[list[int], str, dict[str, object], str | None]:
    if not isinstance(body, dict):
        raise PublishError(400, "the body must be a JSON object")
    user_ids = body.get("user_ids")
    if (
        not isinstance(user_ids, list)
        or not user_ids
        or not all(type(u) is int and 0 < u < 2**63 for u in user_ids)
    ):
        raise PublishError(422, "user_ids must be a non-empty list of user ids")
    if len(user_ids) > MAX_USERS_PER_CALL:
        raise PublishError(422, f"at most {MAX_USERS_PER_CALL} user_ids per call")
    if len(set(user_ids)) != len(user_ids):
        raise PublishError(422, "user_ids must not repeat")
    kind = body.get("type", "notification")
    if kind not in ENVELOPE_TYPES:
        raise PublishError(422, f"type must be one of {', '.join(ENVELOPE_TYPES)}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PublishError(422, "data must be a JSON object")
    if len(strictjson.dumps(data).encode()) > MAX_DATA_BYTES:
        raise PublishError(413, f"data must be at most {MAX_DATA_BYTES} bytes as JSON")
    key = body.get("key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH):
        raise PublishError(422, f"key must be a string of at most {MAX_KEY_LENGTH} characters")
    return user_ids, str(kind), data, key


async def publish(request: web.Request) -> web.StreamResponse:
    app = request.config_dict
    try:
        _check_api_key(request)
        try:
            body = strictjson.loads(await request.read())
        except strictjson.JSONRejected as exc:
            raise PublishError(400, f"the body is not acceptable JSON: {exc.message}") from None
        user_ids, kind, data, key = _parse_publish(body)
        notifier = app[keys.NOTIFIER]
        try:
            stored = await notifier.publish(user_ids, kind, data, key=key)
        except ConflictError:
            # A foreign key refused an unknown user and nothing was stored; say which.
            unknown = await notifier.unknown_users(user_ids)
            raise PublishError(
                422, "unknown users; nothing was sent", unknown_user_ids=unknown
            ) from None
    except PublishError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return web.json_response(exc.body, status=exc.status, headers=headers)
    return web.json_response({"ids": stored_ids(stored)}, status=202)


async def metrics(request: web.Request) -> web.StreamResponse:
    registry = request.config_dict[keys.METRICS].registry
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
