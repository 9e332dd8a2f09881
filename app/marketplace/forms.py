"""Service, booking and payment form validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.clock import utc_now
from app.forms import Errors, NumberError, check_length, parse_int, text
from app.marketplace import categories
from app.marketplace.payments import luhn_valid
from app.marketplace.services import ServiceData
from app.money import MoneyError, parse_cents

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Times are the wall-clock time where the service happens; the earliest time zone is UTC+14,
# so anything later than "now minus 14 hours" in UTC may still be in someone's future.
_TZ_SLACK = timedelta(hours=14)
MIN_DURATION = 5
MAX_DURATION = 24 * 60
MAX_CITY = 80
# Card numbers are 12 to 19 digits; spaces and dashes between groups are allowed, and only
# ASCII ones (`\s` alone would also drop no-break and ideographic spaces).
_CARD_SEPARATORS = re.compile(r"[\s-]", re.ASCII)
MAX_CARD_NUMBER = 10**19 - 1


def validate_service(form: Mapping[str, Any]) -> tuple[ServiceData | None, Errors]:
    errors: Errors = {}
    name = text(form, "name")
    description = text(form, "description")
    check_length(errors, "name", name, "Name", maximum=120)
    check_length(errors, "description", description, "Description", required=False, maximum=2000)
    price = 0
    try:
        price = parse_cents(text(form, "price"))
    except MoneyError as exc:
        errors["price"] = str(exc)
    duration = 0
    try:
        duration = parse_int(
            text(form, "duration_minutes"), minimum=MIN_DURATION, maximum=MAX_DURATION
        )
    except NumberError:
        errors["duration_minutes"] = (
            f"Enter the duration in minutes, from {MIN_DURATION} to {MAX_DURATION}."
        )
    category = text(form, "category") or categories.DEFAULT
    if categories.get(category) is None:
        errors["category"] = "Choose a category from the list."
    city = text(form, "city")
    # The page's form always sends `city`; a program posting only the fields DESIGN.md lists
    # (name, description, price, duration_minutes) keeps working and offers the service online.
    online = text(form, "online") == "1" or "city" not in form
    if online and city:
        errors["city"] = "Choose Online or enter a city, not both."
    elif not online and not city:
        errors["city"] = "Enter the city where you offer this service, or tick Online."
    else:
        check_length(errors, "city", city, "City", required=False, maximum=MAX_CITY)
    if errors:
        return None, errors
    return ServiceData(name, description, price, duration, category, city, online), errors


@dataclass(frozen=True)
class BookingRequest:
    scheduled_at: str
    note: str


def validate_booking(
    form: Mapping[str, Any], now: datetime | None = None
) -> tuple[BookingRequest | None, Errors]:
    errors: Errors = {}
    raw = text(form, "scheduled_at")
    note = text(form, "note")
    check_length(errors, "note", note, "Note", required=False, maximum=1000)
    scheduled: datetime | None = None
    try:
        # strptime's %Y and %d take any script's digits; a date is written with 0-9 only.
        ascii_ok = raw.isascii() and len(raw) <= 19
        scheduled = datetime.strptime(raw[:16], "%Y-%m-%dT%H:%M") if ascii_ok else None
    except ValueError:
        scheduled = None
    current = (now or utc_now()).replace(tzinfo=None)
    if scheduled is None:
        errors["scheduled_at"] = "Choose a date and time."
    elif scheduled < current - _TZ_SLACK:
        errors["scheduled_at"] = "Choose a time in the future."
    elif scheduled > current + timedelta(days=366):
        errors["scheduled_at"] = "Bookings can be made up to a year ahead."
    if errors or scheduled is None:
        return None, errors
    return BookingRequest(scheduled.strftime("%Y-%m-%dT%H:%M"), note), errors


@dataclass(frozen=True)
class PaymentRequest:
    amount_cents: int
    card_number: str
    idempotency_key: str


def validate_payment(
    form: Mapping[str, Any], price_cents: int, currency: str
) -> tuple[PaymentRequest | None, Errors]:
    errors: Errors = {}
    amount = 0
    try:
        amount = parse_cents(text(form, "amount"))
    except MoneyError as exc:
        errors["amount"] = str(exc)
    else:
        if amount != price_cents:
            price = f"{price_cents // 100}.{price_cents % 100:02d} {currency}"
            errors["amount"] = f"The amount must be exactly {price}, the booking's price."
    card = _CARD_SEPARATORS.sub("", text(form, "card_number"))
    if not _card_number_ok(card):
        errors["card_number"] = "Enter a valid card number (see the test cards below)."
    key = text(form, "idempotency_key")
    if not _KEY.match(key):
        errors["form"] = "This payment form is damaged. Reload the page and try again."
    if errors:
        return None, errors
    return PaymentRequest(amount, card, key), errors


def _card_number_ok(card: str) -> bool:
    """12 to 19 ASCII digits (leading zeros count) that pass the Luhn check."""
    try:
        parse_int(card, minimum=0, maximum=MAX_CARD_NUMBER)
    except NumberError:
        return False
    return 12 <= len(card) <= 19 and luhn_valid(card)
