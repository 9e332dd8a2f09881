"""Error pages: one middleware maps `AppError` and aiohttp's HTTP errors to
`errors/<status>.html` in the site's layout, or to JSON under `/api/`. A traceback is logged,
never shown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import STORAGE_KEY, get_session
from yarl import URL

from app import keys
from app.accounts.sessions import CurrentUser
from app.db import RetryableError
from app.errors import TITLES, AppError
from app.rendering import render
from app.security import own_origin, safe_next

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def render_error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.path == "/ws":
        return web.json_response({"error": message}, status=status)
    title = TITLES.get(status, "Error")
    back_url, back_label = back_link(request)
    # A booking or payment that is not there (or not theirs): their own list is the way on.
    bookings_url = str(request.app.router["bookings"].url_for())
    show_bookings = (
        status == 404
        and keys.USER in request
        and request.path.startswith(("/bookings/", "/payments/"))
        and back_url != bookings_url
    )
    return await render(
        request,
        "errors/error.html",
        {
            "status": status,
            "title": title,
            "message": message,
            "back_url": back_url,
            "back_label": back_label,
            "bookings_url": bookings_url if show_bookings else None,
        },
        status=status,
    )


def back_link(request: web.Request) -> tuple[str, str]:
    """Where an error page leads back to: the page the person came from, when the `Referer`
    is one of this site's pages (only its path and query are used, so the link can never
    leave the site), else the services list."""
    own = own_origin(request, request.config_dict[keys.SETTINGS].https)
    try:
        came_from = URL(request.headers.get("Referer", ""))
        same_site = came_from.absolute and str(came_from.origin()) == own
    except ValueError:  # not a URL, or one without an origin
        same_site = False
    if same_site:
        path = came_from.raw_path_qs
        # safe_next keeps '/bookings' and refuses '//evil.example' (a path a browser would
        # read as another site); not the failing page itself either, which leads nowhere.
        if safe_next(path) == path and path != request.path_qs:
            return path, "Go back"
    return str(request.app.router["services"].url_for()), "Back to the services"


def _default_message(status: int) -> str:
    """What an HTTP error without a text of its own says, in words."""
    if status == 404:
        return "There is no page at this address. The link may be mistyped or out of date."
    if status == 405:
        return "This page cannot be used that way."
    return TITLES.get(status, "Error")


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
        return await render_error(request, exc.status, message or _default_message(exc.status))
    except RetryableError:
        # The database let another transaction through first (PostgreSQL under contention);
        # nothing was changed, and the same request again will most likely succeed.
        log.warning("transaction refused on %s %s; asked to retry", request.method, request.path)
        return await render_error(request, 503, "The site is busy. Please try again.")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await render_error(request, 500, "An unexpected error happened. It has been logged.")


# Paths the auth middleware leaves alone: the bearer-key API and public files need no session,
# and the WebSocket route authenticates itself (see `auth_middleware`).
_NO_SESSION_PREFIXES = ("/api/", "/static/")
_NO_SESSION_PATHS = frozenset({"/metrics", "/healthz", "/ws"})


@web.middleware
def auth_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Puts the signed-in user on the request, from the session cookie's token.

    A path it leaves alone gets the handler's own coroutine back, not one of this middleware
    awaiting it: nothing of the middleware stays on the stack while the handler runs. That
    matters for `/ws`, whose handler runs as long as the socket is open: it calls
    `authenticate` itself."""
    path = request.path
    if path.startswith(_NO_SESSION_PREFIXES) or path in _NO_SESSION_PATHS:
        return handler(request)
    return _with_user(request, handler)


async def _with_user(request: web.Request, handler: Handler) -> web.StreamResponse:
    user = await authenticate(request)
    if user is not None:
        request[keys.USER] = user
    return await handler(request)


async def authenticate(request: web.Request, *, keep_session: bool = True) -> CurrentUser | None:
    """The user signed in with this request's session cookie; None for nobody. A cookie whose
    session has ended (revoked, idle or expired) is dropped with the response.

    `keep_session=False` reads the cookie without keeping its session on the request, for a
    WebSocket: its request lives as long as the socket, which never changes the session, and
    the decoded session is half a kilobyte per socket."""
    if keep_session:
        session = await get_session(request)
    else:
        session = await request[STORAGE_KEY].load_session(request)
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    user = await request.config_dict[keys.SESSIONS].lookup(token)
    if user is None:
        # Revoked or expired: the cookie is useless, drop it (through the session the
        # response saves).
        (await get_session(request)).invalidate()
    return user


def require_user(request: web.Request) -> CurrentUser:
    """The signed-in user; anyone else is sent to the login page and brought back after."""
    if keys.USER not in request:
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query({"next": target}))
    return request[keys.USER]
