"""The payment-processor interface and the built-in simulator.

The simulator decides by card number, like a card network's test mode:

| card number           | result                          |
| --------------------- | ------------------------------- |
| 4242 4242 4242 4242   | succeeds                        |
| 5555 5555 5555 4444   | succeeds                        |
| 4000 0000 0000 0002   | declined: card_declined         |
| 4000 0000 0000 9995   | declined: insufficient_funds    |
| 4000 0000 0000 0069   | declined: expired_card          |
| any other             | declined: unknown test card     |
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

SUCCEEDING_CARDS = frozenset({"4242424242424242", "5555555555554444"})
DECLINED_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
UNKNOWN_CARD = "unknown test card"
# Outcomes that come from us rather than the card network (see billing).
PROCESSOR_UNAVAILABLE = "processor unavailable"
INTERRUPTED = "interrupted"

# What each failure code means, in words, for pages and messages. The database keeps the code
# (what the processor said); people read the sentence.
FAILURE_REASONS = {
    "card_declined": "The card was declined",
    "insufficient_funds": "The card has insufficient funds",
    "expired_card": "The card has expired",
    UNKNOWN_CARD: "The card was not recognised",
    PROCESSOR_UNAVAILABLE: "The payment service did not answer",
    INTERRUPTED: "The payment was interrupted before it finished",
}
_UNKNOWN_FAILURE = "The payment was not accepted"


def failure_text(code: str | None) -> str:
    """'card_declined' -> 'The card was declined' (no full stop: it also goes mid-sentence)."""
    return FAILURE_REASONS.get(code or "", _UNKNOWN_FAILURE)


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str | None
    failure_reason: str | None = None


class PaymentProcessor(Protocol):
    async def charge(
        self, *, amount_cents: int, currency: str, card_number: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge a card. The same idempotency key always gives the same result."""
        ...

    async def refund(self, *, reference: str, amount_cents: int) -> None:
        """Refund a charge in full; raises on failure."""
        ...

    async def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """The outcome of an earlier charge with this key, or None when there was none."""
        ...


class SimulatedProcessor:
    """A processor whose ledger is this process's memory: after a crash it has no record of
    the charges made before, as if they had never reached it."""

    def __init__(self) -> None:
        self._charges: dict[str, ChargeResult] = {}
        self.refunded: set[str] = set()

    async def charge(
        self, *, amount_cents: int, currency: str, card_number: str, idempotency_key: str
    ) -> ChargeResult:
        previous = self._charges.get(idempotency_key)
        if previous is not None:
            return previous
        if card_number in SUCCEEDING_CARDS:
            result = ChargeResult(True, "sim_ch_" + secrets.token_hex(8))
        else:
            reason = DECLINED_CARDS.get(card_number, UNKNOWN_CARD)
            result = ChargeResult(False, None, reason)
        self._charges[idempotency_key] = result
        return result

    async def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        return self._charges.get(idempotency_key)

    async def refund(self, *, reference: str, amount_cents: int) -> None:
        if reference in self.refunded:
            raise ValueError(f"charge {reference} is already refunded")
        self.refunded.add(reference)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0
