"""A message's text: what is accepted, and how it is shown.

Text is stored as the person wrote it (trimmed, line breaks normalised) and escaped wherever it
is shown. Links are made only of `http://` and `https://` URLs, with rel="nofollow noopener
noreferrer ugc": anything else (`javascript:`, `data:`) stays text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from app.errors import AppError

MAX_LENGTH = 4000
PREVIEW_LENGTH = 140

# Control characters other than tab and newline are refused: they have no place in a chat and
# some (bidi overrides are not among them, they are text) confuse terminals and logs.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_URL = re.compile(r"\bhttps?://[^\s<>\"]+", re.IGNORECASE)
# Punctuation that ends a sentence rather than a URL (static/js/conversation/render.js trims
# the same way, so a message looks alike rendered by either).
_TRAILING = ".,;:!?'*"


class MessageRefused(AppError):
    """A message or receipt the conversation refuses; `code` names why, for socket clients."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def clean_body(raw: str) -> str:
    """The text to store; MessageRefused when it is empty or too long."""
    body = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    body = _CONTROL.sub("", body)
    if not body:
        raise MessageRefused("message_empty", "Write something first: the message is empty.", 400)
    if len(body) > MAX_LENGTH:
        raise MessageRefused(
            "message_too_long",
            f"A message is at most {MAX_LENGTH:,} characters; this one has {len(body):,}.",
            400,
        )
    return body


def preview(body: str, length: int = PREVIEW_LENGTH) -> str:
    """The start of a message, on one line, for notifications."""
    line = " ".join(body.split())
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"


def linkify(body: str) -> Markup:
    """The message as HTML: escaped, with http(s) URLs as safe links."""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(body):
        trimmed = _trim(match.group(0))
        end = match.start() + len(trimmed)
        parts.append(escape(body[position : match.start()]))
        parts.append(
            Markup(
                '<a href="{0}" rel="nofollow noopener noreferrer ugc" target="_blank">{0}</a>'
            ).format(trimmed)
        )
        position = end
    parts.append(escape(body[position:]))
    return Markup("").join(parts)


def _trim(url: str) -> str:
    """Sentence punctuation off the end; a closing bracket only when it closes nothing opened
    inside the URL (Wikipedia's `Foo_(bar)` keeps its own)."""
    while url:
        last = url[-1]
        if last in _TRAILING or (
            last in ")]" and url.count("(["[")]".index(last)]) < url.count(last)
        ):
            url = url[:-1]
        else:
            break
    return url
