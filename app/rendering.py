"""Page rendering with the context every page needs (the signed-in user, CSRF token, badge)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app import keys, strictjson
from app.clock import from_text
from app.conversations.store import unread_messages
from app.conversations.text import linkify
from app.marketplace.bookings import format_when
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


def month_filter(text: str | None) -> str:
    """'2026-12-03T10:00:00Z' -> 'Dec 2026' ("Member since Dec 2026")."""
    return from_text(text).strftime("%b %Y") if text else ""


def initials_filter(name: str) -> str:
    """'Pat Provider' -> 'PP', 'Cher' -> 'C': the first letter of the first and last words
    (for the avatar circle; punctuation and symbols are skipped)."""
    letters = [next((ch for ch in word if ch.isalnum()), "") for word in name.split()]
    letters = [letter for letter in letters if letter]
    if not letters:
        return "?"
    return (letters[0] + letters[-1] if len(letters) > 1 else letters[0]).upper()


FILTERS: dict[str, Callable[..., str]] = {
    "month": month_filter,
    "initials": initials_filter,
    "money": money_filter,
    "datetime": datetime_filter,
    # A booking's wall-clock time, as its notifications say it: 'Thu 3 Dec, 10:00'.
    "booking_time": partial(format_when, weekday=True),
    "linkify": linkify,
}
