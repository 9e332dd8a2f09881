"""The review form on the booking page (works without JavaScript)."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.errors import BadRequest, Conflict, Forbidden
from app.forms import path_id, read_form, text
from app.marketplace import reviews
from app.marketplace.booking_page import render_booking
from app.middlewares import require_user


async def post_review(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    booking_id = path_id(request)
    form = await read_form(request)
    data, errors = reviews.validate_review(form)
    raw = form.get("body", "")
    values = {
        "rating": text(form, "rating"),
        "body": reviews.clean_body(raw if isinstance(raw, str) else ""),
    }
    if data is None:
        # Another person's booking is not found here too: render_booking looks it up as theirs.
        return await render_booking(
            request, user.id, booking_id, review_values=values, review_errors=errors, status=400
        )
    try:
        await reviews.leave_review(
            request.config_dict[keys.DB],
            request.config_dict[keys.NOTIFIER],
            client_id=user.id,
            booking_id=booking_id,
            rating=data.rating,
            body=data.body,
        )
    except (BadRequest, Forbidden, Conflict) as exc:
        # NotFound (not their booking) passes on to the 404 page.
        return await render_booking(
            request,
            user.id,
            booking_id,
            review_values=values,
            review_errors={"form": exc.message},
            status=exc.status,
        )
    location = request.app.router["booking_detail"].url_for(id=str(booking_id))
    raise web.HTTPSeeOther(f"{location}#review")
