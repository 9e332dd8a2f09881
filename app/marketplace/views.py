"""Marketplace pages: services, bookings and payments."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from app import keys
from app.conversations import store as conversations
from app.errors import Conflict
from app.forms import Errors, page_number, path_id, text
from app.marketplace import billing, bookings, categories, images, reviews, services
from app.marketplace.booking_page import render_booking
from app.marketplace.forms import (
    MAX_CITY,
    validate_booking,
    validate_payment,
    validate_service,
)
from app.marketplace.payments import DECLINED_CARDS, SUCCEEDING_CARDS, failure_text
from app.middlewares import require_user
from app.money import format_amount
from app.rendering import render

log = logging.getLogger(__name__)


def _url(request: web.Request, name: str, **parts: int) -> str:
    return str(request.app.router[name].url_for(**{k: str(v) for k, v in parts.items()}))


# --- Services -----------------------------------------------------------------------------


def search_filters(query: Any) -> services.SearchFilters:
    """The search form's values; a value that is no filter (an unknown category, an overlong
    city) is ignored rather than refused: a search never fails."""
    category = query.get("category", "").strip()
    city = query.get("city", "").strip()
    return services.SearchFilters(
        query=query.get("q", "").strip()[:100],
        category=category if categories.get(category) else "",
        city=city if len(city) <= MAX_CITY else "",
        online=query.get("online", "") == "1",
    )


def _filter_query(filters: services.SearchFilters) -> dict[str, str]:
    """The filters as a query string, for the pagination links."""
    values = {"q": filters.query, "category": filters.category, "city": filters.city}
    if filters.online:
        values["online"] = "1"
    return {name: value for name, value in values.items() if value}


async def browse(request: web.Request) -> web.StreamResponse:
    filters = search_filters(request.query)
    page = page_number(request.query.get("page", "1"))
    found, total = await services.search_services(request.config_dict[keys.DB], filters, page=page)
    pages = max(1, -(-total // services.SEARCH_PAGE_SIZE))
    return await render(
        request,
        "marketplace/services.html",
        {
            "services": found,
            "filters": filters,
            "filter_query": _filter_query(filters),
            "categories": categories.CATEGORIES,
            "total": total,
            "page": page,
            "pages": pages,
        },
    )


async def _render_service(
    request: web.Request,
    service: services.Service,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> web.Response:
    context = {"service": service, "values": values or {}, "errors": errors or {}}
    context.update(
        await reviews.page_context(
            request.config_dict[keys.DB],
            service_id=service.id,
            before=request.query.get("reviews_before"),
        )
    )
    return await render(request, "marketplace/service_detail.html", context, status=status)


async def service_detail(request: web.Request) -> web.StreamResponse:
    user = request.get(keys.USER)
    service = await services.get_service(
        request.config_dict[keys.DB], path_id(request), user.id if user else None
    )
    return await _render_service(request, service)


async def service_image(request: web.Request) -> web.StreamResponse:
    """The service's picture, or its generated placeholder; for whoever may see the service."""
    user = request.get(keys.USER)
    service = await services.get_service(
        request.config_dict[keys.DB], path_id(request), user.id if user else None
    )
    content: bytes | None = None
    etag = service.image_version
    if service.image_file:
        path = images.path_of(request.config_dict[keys.SETTINGS].uploads_dir, service.image_file)
        content = await asyncio.to_thread(_read_file, path) if path else None
        if content is None:
            log.warning("service %s: picture %s is missing", service.id, service.image_file)
            etag = f"p1-{service.category_info.slug}"
    headers = images.image_headers(etag, public=service.published)
    if images.not_modified(request, etag):
        return web.Response(status=304, headers=headers)
    if content is None or not service.image_type:
        body, media_type = images.placeholder_svg(service.category_info), "image/svg+xml"
    else:
        body, media_type = content, service.image_type
    return web.Response(body=body, content_type=media_type, headers=headers)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _service_values(form: Any) -> dict[str, str]:
    names = ("name", "description", "price", "duration_minutes", "category", "city", "online")
    return {name: text(form, name) for name in names}


async def service_new_form(request: web.Request) -> web.StreamResponse:
    require_user(request)
    return await _render_service_form(request, None, {"duration_minutes": "60"}, {})


async def _render_service_form(
    request: web.Request,
    service: services.Service | None,
    values: dict[str, str],
    errors: Errors,
    status: int = 200,
) -> web.Response:
    return await render(
        request,
        "marketplace/service_form.html",
        {
            "service": service,
            "values": values,
            "errors": errors,
            "categories": categories.CATEGORIES,
            "max_image_mb": images.MAX_IMAGE_BYTES // (1024 * 1024),
        },
        status=status,
    )


async def _validate_service_form(
    form: Any,
) -> tuple[services.ServiceData | None, images.ImageUpload | None, Errors]:
    """The service fields and the chosen picture (None: no new one), or every error at once."""
    data, errors = validate_service(form)
    upload = None
    try:
        upload = await asyncio.to_thread(images.read_upload, form.get(images.IMAGE_FIELD))
    except images.ImageError as exc:
        errors["image"] = str(exc)
    if upload is not None and text(form, "remove_image") == "1":
        errors["image"] = "Choose a new picture or remove the current one, not both."
    if errors:
        return None, None, errors
    return data, upload, errors


async def service_create(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    app = request.config_dict
    form = await request.post()
    data, upload, errors = await _validate_service_form(form)
    if data is None:
        return await _render_service_form(request, None, _service_values(form), errors, 400)
    async with images.saved_with(app[keys.SETTINGS].uploads_dir, upload) as stored:
        service_id = await services.create_service(app[keys.DB], user.id, data, stored)
    raise web.HTTPSeeOther(_url(request, "service_detail", id=service_id))


async def service_edit_form(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    service = await services.get_own_service(
        request.config_dict[keys.DB], path_id(request), user.id
    )
    values = {
        "name": service.name,
        "description": service.description,
        "price": format_amount(service.price_cents),
        "duration_minutes": str(service.duration_minutes),
        "category": service.category,
        "city": service.city,
        "online": "1" if service.online else "",
    }
    return await _render_service_form(request, service, values, {})


async def service_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    app = request.config_dict
    db = app[keys.DB]
    service = await services.get_own_service(db, path_id(request), user.id)
    form = await request.post()
    data, upload, errors = await _validate_service_form(form)
    if data is None:
        return await _render_service_form(request, service, _service_values(form), errors, 400)
    uploads = app[keys.SETTINGS].uploads_dir
    async with images.saved_with(uploads, upload) as stored:
        change: services.StoredImage | services.Keep | None = services.Keep.IMAGE
        if stored is not None:
            change = stored
        elif text(form, "remove_image") == "1":
            change = None
        replaced = await services.update_service(db, service.id, user.id, data, change)
    # Only once the row no longer names it: a reader never gets a row whose file is gone.
    await asyncio.to_thread(images.delete, uploads, replaced)
    raise web.HTTPSeeOther(_url(request, "service_detail", id=service.id))


async def _set_published(request: web.Request, published: bool) -> web.StreamResponse:
    user = require_user(request)
    await services.set_published(request.config_dict[keys.DB], path_id(request), user.id, published)
    raise web.HTTPSeeOther(_url(request, "my_services"))


async def service_unpublish(request: web.Request) -> web.StreamResponse:
    return await _set_published(request, False)


async def service_publish(request: web.Request) -> web.StreamResponse:
    return await _set_published(request, True)


async def my_services(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    own = await services.list_provider_services(request.config_dict[keys.DB], user.id)
    return await render(request, "marketplace/my_services.html", {"services": own})


async def provider_profile(request: web.Request) -> web.StreamResponse:
    """Anyone's public page: who they are, their rating, their published services."""
    db = request.config_dict[keys.DB]
    provider = await services.get_provider(db, path_id(request))
    offered = await services.list_provider_services(db, provider.id, published_only=True)
    context = {"provider": provider, "services": offered}
    context.update(
        await reviews.page_context(
            db, provider_id=provider.id, before=request.query.get("reviews_before")
        )
    )
    return await render(request, "marketplace/provider.html", context)


# --- Bookings -----------------------------------------------------------------------------


async def book(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    service = await services.get_service(db, path_id(request), user.id)
    form = await request.post()
    data, errors = validate_booking(form)
    if service.provider_id == user.id:
        errors["form"] = "You cannot book your own service."
    if data is None or errors:
        values = {"scheduled_at": text(form, "scheduled_at"), "note": text(form, "note")}
        return await _render_service(request, service, values=values, errors=errors, status=400)
    booking = await bookings.create_booking(
        db,
        request.config_dict[keys.NOTIFIER],
        client_id=user.id,
        service_id=service.id,
        scheduled_at=data.scheduled_at,
        note=data.note,
    )
    raise web.HTTPSeeOther(_url(request, "booking_detail", id=booking.id))


async def bookings_page(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    return await render(
        request,
        "marketplace/bookings.html",
        {
            "incoming": await bookings.list_bookings(db, user.id, bookings.Role.PROVIDER),
            "mine": await bookings.list_bookings(db, user.id, bookings.Role.CLIENT),
            "unread_by_booking": await conversations.unread_by_booking(db, user.id),
        },
    )


async def booking_detail(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    return await render_booking(request, user.id, path_id(request))


async def booking_action(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    booking = await bookings.apply_action(
        request.config_dict[keys.DB],
        request.config_dict[keys.NOTIFIER],
        user_id=user.id,
        booking_id=path_id(request),
        action=request.match_info["action"],
    )
    raise web.HTTPSeeOther(_url(request, "booking_detail", id=booking.id))


# --- Payments -----------------------------------------------------------------------------


async def _payable_booking(request: web.Request) -> bookings.Booking:
    user = require_user(request)
    booking = await bookings.get_booking(request.config_dict[keys.DB], path_id(request), user.id)
    _refuse_unpayable(booking, user.id)
    return booking


def _refuse_unpayable(booking: bookings.Booking, user_id: int) -> None:
    if booking.role_of(user_id) is not bookings.Role.CLIENT:
        raise Conflict("Only the client who made the booking can pay for it.")
    if booking.payment_status in ("pending", "succeeded", "refunded"):
        raise Conflict("This booking is already paid.")
    if not booking.payable:
        raise Conflict(
            f"This booking is {booking.status.value}; only an accepted booking can be paid."
        )


async def _render_pay(
    request: web.Request,
    booking: bookings.Booking,
    values: dict[str, str],
    errors: Errors,
    status: int = 200,
) -> web.Response:
    user = require_user(request)
    # After a declined card, the form says why the last try failed ("Try another card").
    last_failed = (
        await billing.get_payment(request.config_dict[keys.DB], booking.payment_id, user.id)
        if booking.payment_status == "failed" and booking.payment_id is not None
        else None
    )
    return await render(
        request,
        "marketplace/pay.html",
        {
            "booking": booking,
            "values": values,
            "errors": errors,
            "last_failed": last_failed,
            "succeeding_cards": sorted(SUCCEEDING_CARDS),
            "declined_cards": [
                (card, failure_text(code)) for card, code in sorted(DECLINED_CARDS.items())
            ],
        },
        status=status,
    )


async def pay_form(request: web.Request) -> web.StreamResponse:
    booking = await _payable_booking(request)
    values = {
        "amount": format_amount(booking.price_cents),
        # One key per rendered form: submitting it twice makes one payment.
        "idempotency_key": secrets.token_urlsafe(18),
    }
    return await _render_pay(request, booking, values, {})


async def pay(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    app = request.config_dict
    form = await request.post()
    booking = await bookings.get_booking(app[keys.DB], path_id(request), user.id)
    currency = app[keys.SETTINGS].currency
    data, errors = validate_payment(form, booking.price_cents, currency)
    if data is None:
        _refuse_unpayable(booking, user.id)
        values = {"amount": text(form, "amount"), "idempotency_key": text(form, "idempotency_key")}
        return await _render_pay(request, booking, values, errors, status=400)
    # billing.pay looks the idempotency key up first, in the same transaction that checks the
    # booking: a resubmitted form (even one racing its first submission) lands on its payment.
    payment = await billing.pay(
        app[keys.DB],
        app[keys.NOTIFIER],
        app[keys.PAYMENT_PROCESSOR],
        client_id=user.id,
        booking_id=booking.id,
        amount_cents=data.amount_cents,
        currency=currency,
        card_number=data.card_number,
        idempotency_key=data.idempotency_key,
    )
    raise web.HTTPSeeOther(_url(request, "payment_detail", id=payment.id))


async def payment_detail(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    db = request.config_dict[keys.DB]
    payment = await billing.get_payment(db, path_id(request), user.id)
    booking = await bookings.get_booking(db, payment.booking_id, user.id)
    is_payer = payment.payer_id == user.id
    return await render(
        request,
        "marketplace/payment_detail.html",
        {
            "payment": payment,
            "is_payee": payment.payee_id == user.id,
            # Only the payer, only for a failed try, only while the booking still wants paying
            # (not once a later payment went through, nor after a cancel).
            "can_retry": is_payer and payment.status == "failed" and booking.payable,
        },
    )


async def refund(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    app = request.config_dict
    payment = await billing.refund(
        app[keys.DB],
        app[keys.NOTIFIER],
        app[keys.PAYMENT_PROCESSOR],
        provider_id=user.id,
        payment_id=path_id(request),
    )
    raise web.HTTPSeeOther(_url(request, "payment_detail", id=payment.id))
