"""The conversation's forms on the booking page (they work without JavaScript)."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.conversations.text import MessageRefused
from app.forms import path_id, read_form, text
from app.marketplace.booking_page import render_booking
from app.middlewares import require_user
from app.realtime.protocol import MAX_CLIENT_MSG_ID


async def post_message(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    booking_id = path_id(request)
    form = await read_form(request)
    raw = form.get("body", "")
    body = raw if isinstance(raw, str) else ""
    client_msg_id = text(form, "client_msg_id")[:MAX_CLIENT_MSG_ID] or None
    conversations = request.config_dict[keys.CONVERSATIONS]
    try:
        sent = await conversations.send(user.id, booking_id, body, client_msg_id)
    except MessageRefused as exc:
        return await render_booking(
            request, user.id, booking_id, draft=body, error=exc.message, status=exc.status
        )
    location = request.app.router["booking_detail"].url_for(id=str(booking_id))
    raise web.HTTPSeeOther(f"{location}#m-{sent.message.seq}")


async def mute(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    booking_id = path_id(request)
    form = await read_form(request)
    muted = text(form, "muted") == "1"
    await request.config_dict[keys.CONVERSATIONS].set_muted(user.id, booking_id, muted)
    location = request.app.router["booking_detail"].url_for(id=str(booking_id))
    raise web.HTTPSeeOther(f"{location}#conversation")
