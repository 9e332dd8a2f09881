"""Reading form fields and path ids. Forms validate into a `field -> message` dict and
re-render with status 400 and the user's input kept (passwords excepted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from app.errors import BadRequest, NotFound

Errors = dict[str, str]

MAX_ID = 2**63 - 1  # SQLite's largest integer
MAX_PAGE = 999_999  # ?page= beyond this is a typo or a probe, not a reader


class NumberError(ValueError):
    """Text that `parse_int` refuses; the message says why, after the field's name."""


def parse_int(text: str, *, minimum: int, maximum: int) -> int:
    """The whole number `text` spells with the ASCII digits 0-9 only, if it lies within
    minimum..maximum (both inclusive); anything else raises NumberError.

    No sign, no spaces, no underscores: callers strip what they allow first. `str.isdigit`
    and `int()` also take superscripts, full-width and other scripts' digits, which other
    systems reading the same value do not, so only 0-9 are numbers here.
    """
    if not text or not text.isascii() or not text.isdigit():
        raise NumberError("must be a whole number written with the digits 0-9")
    # Compare lengths before int(): int() of thousands of digits is slow, then refused.
    if len(text.lstrip("0")) > len(str(maximum)):
        raise NumberError(f"must be at most {maximum}")
    number = int(text)
    if number > maximum:
        raise NumberError(f"must be at most {maximum}")
    if number < minimum:
        raise NumberError(f"must be at least {minimum}")
    return number


def page_number(raw: str) -> int:
    """A `?page=` value: anything but a page number reads as the first page."""
    try:
        return parse_int(raw, minimum=1, maximum=MAX_PAGE)
    except NumberError:
        return 1


def cursor(raw: str | None) -> int | None:
    """A `?before=` value: the id a page of a list starts below. Anything but an id (a stale
    or mistyped link) reads as None, the newest page."""
    if raw is None:
        return None
    try:
        return parse_int(raw, minimum=1, maximum=MAX_ID)
    except NumberError:
        return None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric path segment (the routes admit 0-9 only); out of range is not found."""
    try:
        return parse_int(request.match_info[name], minimum=1, maximum=MAX_ID)
    except (KeyError, NumberError):
        raise NotFound() from None


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The request's form body; one that cannot be parsed is the client's error (400).

    aiohttp raises ValueError (missing or wrong boundary, truncated part, undecodable bytes),
    LookupError (unknown charset), RuntimeError (unknown transfer encoding, bad `_charset_`)
    and HttpProcessingError (bad part headers) for a malformed body. Its size limit raises
    HTTPRequestEntityTooLarge, which is left to pass as the 413 it is.
    """
    try:
        return await request.post()
    except (ValueError, LookupError, RuntimeError, HttpProcessingError):
        raise BadRequest("The form could not be read. Reload the page and try again.") from None


def text(form: Mapping[str, Any], name: str) -> str:
    """A text field, stripped; files and missing fields read as empty."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def check_length(
    errors: Errors, name: str, value: str, label: str, *, required: bool = True, maximum: int
) -> None:
    if required and not value:
        errors[name] = f"{label} is required."
    elif len(value) > maximum:
        errors[name] = f"{label} must be at most {maximum} characters."
    elif any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value) or "\x00" in value:
        errors[name] = f"{label} contains characters we cannot store."
