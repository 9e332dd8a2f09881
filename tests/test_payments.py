"""Payments: paying an accepted booking with the simulator's test cards, refunds, every refused
payment or refund with nothing changed, double-submitted forms, and who may see a payment.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from markupsafe import escape

from app import keys
from app.db import Database
from app.marketplace import billing, bookings
from app.marketplace.bookings import format_when
from app.marketplace.payments import SimulatedProcessor
from tests.conftest import Browser
from tests.flows import (
    DECLINED_CARD,
    GOOD_CARD,
    accepted_booking,
    act,
    book,
    create_service,
    id_from_location,
    pay,
    payment_key,
)


async def payments_of(db: Database, booking_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT * FROM payments WHERE booking_id = ? ORDER BY id", (booking_id,)
    )
    return [dict(row) for row in rows]


async def payment_row(db: Database, payment_id: int) -> dict[str, Any]:
    row = await db.fetch_one("SELECT * FROM payments WHERE id = ?", (payment_id,))
    assert row is not None
    return dict(row)


async def booking_status(db: Database, booking_id: int) -> str:
    return str(await db.fetch_value("SELECT status FROM bookings WHERE id = ?", (booking_id,)))


async def notifications_after(db: Database, last_id: int = 0) -> list[dict[str, Any]]:
    rows = await db.fetch_all("SELECT * FROM notifications WHERE id > ? ORDER BY id", (last_id,))
    return [{**dict(row), "data": json.loads(row["data"])} for row in rows]


async def last_notification_id(db: Database) -> int:
    return int(await db.fetch_value("SELECT coalesce(max(id), 0) FROM notifications"))


async def scheduled_at(db: Database, booking_id: int) -> str:
    return str(
        await db.fetch_value("SELECT scheduled_at FROM bookings WHERE id = ?", (booking_id,))
    )


async def paid_booking(provider: Browser, client: Browser) -> tuple[int, int]:
    booking_id = await accepted_booking(provider, client)
    status, location = await pay(client, booking_id)
    assert status == 303, location
    return booking_id, id_from_location(location)


def payload(
    event: str, payment_id: int, booking_id: int, status: str, message: str
) -> dict[str, Any]:
    return {
        "type": event,
        "payment_id": payment_id,
        "booking_id": booking_id,
        "service_name": "House Cleaning",
        "amount": "150.00",
        "currency": "USD",
        "status": status,
        "message": message,
    }


async def test_a_good_card_pays_the_booking_and_both_sides_are_notified(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    form = await client_browser.page(f"/bookings/{booking_id}/pay")
    assert "Amount (USD)" in form and 'value="150.00"' in form and "Pay 150.00 USD" in form
    mark = await last_notification_id(db)

    status, location = await pay(client_browser, booking_id, card=GOOD_CARD)

    assert status == 303
    payment_id = id_from_location(location)
    assert location == f"/payments/{payment_id}"
    row = await payment_row(db, payment_id)
    assert (row["booking_id"], row["payer_id"], row["payee_id"]) == (
        booking_id,
        client_browser.user_id,
        provider.user_id,
    )
    assert (row["status"], row["amount_cents"], row["currency"]) == ("succeeded", 15000, "USD")
    assert row["card_last4"] == "4242" and row["failure_reason"] is None
    assert row["processor_ref"].startswith("sim_ch_")

    new = await notifications_after(db, mark)
    assert [(n["user_id"], n["type"], n["event"], n["key"]) for n in new] == [
        (provider.user_id, "payment_update", "payment_received", f"payment:{payment_id}"),
        (client_browser.user_id, "payment_update", "payment_confirmed", f"payment:{payment_id}"),
    ]
    assert new[0]["data"] == payload(
        "payment_received",
        payment_id,
        booking_id,
        "succeeded",
        "Casey Client paid 150.00 USD for House Cleaning"
        f" on {format_when(await scheduled_at(db, booking_id))}.",
    )
    assert new[1]["data"] == payload(
        "payment_confirmed",
        payment_id,
        booking_id,
        "succeeded",
        "Your payment of 150.00 USD for House Cleaning went through.",
    )
    assert stranger.user_id not in {n["user_id"] for n in new}

    client_page = await client_browser.page(location)
    assert "<dd>150.00 USD</dd>" in client_page and "data-status>Succeeded</span>" in client_page
    assert "ending 4242" in client_page and "Refund" not in client_page
    provider_page = await provider.page(location)
    assert "<dd>150.00 USD</dd>" in provider_page
    assert f'action="/payments/{payment_id}/refund"' in provider_page
    assert "Refund 150.00 USD" in provider_page
    booking_page = await client_browser.page(f"/bookings/{booking_id}")
    assert f'data-payment-id="{payment_id}"' in booking_page
    assert f'href="/bookings/{booking_id}/pay"' not in booking_page


async def test_a_completed_booking_can_still_be_paid(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    assert await act(provider, booking_id, "complete") == 303

    status, location = await pay(client_browser, booking_id)

    assert status == 303
    assert (await payment_row(db, id_from_location(location)))["status"] == "succeeded"


@pytest.mark.parametrize(
    ("card", "reason", "words"),
    [
        (DECLINED_CARD, "card_declined", "The card was declined"),
        ("4000 0000 0000 9995", "insufficient_funds", "The card has insufficient funds"),
        ("4000 0000 0000 0069", "expired_card", "The card has expired"),
    ],
)
async def test_a_declined_card_fails_the_payment_and_tells_only_the_client(
    provider: Browser, client_browser: Browser, db: Database, card: str, reason: str, words: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    mark = await last_notification_id(db)

    status, location = await pay(client_browser, booking_id, card=card)

    assert status == 303
    payment_id = id_from_location(location)
    row = await payment_row(db, payment_id)
    assert (row["status"], row["failure_reason"], row["processor_ref"]) == ("failed", reason, None)
    [notification] = await notifications_after(db, mark)
    assert notification["user_id"] == client_browser.user_id
    assert (notification["type"], notification["event"]) == ("payment_update", "payment_failed")
    assert notification["key"] == f"payment:{payment_id}"
    assert notification["data"] == payload(
        "payment_failed",
        payment_id,
        booking_id,
        "failed",
        f"Your payment for House Cleaning did not go through: {words[0].lower()}{words[1:]}."
        " You have not been charged.",
    )
    page = await client_browser.page(location)
    assert "data-status>Failed</span>" in page
    assert f"<strong>{words}.</strong>" in page and reason not in page
    assert f'href="/bookings/{booking_id}/pay"' in await client_browser.page(
        f"/bookings/{booking_id}"
    )


async def test_after_a_declined_card_the_client_pays_again_with_a_good_one(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    status, first = await pay(client_browser, booking_id, card=DECLINED_CARD)
    assert status == 303
    mark = await last_notification_id(db)

    status, second = await pay(client_browser, booking_id, card=GOOD_CARD)

    assert status == 303 and second != first
    assert [p["status"] for p in await payments_of(db, booking_id)] == ["failed", "succeeded"]
    new = await notifications_after(db, mark)
    assert [(n["user_id"], n["event"]) for n in new] == [
        (provider.user_id, "payment_received"),
        (client_browser.user_id, "payment_confirmed"),
    ]


async def test_paying_a_paid_booking_again_is_refused(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id, _ = await paid_booking(provider, client_browser)
    mark = await last_notification_id(db)

    form = await client_browser.get(f"/bookings/{booking_id}/pay")
    status, body = await pay(client_browser, booking_id, key="a-fresh-key-123")

    assert form.status == 409
    assert "This booking is already paid." in await form.text()
    assert status == 409 and "This booking is already paid." in body
    assert [p["status"] for p in await payments_of(db, booking_id)] == ["succeeded"]
    assert await notifications_after(db, mark) == []


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        ([], "pending"),
        ([("provider", "decline")], "declined"),
        ([("client", "cancel")], "cancelled"),
        ([("provider", "accept"), ("client", "cancel")], "cancelled"),
    ],
)
async def test_a_booking_that_is_not_accepted_cannot_be_paid(
    provider: Browser,
    client_browser: Browser,
    db: Database,
    steps: list[tuple[str, str]],
    state: str,
) -> None:
    people = {"provider": provider, "client": client_browser}
    booking_id = await book(client_browser, await create_service(provider))
    for who, action in steps:
        assert await act(people[who], booking_id, action) == 303
    mark = await last_notification_id(db)
    message = f"This booking is {state}; only an accepted booking can be paid."

    form = await client_browser.get(f"/bookings/{booking_id}/pay")
    status, body = await pay(client_browser, booking_id, key="made-up-key-123")

    assert form.status == 409 and message in await form.text()
    assert status == 409 and message in body
    assert await payments_of(db, booking_id) == []
    assert await booking_status(db, booking_id) == state
    assert await notifications_after(db, mark) == []


async def test_the_provider_cannot_pay_for_a_booking_of_their_own_service(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)

    status, body = await pay(provider, booking_id, key="provider-key-123")

    assert status == 409
    assert "Only the client who made the booking can pay for it." in body
    assert await payments_of(db, booking_id) == []


async def test_the_provider_refunds_a_payment_and_the_client_is_told(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id, payment_id = await paid_booking(provider, client_browser)
    before = await payment_row(db, payment_id)
    mark = await last_notification_id(db)

    response = await provider.post(f"/payments/{payment_id}/refund")

    assert response.status == 303
    assert response.headers["Location"] == f"/payments/{payment_id}"
    row = await payment_row(db, payment_id)
    assert row["status"] == "refunded"
    assert (row["amount_cents"], row["processor_ref"]) == (15000, before["processor_ref"])
    [notification] = await notifications_after(db, mark)
    assert notification["user_id"] == client_browser.user_id
    assert (notification["type"], notification["event"]) == ("payment_update", "payment_refunded")
    assert notification["key"] == f"payment:{payment_id}"
    assert notification["data"] == payload(
        "payment_refunded",
        payment_id,
        booking_id,
        "refunded",
        "Pat Provider refunded 150.00 USD for House Cleaning.",
    )
    page = await provider.page(f"/payments/{payment_id}")
    assert "data-status>Refunded</span>" in page and "/refund" not in page


async def test_after_a_refund_the_booking_can_be_cancelled_but_not_paid_again(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id, payment_id = await paid_booking(provider, client_browser)
    assert (await provider.post(f"/payments/{payment_id}/refund")).status == 303

    assert (await client_browser.get(f"/bookings/{booking_id}/pay")).status == 409
    assert await act(client_browser, booking_id, "cancel") == 303
    assert await booking_status(db, booking_id) == "cancelled"


@pytest.mark.parametrize("state", ["pending", "failed", "refunded"])
async def test_only_a_successful_payment_can_be_refunded(
    provider: Browser, client_browser: Browser, db: Database, state: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    if state == "pending":
        # A charge still in flight at the processor: only its first half has been recorded.
        payment, _ = await billing.start_payment(
            db,
            client_id=client_browser.user_id or 0,
            booking_id=booking_id,
            amount_cents=15000,
            currency="USD",
            card_last4="4242",
            idempotency_key="in-flight-key-1",
        )
        payment_id = payment.id
    else:
        card = DECLINED_CARD if state == "failed" else GOOD_CARD
        status, location = await pay(client_browser, booking_id, card=card)
        assert status == 303
        payment_id = id_from_location(location)
        if state == "refunded":
            assert (await provider.post(f"/payments/{payment_id}/refund")).status == 303
    before = await payment_row(db, payment_id)
    mark = await last_notification_id(db)

    response = await provider.post(f"/payments/{payment_id}/refund")

    assert response.status == 409
    assert (
        f"This payment is {state}; only a successful payment can be refunded."
        in await response.text()
    )
    assert await payment_row(db, payment_id) == before
    assert await notifications_after(db, mark) == []


async def test_a_client_cannot_refund_their_own_payment(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    _, payment_id = await paid_booking(provider, client_browser)
    mark = await last_notification_id(db)

    response = await client_browser.post(f"/payments/{payment_id}/refund")

    assert response.status == 403
    assert "Only the provider who was paid can refund a payment." in await response.text()
    assert (await payment_row(db, payment_id))["status"] == "succeeded"
    assert await notifications_after(db, mark) == []


async def test_a_stranger_can_neither_see_nor_refund_someone_elses_payment(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database
) -> None:
    _, payment_id = await paid_booking(provider, client_browser)
    mark = await last_notification_id(db)

    view = await stranger.get(f"/payments/{payment_id}")
    refund = await stranger.post(f"/payments/{payment_id}/refund")

    assert view.status == 404
    body = await view.text()
    assert "That payment does not exist." in body and "150.00" not in body
    assert refund.status == 404
    assert (await payment_row(db, payment_id))["status"] == "succeeded"
    assert await notifications_after(db, mark) == []


async def test_a_failed_refund_at_the_processor_leaves_the_payment_paid(
    provider: Browser, client_browser: Browser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, payment_id = await paid_booking(provider, client_browser)
    mark = await last_notification_id(db)

    async def broken_refund(self: SimulatedProcessor, *, reference: str, amount_cents: int) -> None:
        raise ConnectionError("processor unreachable")

    monkeypatch.setattr(SimulatedProcessor, "refund", broken_refund)
    response = await provider.post(f"/payments/{payment_id}/refund")

    assert response.status == 500
    assert (await payment_row(db, payment_id))["status"] == "succeeded"
    assert await notifications_after(db, mark) == []


async def test_a_processor_outage_fails_the_payment_and_the_client_may_try_again(
    provider: Browser, client_browser: Browser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    real_charge = SimulatedProcessor.charge

    async def broken_charge(self: SimulatedProcessor, **kwargs: Any) -> Any:
        raise ConnectionError("processor unreachable")

    monkeypatch.setattr(SimulatedProcessor, "charge", broken_charge)
    status, location = await pay(client_browser, booking_id)
    monkeypatch.setattr(SimulatedProcessor, "charge", real_charge)

    assert status == 303
    row = await payment_row(db, id_from_location(location))
    assert (row["status"], row["failure_reason"]) == ("failed", "processor unavailable")
    status, _ = await pay(client_browser, booking_id)
    assert status == 303
    assert [p["status"] for p in await payments_of(db, booking_id)] == ["failed", "succeeded"]


async def test_a_payment_form_submitted_twice_in_a_row_makes_one_payment(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    key = await payment_key(client_browser, booking_id)
    mark = await last_notification_id(db)

    first = await pay(client_browser, booking_id, key=key)
    second = await pay(client_browser, booking_id, key=key)

    assert first[0] == second[0] == 303
    assert first[1] == second[1]
    [payment] = await payments_of(db, booking_id)
    assert first[1] == f"/payments/{payment['id']}" and payment["status"] == "succeeded"
    assert len(await notifications_after(db, mark)) == 2


async def test_a_payment_form_submitted_twice_at_once_makes_one_payment(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    key = await payment_key(client_browser, booking_id)
    token = await client_browser.csrf()
    form = {"amount": "150.00", "card_number": GOOD_CARD, "idempotency_key": key}
    mark = await last_notification_id(db)

    responses = await asyncio.gather(
        *(
            client_browser.post(f"/bookings/{booking_id}/pay", {**form, "csrf_token": token})
            for _ in range(3)
        )
    )

    assert [r.status for r in responses] == [303, 303, 303]
    [payment] = await payments_of(db, booking_id)
    assert {r.headers["Location"] for r in responses} == {f"/payments/{payment['id']}"}
    assert payment["status"] == "succeeded"
    assert [n["event"] for n in await notifications_after(db, mark)] == [
        "payment_received",
        "payment_confirmed",
    ]


async def test_a_resubmitted_form_lands_on_the_payment_even_when_it_started_meanwhile(
    provider: Browser, client_browser: Browser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst interleaving, made on purpose: the second submission looks its key up before
    the first has stored the payment and checks the booking after. It must still land on that
    payment, not on "This booking is already paid"."""
    booking_id = await accepted_booking(provider, client_browser)
    key = await payment_key(client_browser, booking_id)
    token = await client_browser.csrf()
    form = {"amount": "150.00", "card_number": GOOD_CARD, "idempotency_key": key}
    real_get_booking = bookings.get_booking
    waiting, go_on = asyncio.Event(), asyncio.Event()
    calls = 0

    async def gated_get_booking(*args: Any, **kwargs: Any) -> bookings.Booking:
        nonlocal calls
        calls += 1
        if calls == 1:  # the late submission, its key already looked up and not found
            waiting.set()
            await go_on.wait()
        return await real_get_booking(*args, **kwargs)

    async def submit() -> ClientResponse:
        return await client_browser.post(
            f"/bookings/{booking_id}/pay", {**form, "csrf_token": token}
        )

    monkeypatch.setattr(bookings, "get_booking", gated_get_booking)
    late = asyncio.create_task(submit())
    await waiting.wait()
    first = await submit()
    go_on.set()
    second = await late

    assert (first.status, second.status) == (303, 303), await second.text()
    [payment] = await payments_of(db, booking_id)
    assert payment["status"] == "succeeded"
    assert first.headers["Location"] == second.headers["Location"] == f"/payments/{payment['id']}"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Enter an amount."),
        ("-150.00", "The amount must be more than zero."),
        ("0", "The amount must be more than zero."),
        ("0.00", "The amount must be more than zero."),
        ("NaN", "Enter an amount like 150 or 150.00."),
        ("Infinity", "Enter an amount like 150 or 150.00."),
        ("1.5e2", "Enter an amount like 150 or 150.00."),
        ("99999999999999", "Enter an amount like 150 or 150.00."),
        ("999999999", "The amount must be at most 1000000.00."),
        ("150.001", "Use at most two decimal places."),
        ("150,00", "Enter an amount like 150 or 150.00."),
        ("a lot", "Enter an amount like 150 or 150.00."),
        ("150.01", "The amount must be exactly 150.00 USD, the booking's price."),
        ("15000", "The amount must be exactly 150.00 USD, the booking's price."),
        ("1.50", "The amount must be exactly 150.00 USD, the booking's price."),
    ],
)
async def test_a_wrong_amount_is_refused_with_the_error_next_to_it_and_no_payment(
    provider: Browser, client_browser: Browser, db: Database, amount: str, message: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    mark = await last_notification_id(db)

    status, page = await pay(client_browser, booking_id, amount=amount)

    assert status == 400
    assert f'<p class="error" id="e-amount">{escape(message)}</p>' in page
    assert f'value="{escape(amount)}"' in page
    assert await payments_of(db, booking_id) == []
    assert await notifications_after(db, mark) == []


@pytest.mark.parametrize(
    "card", ["4242 4242 4242 4241", "4242 abcd 4242 4242", "4242", "", "4242424242424242424242"]
)
async def test_an_invalid_card_number_is_refused_with_no_payment(
    provider: Browser, client_browser: Browser, db: Database, card: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)

    status, page = await pay(client_browser, booking_id, card=card)

    assert status == 400
    assert (
        '<p class="error" id="e-card_number">Enter a valid card number (see the test cards below).'
        in page
    )
    assert 'value="150.00"' in page  # the amount typed is kept
    assert await payments_of(db, booking_id) == []


@pytest.mark.parametrize("key", ["", "short", "has spaces in it", "x" * 65])
async def test_a_damaged_payment_form_is_refused_with_no_payment(
    provider: Browser, client_browser: Browser, db: Database, key: str
) -> None:
    booking_id = await accepted_booking(provider, client_browser)

    response = await client_browser.post(
        f"/bookings/{booking_id}/pay",
        {"amount": "150.00", "card_number": GOOD_CARD, "idempotency_key": key},
    )

    assert response.status == 400
    assert "This payment form is damaged. Reload the page and try again." in await response.text()
    assert await payments_of(db, booking_id) == []


@pytest.mark.parametrize("who", ["client", "provider"])
async def test_a_paid_booking_cannot_be_cancelled_until_it_is_refunded(
    provider: Browser, client_browser: Browser, db: Database, who: str
) -> None:
    booking_id, _ = await paid_booking(provider, client_browser)
    browser = client_browser if who == "client" else provider
    mark = await last_notification_id(db)

    response = await browser.post(f"/bookings/{booking_id}/cancel")

    assert response.status == 409
    assert (
        "This booking is paid. The provider can refund the payment first; "
        "then it can be cancelled." in await response.text()
    )
    assert await booking_status(db, booking_id) == "accepted"
    assert await notifications_after(db, mark) == []
    page = await browser.page(f"/bookings/{booking_id}")
    assert f'action="/bookings/{booking_id}/cancel"' not in page


async def test_payments_are_shown_in_the_configured_currency(
    provider: Browser, client_browser: Browser, app: Any
) -> None:
    assert app[keys.SETTINGS].currency == "USD"
    booking_id, payment_id = await paid_booking(provider, client_browser)

    for page in (
        await client_browser.page(f"/payments/{payment_id}"),
        await client_browser.page(f"/bookings/{booking_id}"),
        await provider.page("/bookings"),
    ):
        assert "150.00 USD" in page
