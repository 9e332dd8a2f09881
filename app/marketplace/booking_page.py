"""The booking page: the booking, its payments, its review and its conversation. Rendered by
its own route and again by the conversation's and the review's forms when they refuse input."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.conversations.page import conversation_context
from app.forms import Errors
from app.marketplace import billing, bookings, reviews
from app.rendering import render


async def render_booking(
    request: web.Request,
    user_id: int,
    booking_id: int,
    *,
    draft: str = "",
    error: str = "",
    review_values: dict[str, str] | None = None,
    review_errors: Errors | None = None,
    status: int = 200,
) -> web.Response:
    db = request.config_dict[keys.DB]
    booking = await bookings.get_booking(db, booking_id, user_id)
    payments = await billing.list_booking_payments(db, booking.id, user_id)
    role = booking.role_of(user_id)
    review = await reviews.for_booking(db, booking.id)
    context = {
        "booking": booking,
        "payments": payments,
        "role": role.value,
        "review": review,
        "can_review": review is None
        and role is bookings.Role.CLIENT
        and booking.status is bookings.Status.COMPLETED,
        "review_form": {"values": review_values or {}, "errors": review_errors or {}},
    }
    context.update(
        await conversation_context(request, booking_id, user_id, draft=draft, error=error)
    )
    return await render(request, "marketplace/booking_detail.html", context, status=status)
