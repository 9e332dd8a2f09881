"""The whole happy path once, end to end through HTTP, as two people would click it."""

from __future__ import annotations

from app.db import Database
from tests.conftest import Browser
from tests.flows import act, book, create_service, pay


async def test_a_client_books_and_pays_and_both_sides_are_notified(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    booking_id = await book(client_browser, service_id, note="Ring twice")
    assert await act(provider, booking_id, "accept") == 303
    status, location = await pay(client_browser, booking_id)
    assert status == 303 and "/payments/" in location

    rows = await db.fetch_all("SELECT user_id, event FROM notifications ORDER BY id")
    assert [(r["user_id"], r["event"]) for r in rows] == [
        (provider.user_id, "new_booking"),
        (client_browser.user_id, "booking_accepted"),
        (provider.user_id, "payment_received"),
        (client_browser.user_id, "payment_confirmed"),
    ]
    inbox = await provider.page("/notifications")
    assert "Casey Client paid 150.00 USD for House Cleaning on " in inbox
