"""Sign-up, login, logout and the sessions page."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from app import keys
from app.accounts import queries
from app.accounts.forms import read_login, validate_signup
from app.accounts.limits import Blocked
from app.accounts.sessions import end_session, start_session
from app.errors import NotFound
from app.forms import Errors, path_id, text
from app.middlewares import require_user
from app.push import store as push_store
from app.rendering import render
from app.security import MAX_PASSWORD_LENGTH, safe_next

WRONG_CREDENTIALS = "That email and password do not match an account."
SIGNED_UP = (
    "Thanks for signing up. Log in with your email and password to continue"
    " (if you already had an account with this email, use its password)."
)
# Session key of the email just signed up with, shown on the login form once.
_SIGNUP_EMAIL = "signup_email"


async def signup_form(request: web.Request) -> web.StreamResponse:
    if keys.USER in request:
        raise web.HTTPSeeOther("/")
    return await render(request, "accounts/signup.html", {"values": {}, "errors": {}})


async def signup(request: web.Request) -> web.StreamResponse:
    """Sign-up answers the same way whether or not the email is registered (no account
    enumeration): a new account is created, a taken email changes nothing, and both go to the
    login form with the same message, after the same password hashing."""
    form = await request.post()
    data, errors = validate_signup(form)
    if data is None:
        values = {"email": text(form, "email"), "name": text(form, "name")}
        return await render(
            request, "accounts/signup.html", {"values": values, "errors": errors}, status=400
        )
    app = request.config_dict
    password_hash = await app[keys.PASSWORDS].hash(data.password)
    try:
        await queries.create_user(app[keys.DB], data.email, data.name, password_hash)
    except queries.EmailTaken:
        pass  # the owner keeps their account; the answer below is the same
    session = await get_session(request)
    session[_SIGNUP_EMAIL] = data.email
    raise web.HTTPSeeOther(request.app.router["login"].url_for())


async def login_form(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next", "/"))
    if keys.USER in request:
        raise web.HTTPSeeOther(target)
    values = {"next": target}
    session = await get_session(request)
    signed_up = session.pop(_SIGNUP_EMAIL, None)
    if isinstance(signed_up, str):
        values["email"] = signed_up
    return await render(
        request,
        "accounts/login.html",
        {"values": values, "errors": {}, "notice": SIGNED_UP if signed_up else None},
    )


async def login(request: web.Request) -> web.StreamResponse:
    app = request.config_dict
    form = await request.post()
    email, password = read_login(form)
    target = safe_next(text(form, "next") or "/")
    values = {"email": text(form, "email"), "next": target}

    # Counted before the password is checked, so concurrent guesses cannot outrun the limit.
    attempt = await app[keys.LOGIN_LIMITER].reserve(email, request.remote or "unknown")
    if isinstance(attempt, Blocked):
        minutes = -(-attempt.retry_after // 60)
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
        errors = {"form": WRONG_CREDENTIALS}
        return await render(
            request, "accounts/login.html", {"values": values, "errors": errors}, status=400
        )

    await app[keys.LOGIN_LIMITER].succeeded(attempt)
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
    push_devices = await push_store.devices(request.config_dict[keys.DB], user.id)
    return await render(
        request,
        "accounts/sessions.html",
        {"sessions": sessions, "current_id": user.session_id, "push_devices": push_devices},
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
