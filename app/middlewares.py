"""Error pages: one middleware maps `AppError` and aiohttp's HTTP errors to
`errors/<status>.html` in the site's layout, or to JSON under `/api/`. A traceback is logged,
never shown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session

from app import keys
from app.accounts.sessions import CurrentUser
from app.db import RetryableError
from app.errors import TITLES, AppError
from app.rendering import render

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def render_error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.path == "/ws":
        return web.json_response({"error": message}, status=status)
    title = TITLES.get(status, "Error")
    return await render(
        request,
        "errors/error.html",
        {"status": status, "title": title, "message": message},
        status=status,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        return await render_error(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects pass through
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        return await render_error(request, exc.status, message or TITLES.get(exc.status, "Error"))
    except RetryableError:
        # The database let another transaction through first (PostgreSQL under contention);
        # nothing was changed, and the same request again will most likely succeed.
        log.warning("transaction refused on %s %s; asked to retry", request.method, request.path)
        return await render_error(request, 503, "The site is busy. Please try again.")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await render_error(request, 500, "An unexpected error happened. It has been logged.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Puts the signed-in user on the request, from the session cookie's token."""
    if request.path.startswith(("/api/", "/static/")) or request.path in ("/metrics", "/healthz"):
        return await handler(request)  # bearer-key API and public files: no session
    session = await get_session(request)
    token = session.get("sid")
    if isinstance(token, str):
        user = await request.config_dict[keys.SESSIONS].lookup(token)
        if user is None:
            session.invalidate()  # revoked or expired: the cookie is useless, drop it
        else:
            request[keys.USER] = user
    return await handler(request)


def require_user(request: web.Request) -> CurrentUser:
    """The signed-in user; anyone else is sent to the login page and brought back after."""
    if keys.USER not in request:
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query({"next": target}))
    return request[keys.USER]
