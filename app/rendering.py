"""Page rendering with the context every page needs (the signed-in user, CSRF token, badge)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app import keys, strictjson
from app.clock import from_text
from app.conversations.store import unread_messages
from app.conversations.text import linkify
from app.money import format_money
from app.notifications import store as inbox
from app.notifications.preferences import get_preferences, to_client
from app.security import csrf_token


async def base_context(request: web.Request) -> dict[str, Any]:
    app = request.config_dict
    user = request.get(keys.USER)
    unread = await inbox.unread_count(app[keys.DB], user.id) if user is not None else 0
    messages = await unread_messages(app[keys.DB], user.id) if user is not None else 0
    latest = await inbox.latest(app[keys.DB], user.id) if user is not None else []
    # What pops up in the browser (toast, desktop notification); the script reads it off <body>.
    prefs = (
        strictjson.dumps(to_client(await get_preferences(app[keys.DB], user.id)))
        if user is not None
        else ""
    )
    return {
        "request": request,
        "current_user": user,
        "csrf_token": await csrf_token(request, app[keys.CSRF_KEY]),
        "unread_count": unread,
        "unread_messages": messages,
        "latest_notifications": latest,
        "notification_prefs": prefs,
        "currency": app[keys.SETTINGS].currency,
    }


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    full = await base_context(request)
    if context:
        full.update(context)
    return aiohttp_jinja2.render_template(template, request, full, status=status)


def money_filter(cents: int, currency: str) -> str:
    return format_money(cents, currency)


def datetime_filter(text: str | None) -> str:
    """'2026-11-25T19:31:15Z' -> '25 Nov 2026, 19:31 UTC' (the script shows local time)."""
    if not text:
        return ""
    moment: datetime = from_text(text)
    return moment.strftime("%d %b %Y, %H:%M UTC")


FILTERS: dict[str, Callable[..., str]] = {
    "money": money_filter,
    "datetime": datetime_filter,
    "linkify": linkify,
}
