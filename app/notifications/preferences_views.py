"""The notification settings page: which events pop up as a toast or a desktop notification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app import forms, keys
from app.forms import text
from app.middlewares import require_user
from app.notifications.preferences import (
    CHANNELS,
    EVENTS,
    Preference,
    get_preferences,
    save_preferences,
)
from app.notifications.quiet import QuietHours, save_quiet_hours, validate
from app.rendering import render

CHECKED = "1"


def read_form(form: Mapping[str, Any]) -> dict[str, Preference]:
    """Every event from the submitted checkboxes (`in_app:<event>`, `desktop:<event>`).

    An unchecked box is absent from the form, so absent means off. Other fields are ignored;
    critical events are forced on by `save_preferences`.
    """
    return {
        event.name: Preference(
            **{channel: text(form, f"{channel}:{event.name}") == CHECKED for channel in CHANNELS}
        )
        for event in EVENTS
    }


async def preferences_page(request: web.Request) -> web.StreamResponse:
    return await _render(request)


async def _render(
    request: web.Request,
    *,
    quiet_values: dict[str, str] | None = None,
    quiet_errors: dict[str, str] | None = None,
) -> web.Response:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    row = await db.fetch_one(
        "SELECT quiet_start, quiet_end, time_zone FROM users WHERE id = ?", (user.id,)
    )
    stored_quiet = {
        "quiet_start": (row["quiet_start"] or "") if row else "",
        "quiet_end": (row["quiet_end"] or "") if row else "",
        "time_zone": row["time_zone"] if row else "UTC",
    }
    prefs = await get_preferences(db, user.id)
    email_mode = await db.fetch_value(
        "SELECT email_notifications FROM users WHERE id = ?", (user.id,)
    )
    return await render(
        request,
        "notifications/preferences.html",
        {
            "events": EVENTS,
            "prefs": prefs,
            "saved": request.query.get("saved") == "1",
            "email_mode": email_mode,
            "email_enabled": request.config_dict[keys.SETTINGS].smtp_url is not None,
            "quiet": quiet_values or stored_quiet,
            "quiet_errors": quiet_errors or {},
        },
        status=400 if quiet_errors else 200,
    )


async def save_quiet_hours_form(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await forms.read_form(request)
    values = {name: text(form, name) for name in ("quiet_start", "quiet_end", "time_zone")}
    values["time_zone"] = values["time_zone"] or "UTC"
    errors = validate(values["quiet_start"], values["quiet_end"], values["time_zone"])
    if errors:
        return await _render(request, quiet_values=values, quiet_errors=errors)
    hours = QuietHours(
        values["quiet_start"] or None, values["quiet_end"] or None, values["time_zone"]
    )
    await save_quiet_hours(request.config_dict[keys.DB], user.id, hours)
    raise web.HTTPSeeOther(request.app.router["preferences"].url_for().with_query(saved="1"))


async def save(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    await save_preferences(request.config_dict[keys.DB], user.id, read_form(form))
    raise web.HTTPSeeOther(request.app.router["preferences"].url_for().with_query(saved="1"))
