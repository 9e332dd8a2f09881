"""Service pictures: checked, stored on disk beside the database, served safely; a generated
placeholder for a service without one.

A picture is accepted by what its bytes are (JPEG, PNG, WebP or GIF, recognised by their
signatures), never by the file name or the Content-Type the browser sent, and is served back
with the type decided here, `nosniff`, and a sandboxing CSP, so a file that is also something
else (an HTML or SVG polyglot) can never run as a page of this site."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from aiohttp import web

from app import keys
from app.errors import AppError
from app.forms import read_form
from app.marketplace.categories import Category
from app.marketplace.services import StoredImage

MAX_IMAGE_BYTES = 2 * 1024 * 1024
# The body limit of the two service forms: the picture plus the text fields, with room for a
# picture somewhat too large to reach the form's own check and its clear message. Every other
# request keeps the app's small client_max_size.
MAX_FORM_BYTES = MAX_IMAGE_BYTES * 2
UPLOAD_ROUTES = frozenset({"/services/new", "/services/{id}/edit"})
IMAGE_FIELD = "image"
_CHUNK = 64 * 1024
SUBFOLDER = "services"
# What image_file may hold: services/<random>.<ext>, nothing that climbs out of the folder.
_STORED_NAME = re.compile(r"^services/[A-Za-z0-9_-]{16,64}\.(?:jpg|png|webp|gif)$")

# Pictures and placeholders are fetched as images, never rendered as documents.
IMAGE_CSP = "default-src 'none'; sandbox"
MAX_AGE = 24 * 3600


class ImageError(ValueError):
    """An upload that is not a picture we take; the message is for the form."""


class UploadTooLarge(AppError):
    status = 413


@dataclass(frozen=True)
class ImageUpload:
    content: bytes
    media_type: str
    extension: str


def sniff(head: bytes) -> tuple[str, str] | None:
    """(media type, extension) of a JPEG, PNG, WebP or GIF by its first bytes; None else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", "gif"
    return None


def read_upload(field: object) -> ImageUpload | None:
    """The picture in a form's file field; None when no file was chosen. Reads at most one
    chunk past the limit, so a huge file costs no more memory than an allowed one.

    Blocking (the part is a temporary file): run it in a thread."""
    if not isinstance(field, web.FileField):
        return None  # a form without a file sends the field empty (or not at all)
    content = _read_at_most(field.file, MAX_IMAGE_BYTES)
    if not content and not field.filename:
        return None
    if len(content) > MAX_IMAGE_BYTES:
        raise ImageError("The picture must be at most 2 MB. Choose a smaller one.")
    kind = sniff(content[:16])
    if kind is None:
        raise ImageError("The picture must be a JPEG, PNG, WebP or GIF image.")
    return ImageUpload(content, *kind)


def _read_at_most(file: IO[bytes], limit: int) -> bytes:
    file.seek(0)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = file.read(_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def store(uploads: Path, upload: ImageUpload) -> StoredImage:
    """Writes the picture under `uploads/services/` with a new random name, atomically (a
    reader sees the whole file or none). Blocking: run it in a thread."""
    folder = uploads / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.{upload.extension}"
    temporary = folder / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(upload.content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, folder / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return StoredImage(f"{SUBFOLDER}/{name}", upload.media_type)


@contextlib.asynccontextmanager
async def saved_with(
    uploads: Path, upload: ImageUpload | None
) -> AsyncIterator[StoredImage | None]:
    """Stores the upload (None: no new picture) for a save in the block; if the block fails,
    deletes the file again, so a refused save leaves no file behind."""
    stored = await asyncio.to_thread(store, uploads, upload) if upload else None
    try:
        yield stored
    except BaseException:
        await asyncio.to_thread(delete, uploads, stored.file if stored else None)
        raise


def path_of(uploads: Path, image_file: str) -> Path | None:
    """The stored picture's path; None for a name that is not one this module made."""
    if not _STORED_NAME.match(image_file):
        return None
    return uploads / image_file


def delete(uploads: Path, image_file: str | None) -> None:
    """Removes a picture no service uses any more (a missing file is already gone)."""
    path = path_of(uploads, image_file) if image_file else None
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def placeholder_svg(category: Category) -> bytes:
    """A soft gradient in the category's hue with its initial: no user text inside."""
    hue = category.hue
    initial = escape(category.initial)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="300" '
        'viewBox="0 0 480 300" preserveAspectRatio="xMidYMid slice">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue}, 70%, 90%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 35) % 360}, 60%, 72%)"/>'
        "</linearGradient></defs>"
        '<rect width="480" height="300" fill="url(#g)"/>'
        f'<circle cx="240" cy="150" r="62" fill="hsl({hue}, 45%, 98%)" fill-opacity="0.55"/>'
        f'<text x="240" y="150" dy="0.35em" text-anchor="middle" font-size="64" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
        f'font-weight="600" fill="hsl({hue}, 45%, 28%)">{initial}</text>'
        "</svg>"
    ).encode()


def image_headers(etag: str, *, public: bool) -> dict[str, str]:
    """Headers for a picture or placeholder. Owner-only pictures (unpublished services) are
    never kept by shared caches."""
    return {
        "ETag": f'"{etag}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": IMAGE_CSP,
        "Cache-Control": f"public, max-age={MAX_AGE}" if public else "private, no-cache",
    }


def not_modified(request: web.Request, etag: str) -> bool:
    sent = request.headers.get("If-None-Match", "")
    return any(tag.strip() in (f'"{etag}"', f'W/"{etag}"', "*") for tag in sent.split(","))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def upload_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Lets the service forms' bodies (which carry a picture) be larger than the app's limit,
    and closes the uploaded files' temporary copies once the request is answered (aiohttp
    leaves that to the application).

    It must sit after the session and auth middlewares (they have loaded the session, so the
    clone shares it) and before the CSRF middleware, which then finds the form already read."""
    info = request.match_info
    route = info.route.resource.canonical if info.route.resource is not None else ""
    # Only a signed-in person may make the site read a large body; anyone else is sent to
    # the login page by the handler, with the app's small limit.
    if request.method != "POST" or route not in UPLOAD_ROUTES or request.get(keys.USER) is None:
        return await handler(request)
    larger = request.clone(client_max_size=MAX_FORM_BYTES)
    try:
        form = await read_form(larger)
    except web.HTTPRequestEntityTooLarge:
        raise UploadTooLarge(
            "That picture is too large: pictures may be at most 2 MB. "
            "Go back and choose a smaller one."
        ) from None
    try:
        return await handler(larger)
    finally:
        for value in form.values():
            if isinstance(value, web.FileField):
                value.file.close()
