"""Payments for bookings: charge, refund, and the notifications each sends.

    pending --processor says yes--> succeeded --provider refunds--> refunded
    pending --processor says no---> failed      (the client may try again)

Paying is two transactions around the processor call, so the database is not locked while a
card network thinks: the first records a `pending` payment (a unique index allows one live
payment per booking, and the idempotency key makes a double-submitted form find the first
payment instead of making a second), the second records the outcome with its notifications.
A refund holds the transaction across the processor call: the conditional update makes it
the only refund of that payment, and a processor failure rolls the change back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from app.clock import now_text, to_text, utc_now
from app.db import ConflictError, Database, Row
from app.errors import Conflict, Forbidden, NotFound
from app.marketplace.bookings import Role, Status, booking_lock, format_when, get_booking
from app.marketplace.payments import (
    INTERRUPTED,
    PROCESSOR_UNAVAILABLE,
    ChargeResult,
    PaymentProcessor,
    failure_text,
)
from app.money import format_amount, format_money
from app.notifications.service import NotificationService

log = logging.getLogger(__name__)

_SELECT = (
    "SELECT p.*, b.service_name, b.scheduled_at, c.name AS payer_name, v.name AS payee_name"
    " FROM payments p"
    " JOIN bookings b ON b.id = p.booking_id"
    " JOIN users c ON c.id = p.payer_id JOIN users v ON v.id = p.payee_id"
)

# A charge that has not answered in this long is given up as failed (the client may pay
# again), so no payment stays pending longer than this while its process runs.
CHARGE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Payment:
    id: int
    booking_id: int
    payer_id: int
    payee_id: int
    payer_name: str
    payee_name: str
    service_name: str
    scheduled_at: str  # the booking's
    amount_cents: int
    currency: str
    status: str
    card_last4: str
    processor_ref: str | None
    failure_reason: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> Payment:
        return cls(
            id=row["id"],
            booking_id=row["booking_id"],
            payer_id=row["payer_id"],
            payee_id=row["payee_id"],
            payer_name=row["payer_name"],
            payee_name=row["payee_name"],
            service_name=row["service_name"],
            scheduled_at=row["scheduled_at"],
            amount_cents=row["amount_cents"],
            currency=row["currency"],
            status=row["status"],
            card_last4=row["card_last4"],
            processor_ref=row["processor_ref"],
            failure_reason=row["failure_reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def amount(self) -> str:
        return format_amount(self.amount_cents)

    @property
    def money(self) -> str:
        return format_money(self.amount_cents, self.currency)

    @property
    def failure_text(self) -> str:
        """Why it failed, in words: 'The card was declined'."""
        return failure_text(self.failure_reason)

    def payload(self, event: str, message: str) -> dict[str, object]:
        return {
            "type": event,
            "payment_id": self.id,
            "booking_id": self.booking_id,
            "service_name": self.service_name,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "message": message,
        }


async def get_payment(db: Database, payment_id: int, user_id: int) -> Payment:
    """The payment if `user_id` paid it or is paid by it; NotFound for anyone else."""
    row = await db.fetch_one(
        f"{_SELECT} WHERE p.id = ? AND (p.payer_id = ? OR p.payee_id = ?)",
        (payment_id, user_id, user_id),
    )
    if row is None:
        raise NotFound("That payment does not exist.")
    return Payment.from_row(row)


async def list_booking_payments(db: Database, booking_id: int, user_id: int) -> list[Payment]:
    rows = await db.fetch_all(
        f"{_SELECT} WHERE p.booking_id = ? AND (p.payer_id = ? OR p.payee_id = ?)"
        " ORDER BY p.id DESC",
        (booking_id, user_id, user_id),
    )
    return [Payment.from_row(row) for row in rows]


async def _find_by_key(db: Database, payer_id: int, idempotency_key: str) -> Payment | None:
    row = await db.fetch_one(
        f"{_SELECT} WHERE p.payer_id = ? AND p.idempotency_key = ?", (payer_id, idempotency_key)
    )
    return None if row is None else Payment.from_row(row)


async def start_payment(
    db: Database,
    *,
    client_id: int,
    booking_id: int,
    amount_cents: int,
    currency: str,
    card_last4: str,
    idempotency_key: str,
) -> tuple[Payment, bool]:
    """Record a pending payment; (payment, True) when new, (earlier one, False) on a resubmit."""
    try:
        return await _start_payment(
            db,
            client_id=client_id,
            booking_id=booking_id,
            amount_cents=amount_cents,
            currency=currency,
            card_last4=card_last4,
            idempotency_key=idempotency_key,
        )
    except ConflictError:
        # A concurrent submit (another process, on PostgreSQL) wrote its row between our
        # checks and our insert: the unique key found the same form, the partial unique index
        # another live payment of the booking.
        earlier = await _find_by_key(db, client_id, idempotency_key)
        if earlier is not None:
            return earlier, False
        raise Conflict("This booking is already paid.") from None


async def _start_payment(
    db: Database,
    *,
    client_id: int,
    booking_id: int,
    amount_cents: int,
    currency: str,
    card_last4: str,
    idempotency_key: str,
) -> tuple[Payment, bool]:
    async with db.transaction() as tx:
        # A cancel of this booking, or a second submit of this form, waits until this
        # payment is recorded (or refused), and then sees it.
        await tx.lock(booking_lock(booking_id))
        earlier = await _find_by_key(db, client_id, idempotency_key)
        if earlier is not None:
            return earlier, False
        booking = await get_booking(db, booking_id, client_id)
        if booking.role_of(client_id) is not Role.CLIENT:
            raise Conflict("Only the client who made the booking can pay for it.")
        if booking.status not in (Status.ACCEPTED, Status.COMPLETED):
            raise Conflict(
                f"This booking is {booking.status.value}; only an accepted booking can be paid."
            )
        if booking.payment_status in ("pending", "succeeded", "refunded"):
            raise Conflict("This booking is already paid.")
        if amount_cents != booking.price_cents:
            raise Conflict(
                f"The amount must be exactly {format_amount(booking.price_cents)} {currency},"
                " the booking's price."
            )
        now = now_text()
        payment_id = await tx.fetch_value(
            "INSERT INTO payments (booking_id, payer_id, payee_id, amount_cents, currency,"
            " status, idempotency_key, card_last4, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
            (
                booking.id,
                client_id,
                booking.provider_id,
                amount_cents,
                currency,
                idempotency_key,
                card_last4,
                now,
                now,
            ),
        )
        return await get_payment(db, int(payment_id), client_id), True


async def pay(
    db: Database,
    notifier: NotificationService,
    processor: PaymentProcessor,
    *,
    client_id: int,
    booking_id: int,
    amount_cents: int,
    currency: str,
    card_number: str,
    idempotency_key: str,
) -> Payment:
    payment, is_new = await start_payment(
        db,
        client_id=client_id,
        booking_id=booking_id,
        amount_cents=amount_cents,
        currency=currency,
        card_last4=card_number[-4:],
        idempotency_key=idempotency_key,
    )
    if not is_new:
        return payment
    try:
        result = await asyncio.wait_for(
            processor.charge(
                amount_cents=amount_cents,
                currency=currency,
                card_number=card_number,
                idempotency_key=_processor_key(client_id, idempotency_key),
            ),
            CHARGE_TIMEOUT_SECONDS,
        )
    except Exception:
        log.exception("payment processor failed on payment %s", payment.id)
        result = ChargeResult(False, None, PROCESSOR_UNAVAILABLE)
    return await _finish_payment(
        db, notifier, payment.id, result.succeeded, result.reference, result.failure_reason
    )


def _processor_key(payer_id: int, idempotency_key: str) -> str:
    return f"{payer_id}:{idempotency_key}"


async def _finish_payment(
    db: Database,
    notifier: NotificationService,
    payment_id: int,
    succeeded: bool,
    reference: str | None,
    reason: str | None,
) -> Payment:
    async with db.transaction() as tx:
        result = await tx.execute(
            "UPDATE payments SET status = ?, processor_ref = ?, failure_reason = ?,"
            " updated_at = ? WHERE id = ? AND status = 'pending'",
            (
                "succeeded" if succeeded else "failed",
                reference,
                None if succeeded else reason,
                now_text(),
                payment_id,
            ),
        )
        row = await tx.fetch_one(f"{_SELECT} WHERE p.id = ?", (payment_id,))
        assert row is not None
        payment = Payment.from_row(row)
        if result.rowcount != 1:
            return payment  # finished elsewhere (interrupted-payment clean-up)
        if succeeded:
            await notifier.send_payment_update(
                payment.payee_id,
                payment.payload(
                    "payment_received",
                    f"{payment.payer_name} paid {payment.money} for {payment.service_name}"
                    f" on {format_when(payment.scheduled_at)}.",
                ),
            )
            await notifier.send_payment_update(
                payment.payer_id,
                payment.payload(
                    "payment_confirmed",
                    f"Your payment of {payment.money} for {payment.service_name} went through.",
                ),
            )
        else:
            reason_text = payment.failure_text
            await notifier.send_payment_update(
                payment.payer_id,
                payment.payload(
                    "payment_failed",
                    f"Your payment for {payment.service_name} did not go through:"
                    f" {reason_text[0].lower()}{reason_text[1:]}. You have not been charged.",
                ),
            )
    return payment


async def refund(
    db: Database,
    notifier: NotificationService,
    processor: PaymentProcessor,
    *,
    provider_id: int,
    payment_id: int,
) -> Payment:
    async with db.transaction() as tx:
        payment = await get_payment(db, payment_id, provider_id)
        if payment.payee_id != provider_id:
            raise Forbidden("Only the provider who was paid can refund a payment.")
        if payment.status != "succeeded":
            raise Conflict(
                f"This payment is {payment.status}; only a successful payment can be refunded."
            )
        result = await tx.execute(
            "UPDATE payments SET status = 'refunded', updated_at = ?"
            " WHERE id = ? AND status = 'succeeded'",
            (now_text(), payment_id),
        )
        if result.rowcount != 1:
            raise Conflict("This payment changed in the meantime. Reload and try again.")
        assert payment.processor_ref is not None
        await processor.refund(reference=payment.processor_ref, amount_cents=payment.amount_cents)
        refunded = await get_payment(db, payment_id, provider_id)
        await notifier.send_payment_update(
            refunded.payer_id,
            refunded.payload(
                "payment_refunded",
                f"{refunded.payee_name} refunded {refunded.money} for {refunded.service_name}.",
            ),
        )
    return refunded


async def resolve_interrupted_payments(
    db: Database,
    notifier: NotificationService,
    processor: PaymentProcessor,
    *,
    older_than_seconds: float,
) -> int:
    """Finish payments left pending by a process that stopped mid-charge; returns how many.

    A payment pending for longer than any charge may take (`older_than_seconds` is more than
    CHARGE_TIMEOUT_SECONDS) is not in flight anywhere. The processor is asked for the charge by
    its idempotency key: a charge it made is recorded as made; one it never saw fails as
    interrupted, and the client can pay the booking again. Safe to run in several processes at
    once: `_finish_payment` changes a payment only while it is still pending.
    """
    cutoff = to_text(utc_now() - timedelta(seconds=older_than_seconds))
    rows = await db.fetch_all(
        "SELECT id, payer_id, idempotency_key FROM payments"
        " WHERE status = 'pending' AND updated_at < ? ORDER BY id LIMIT 500",
        (cutoff,),
    )
    for row in rows:
        try:
            found = await processor.find_charge(
                idempotency_key=_processor_key(row["payer_id"], row["idempotency_key"])
            )
        except Exception:
            log.exception("asking the processor about payment %s failed", row["id"])
            continue  # try again at the next run
        result = found or ChargeResult(False, None, INTERRUPTED)
        await _finish_payment(
            db, notifier, row["id"], result.succeeded, result.reference, result.failure_reason
        )
    return len(rows)
