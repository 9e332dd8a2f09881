"""The booking page: the booking, its payments and its conversation. Rendered by its own
route and again by the conversation's form when a message is refused."""

from __future__ import annotations

from aiohttp import web

from app import keys
from app.conversations.page import conversation_context
from app.marketplace import billing, bookings
from app.rendering import render


async def render_booking(
    request: web.Request,
    user_id: int,
    booking_id: int,
    *,
    draft: str = "",
    error: str = "",
    status: int = 200,
) -> web.Response:
    db = request.config_dict[keys.DB]
    booking = await bookings.get_booking(db, booking_id, user_id)
    payments = await billing.list_booking_payments(db, booking.id, user_id)
    context = {"booking": booking, "payments": payments, "role": booking.role_of(user_id).value}
    context.update(
        await conversation_context(request, booking_id, user_id, draft=draft, error=error)
    )
    return await render(request, "marketplace/booking_detail.html", context, status=status)
