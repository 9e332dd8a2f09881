"""Money as integer minor units: parsing what people type, and showing it with its currency."""

from __future__ import annotations

import re

# Digits, an optional thousands-free decimal part of at most two places. No sign, no exponent,
# no NaN or Infinity: everything float() would accept that is not a price is refused here.
# [0-9], not \d: \d also matches full-width and other scripts' digits, which int() reads.
_AMOUNT = re.compile(r"^([0-9]{1,9})(?:\.([0-9]{1,2}))?$")
MAX_CENTS = 100_000_000  # one million in major units: more is a typo, not a booking


class MoneyError(ValueError):
    """The text is not an amount we accept; the message says why, for the form."""


def parse_cents(text: str) -> int:
    """'150', '150.5', '150.50' -> 15000, 15050, 15050; anything else raises MoneyError."""
    cleaned = text.strip()
    if not cleaned:
        raise MoneyError("Enter an amount.")
    # Checked before the strip too: str.strip() also removes non-ASCII spaces.
    match = _AMOUNT.match(cleaned) if text.isascii() else None
    if match is None:
        if re.match(r"^[0-9]+\.[0-9]{3,}$", cleaned):
            raise MoneyError("Use at most two decimal places.")
        if cleaned.startswith("-"):
            raise MoneyError("The amount must be more than zero.")
        raise MoneyError("Enter an amount like 150 or 150.00.")
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    cents = int(whole) * 100 + int(fraction)
    if cents <= 0:
        raise MoneyError("The amount must be more than zero.")
    if cents > MAX_CENTS:
        raise MoneyError(f"The amount must be at most {format_amount(MAX_CENTS)}.")
    return cents


def format_amount(cents: int) -> str:
    """15000 -> '150.00' (the form the wire protocol and forms use)."""
    return f"{cents // 100}.{cents % 100:02d}"


def format_money(cents: int, currency: str) -> str:
    """15000, 'USD' -> '150.00 USD'."""
    return f"{format_amount(cents)} {currency}"
