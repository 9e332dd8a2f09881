"""The notification settings page: which events pop up as a toast or a desktop notification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app import keys
from app.forms import text
from app.middlewares import require_user
from app.notifications.preferences import (
    EVENTS,
    Preference,
    get_preferences,
    save_preferences,
)
from app.rendering import render

CHECKED = "1"


def read_form(form: Mapping[str, Any]) -> dict[str, Preference]:
    """Every event from the submitted checkboxes (`in_app:<event>`, `desktop:<event>`).

    An unchecked box is absent from the form, so absent means off. Other fields are ignored;
    critical events are forced on by `save_preferences`.
    """
    return {
        event.name: Preference(
            in_app=text(form, f"in_app:{event.name}") == CHECKED,
            desktop=text(form, f"desktop:{event.name}") == CHECKED,
        )
        for event in EVENTS
    }


async def preferences_page(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
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
        },
    )


async def save(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    await save_preferences(request.config_dict[keys.DB], user.id, read_form(form))
    raise web.HTTPSeeOther(request.app.router["preferences"].url_for().with_query(saved="1"))
