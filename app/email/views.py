"""Email settings: the signed unsubscribe link from every digest, and the choice on the
notification settings page."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.email.digest import token_matches
from app.errors import NotFound
from app.forms import MAX_ID, NumberError, parse_int, read_form, text
from app.middlewares import require_user
from app.rendering import render
from app.security import derive_key

MODES = ("fallback", "always", "never")


def unsubscribe_key(secret: bytes) -> bytes:
    return derive_key(secret, "email-unsubscribe")


def _signed_user(request: web.Request, form: dict[str, str]) -> int:
    """The person a valid unsubscribe link names; NotFound for anything else."""
    try:
        user_id = parse_int(form.get("u", ""), minimum=1, maximum=MAX_ID)
    except NumberError:
        raise NotFound("That unsubscribe link is not valid.") from None
    key = unsubscribe_key(request.config_dict[keys.SETTINGS].secret_key)
    if not token_matches(key, user_id, form.get("t", "")):
        raise NotFound("That unsubscribe link is not valid.")
    return user_id


async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
    """The link in an email: one button to confirm (a GET must change nothing: mail scanners
    open links)."""
    values = {"u": request.query.get("u", ""), "t": request.query.get("t", "")}
    _signed_user(request, values)
    return await render(request, "email/unsubscribe.html", {"values": values, "done": False})


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    values = {"u": text(form, "u"), "t": text(form, "t")}
    user_id = _signed_user(request, values)
    await set_mode(request, user_id, "never")
    return await render(request, "email/unsubscribe.html", {"values": values, "done": True})


async def save_mode(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await read_form(request)
    mode = text(form, "email_notifications")
    if mode not in MODES:
        mode = "fallback"
    await set_mode(request, user.id, mode)
    raise web.HTTPSeeOther(request.app.router["preferences"].url_for().with_query(saved="1"))


async def set_mode(request: web.Request, user_id: int, mode: str) -> None:
    await request.config_dict[keys.DB].write_statement(
        "UPDATE users SET email_notifications = ? WHERE id = ?", (mode, user_id)
    )
