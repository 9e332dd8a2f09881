"""Steps that many tests take, each done through HTTP as a person's browser would."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.conftest import Browser

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def future_slot(days: int = 7) -> str:
    """A `datetime-local` value a week ahead (valid for booking)."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT10:00")


def id_from_location(location: str) -> int:
    return int(location.rstrip("/").rsplit("/", 1)[1])


async def create_service(
    provider: Browser, name: str = "House Cleaning", price: str = "150.00", duration: str = "120"
) -> int:
    response = await provider.post(
        "/services/new",
        {
            "name": name,
            "description": "Thorough.",
            "price": price,
            "duration_minutes": duration,
            "online": "1",
        },
    )
    assert response.status == 303, await response.text()
    return id_from_location(response.headers["Location"])


async def book(client: Browser, service_id: int, note: str = "") -> int:
    response = await client.post(
        f"/services/{service_id}/book", {"scheduled_at": future_slot(), "note": note}
    )
    assert response.status == 303, await response.text()
    return id_from_location(response.headers["Location"])


async def act(browser: Browser, booking_id: int, action: str) -> int:
    """POST a booking action; returns the HTTP status (303 done, 409 refused...)."""
    response = await browser.post(f"/bookings/{booking_id}/{action}")
    return response.status


async def payment_key(client: Browser, booking_id: int) -> str:
    page = await client.page(f"/bookings/{booking_id}/pay")
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def pay(
    client: Browser,
    booking_id: int,
    *,
    amount: str = "150.00",
    card: str = GOOD_CARD,
    key: str | None = None,
) -> tuple[int, str]:
    """Submit the payment form; returns (status, Location or body)."""
    key = key or await payment_key(client, booking_id)
    response = await client.post(
        f"/bookings/{booking_id}/pay",
        {"amount": amount, "card_number": card, "idempotency_key": key},
    )
    if response.status == 303:
        return response.status, response.headers["Location"]
    return response.status, await response.text()


async def accepted_booking(provider: Browser, client: Browser) -> int:
    booking_id = await book(client, await create_service(provider))
    assert await act(provider, booking_id, "accept") == 303
    return booking_id
