"""Sign-up, login, logout and the sessions page."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from app import keys
from app.accounts import queries
from app.accounts.forms import read_login, validate_signup
from app.accounts.sessions import end_session, start_session
from app.errors import NotFound
from app.forms import Errors, path_id, text
from app.middlewares import require_user
from app.rendering import render
from app.security import MAX_PASSWORD_LENGTH

WRONG_CREDENTIALS = "That email and password do not match an account."


def safe_next(target: str) -> str:
    """Only same-site paths: '/bookings' yes, '//evil.example' or 'https://…' no."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def signup_form(request: web.Request) -> web.StreamResponse:
    if keys.USER in request:
        raise web.HTTPSeeOther("/")
    return await render(request, "accounts/signup.html", {"values": {}, "errors": {}})


async def signup(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data, errors = validate_signup(form)
    values = {"email": text(form, "email"), "name": text(form, "name")}
    if data is not None:
        app = request.config_dict
        password_hash = await app[keys.PASSWORDS].hash(data.password)
        try:
            user = await queries.create_user(app[keys.DB], data.email, data.name, password_hash)
        except queries.EmailTaken:
            errors = {"email": "An account with this email already exists. Log in instead."}
        else:
            await start_session(request, app[keys.SESSIONS], user.id)
            raise web.HTTPSeeOther(request.app.router["services"].url_for())
    return await render(
        request, "accounts/signup.html", {"values": values, "errors": errors}, status=400
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next", "/"))
    if keys.USER in request:
        raise web.HTTPSeeOther(target)
    return await render(request, "accounts/login.html", {"values": {"next": target}, "errors": {}})


async def login(request: web.Request) -> web.StreamResponse:
    app = request.config_dict
    form = await request.post()
    email, password = read_login(form)
    target = safe_next(text(form, "next") or "/")
    values = {"email": text(form, "email"), "next": target}
    by_account = app[keys.LOGIN_FAILURES_BY_ACCOUNT]
    by_address = app[keys.LOGIN_FAILURES_BY_ADDRESS]
    address = request.remote or "unknown"

    wait = by_account.retry_after(email) or by_address.retry_after(address)
    if wait is not None:
        minutes = -(-wait // 60)
        errors: Errors = {
            "form": f"Too many failed attempts. Try again in {minutes} minute"
            + ("s." if minutes != 1 else ".")
        }
        return await render(
            request, "accounts/login.html", {"values": values, "errors": errors}, status=429
        )

    user = await queries.find_user_by_email(app[keys.DB], email) if email else None
    passwords = app[keys.PASSWORDS]
    ok = len(password) <= MAX_PASSWORD_LENGTH and await passwords.verify(
        user.password_hash if user else None, password
    )
    if user is None or not ok:
        by_account.record_failure(email)
        by_address.record_failure(address)
        errors = {"form": WRONG_CREDENTIALS}
        return await render(
            request, "accounts/login.html", {"values": values, "errors": errors}, status=400
        )

    by_account.reset(email)
    if passwords.needs_rehash(user.password_hash):
        await queries.set_password_hash(app[keys.DB], user.id, await passwords.hash(password))
    await start_session(request, app[keys.SESSIONS], user.id)
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.StreamResponse:
    user = request.get(keys.USER)
    if user is not None:
        await end_session(request, request.config_dict[keys.SESSIONS], user)
    raise web.HTTPSeeOther(request.app.router["login"].url_for())


async def sessions_page(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    sessions = await request.config_dict[keys.SESSIONS].list_active(user.id)
    return await render(
        request, "accounts/sessions.html", {"sessions": sessions, "current_id": user.session_id}
    )


async def revoke_session(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    session_id = path_id(request)
    if not await request.config_dict[keys.SESSIONS].revoke(user.id, session_id):
        raise NotFound("That session does not exist or has already ended.")
    if session_id == user.session_id:
        (await get_session(request)).invalidate()
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    raise web.HTTPSeeOther(request.app.router["sessions"].url_for())
