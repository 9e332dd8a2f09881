"""The inbox page and its read marks."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.forms import cursor, path_id
from app.middlewares import require_user
from app.notifications import store
from app.notifications.models import ENVELOPE_TYPES
from app.rendering import render

KIND_LABELS = {
    "booking_update": "Bookings",
    "payment_update": "Payments",
    "notification": "Notices",
}


async def inbox(request: web.Request) -> web.StreamResponse:
    """The inbox page; with `?fragment=1` only the page's items and its "Load more" link,
    which the page's script appends (the same markup, rendered once, here)."""
    user = require_user(request)
    db = request.config_dict[keys.DB]
    kind = request.query.get("kind") or None
    before = cursor(request.query.get("before"))
    page = await store.list_page(db, user.id, before=before, kind=kind)
    # Listing a notification on the page is what "seen" means; "read" needs a click.
    unseen = [n.id for n in page.items if n.seen_at is None]
    if unseen:
        await request.config_dict[keys.NOTIFIER].mark_seen(user.id, unseen)
    fragment = request.query.get("fragment") == "1"
    response = await render(
        request,
        "notifications/_page.html" if fragment else "notifications/inbox.html",
        {"page": page, "kinds": ENVELOPE_TYPES, "kind_labels": KIND_LABELS},
    )
    if fragment:
        # Not a page of its own: never cached, never offered as one.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex"
    return response


def _back_to_inbox(request: web.Request) -> web.HTTPSeeOther:
    referer = request.headers.get("Referer", "")
    own = f"{request.scheme}://{request.host}/notifications"
    if referer.startswith(own):
        return web.HTTPSeeOther(referer[len(request.scheme) + 3 + len(request.host) :])
    return web.HTTPSeeOther(request.app.router["notifications"].url_for())


async def open_notification(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    notification = await store.get(db, user.id, path_id(request))
    await request.config_dict[keys.NOTIFIER].mark_read(user.id, [notification.id])
    raise web.HTTPSeeOther(notification.link or str(request.app.router["notifications"].url_for()))


async def read_one(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    notification = await store.get(db, user.id, path_id(request))
    await request.config_dict[keys.NOTIFIER].mark_read(user.id, [notification.id])
    raise _back_to_inbox(request)


async def read_all(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    await request.config_dict[keys.NOTIFIER].mark_all_read(user.id)
    raise _back_to_inbox(request)
