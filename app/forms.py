"""Reading form fields and path ids. Forms validate into a `field -> message` dict and
re-render with status 400 and the user's input kept (passwords excepted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.errors import NotFound

Errors = dict[str, str]


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric path segment; the route pattern bounds it to 18 digits, within SQLite's int."""
    try:
        return int(request.match_info[name])
    except (KeyError, ValueError):
        raise NotFound() from None


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
