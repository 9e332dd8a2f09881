"""Passwords, CSRF tokens, same-origin checks and response headers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Argon2Params
from app.errors import CsrfError
from app.forms import read_form

MAX_PASSWORD_LENGTH = 256  # Argon2 takes any length; the cap keeps one request cheap.
MIN_PASSWORD_LENGTH = 8

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so the cookie and CSRF keys never coincide."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


class Passwords:
    """Argon2id hashing, run in the default executor: a hash takes tens of milliseconds."""

    def __init__(self, params: Argon2Params) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        # Verified against when the email is unknown, so both answers take the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self._hasher.hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, password_hash: str | None, password: str) -> bool:
        stored = self._dummy_hash if password_hash is None else password_hash
        ok = await asyncio.get_running_loop().run_in_executor(None, self._verify, stored, password)
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


# --- CSRF ---------------------------------------------------------------------------------
# The token is an HMAC of what the session cookie carries: the session token when signed in,
# else a random per-browser nonce. A page from another site can neither read it nor make it.

CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def csrf_token(request: web.Request, key: bytes) -> str:
    session = await get_session(request)
    binding = session.get("sid") or session.get("anon")
    if not binding:
        binding = secrets.token_urlsafe(24)
        session["anon"] = binding
    return hmac.new(key, str(binding).encode(), hashlib.sha256).hexdigest()


def own_origin(request: web.Request, https: bool) -> str:
    scheme = "https" if https else request.scheme
    return f"{scheme}://{request.host}"


# What browsers drop from a URL before following it: ASCII tab and newline anywhere, and
# C0 controls and spaces at either end (WHATWG URL parsing).
_URL_IGNORED = str.maketrans("", "", "\t\n\r")


def safe_next(target: str) -> str:
    """Only same-site paths: '/bookings' yes, '//evil.example' or 'https://…' no.

    Checked as a browser will read it: `/\t/evil.example` is `//evil.example` to a browser
    (and to the Location header once the tab is dropped), so the check runs on the text after
    that same normalisation, and returns that normalised text.
    """
    cleaned = target.translate(_URL_IGNORED).strip("".join(map(chr, range(0x21))))
    if (
        cleaned.startswith("/")
        and not cleaned.startswith(("//", "/\\"))
        and cleaned.isprintable()
        and "\\" not in cleaned
    ):
        return cleaned
    return "/"


def csrf_middleware(key: bytes, https: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Checks every unsafe request except the bearer-token API under /api/.

    A request it does not check gets the handler's own coroutine back, not one of this
    middleware awaiting it, so nothing of the middleware stays on the stack while the handler
    runs (a WebSocket's handler runs as long as the socket is open)."""

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if request.method in SAFE_METHODS or request.path.startswith("/api/"):
            return handler(request)
        return checked(request, handler)

    async def checked(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin != own_origin(request, https):
            raise CsrfError("This request came from another site and was refused.")
        # The first read of the body: a malformed one is a 400 here, for every form at once.
        form = await read_form(request)
        sent = form.get(CSRF_FIELD)
        expected = await csrf_token(request, key)
        if not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
            raise CsrfError()
        return await handler(request)

    return middleware


# --- Response headers ---------------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def headers_middleware(
    signed_in: Callable[[web.Request], bool],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if signed_in(request) and not request.path.startswith("/static/"):
            # A response that chose its own caching (a service picture) keeps it.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return middleware
