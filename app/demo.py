"""Demo data for newcomers, in an empty database: two providers, a client, a few services,
and past bookings the client has reviewed, so the home page shows ratings from the start.

Everything goes through the same functions as the site's forms (bookings, their transitions,
reviews), so the demo's data obeys the same rules and its notifications are real ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from app import keys
from app.accounts.queries import create_user
from app.clock import utc_now
from app.marketplace import billing, bookings, reviews
from app.marketplace.services import ServiceData, create_service

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # noqa: S105 (printed for newcomers on purpose)
DEMO_PROVIDER = ("provider@example.com", "Pat Provider")
DEMO_CLIENT = ("client@example.com", "Casey Client")
DEMO_SECOND_PROVIDER = ("sam@example.com", "Sam Rivera")
DEMO_CARD = "4242424242424242"  # the simulator's card that always succeeds
DEMO_SERVICES = (
    ServiceData(
        "House cleaning",
        "Two rooms, kitchen and bathroom, supplies included.",
        15000,
        180,
        category="cleaning",
        city="Springfield",
    ),
    ServiceData(
        "Maths tutoring",
        "Secondary-school maths, one to one, by video call.",
        4500,
        60,
        category="tutoring",
        online=True,
    ),
    ServiceData(
        "Dog walking",
        "An hour in the park, up to two dogs.",
        2000,
        60,
        category="pets",
        city="Springfield",
    ),
    ServiceData(
        "Flat-pack furniture assembly",
        "Wardrobes, beds and shelves put together and fixed to the wall.",
        6000,
        120,
        category="repairs",
        city="Springfield",
    ),
    ServiceData(
        "Laptop tune-up",
        "A slow computer made quick again: updates, clean-up and a backup set up.",
        5500,
        90,
        category="tech",
        online=True,
    ),
)
DEMO_SECOND_SERVICES = (
    ServiceData(
        "Guitar lessons",
        "Beginners welcome: chords, strumming and your first songs in a month.",
        3500,
        45,
        category="tutoring",
        online=True,
    ),
    ServiceData(
        "Deep oven clean",
        "Racks, door glass and hob, degreased with non-toxic products.",
        8000,
        120,
        category="cleaning",
        city="Springfield",
    ),
)
# (index into the first provider's services, or None for the second's first, stars, words)
DEMO_REVIEWS = (
    (0, 5, "Spotless, and they even sorted the recycling. Booking again next month."),
    (2, 4, "Our spaniel came back tired and happy."),
    (None, 5, "Patient and clear: I played a whole song after three lessons."),
)


async def seed_demo(app: web.Application) -> None:
    db = app[keys.DB]
    if await db.fetch_value("SELECT count(*) FROM users"):
        log.info("demo: the database already has users; nothing added")
        return
    password_hash = await app[keys.PASSWORDS].hash(DEMO_PASSWORD)
    async with db.transaction():
        provider = await create_user(db, *DEMO_PROVIDER, password_hash)
        client = await create_user(db, *DEMO_CLIENT, password_hash)
        second = await create_user(db, *DEMO_SECOND_PROVIDER, password_hash)
        first_ids = [await create_service(db, provider.id, s) for s in DEMO_SERVICES]
        second_ids = [await create_service(db, second.id, s) for s in DEMO_SECOND_SERVICES]
    await _reviewed_bookings(app, client.id, first_ids, second_ids)
    for email, name in (DEMO_PROVIDER, DEMO_CLIENT, DEMO_SECOND_PROVIDER):
        print(f"demo account: {email} / {DEMO_PASSWORD} ({name})", flush=True)


async def _reviewed_bookings(
    app: web.Application, client_id: int, first_ids: list[int], second_ids: list[int]
) -> None:
    """Past jobs the client booked, the provider accepted and completed, the client paid (with
    the simulator's good test card) and reviewed: each step as on the site."""
    db, notifier = app[keys.DB], app[keys.NOTIFIER]
    for weeks, (index, stars, words) in enumerate(DEMO_REVIEWS, start=1):
        service_id = second_ids[0] if index is None else first_ids[index]
        when = (utc_now() - timedelta(weeks=weeks)).strftime("%Y-%m-%dT10:00")
        booking = await bookings.create_booking(
            db, notifier, client_id=client_id, service_id=service_id, scheduled_at=when, note=""
        )
        for action in ("accept", "complete"):
            await bookings.apply_action(
                db, notifier, user_id=booking.provider_id, booking_id=booking.id, action=action
            )
        await billing.pay(
            db,
            notifier,
            app[keys.PAYMENT_PROCESSOR],
            client_id=client_id,
            booking_id=booking.id,
            amount_cents=booking.price_cents,
            currency=app[keys.SETTINGS].currency,
            card_number=DEMO_CARD,
            idempotency_key=f"demo-{booking.id}",
        )
        await reviews.leave_review(
            db, notifier, client_id=client_id, booking_id=booking.id, rating=stars, body=words
        )
