"""Demo data for newcomers: a provider, a client and a few services, in an empty database."""

from __future__ import annotations

import logging

from aiohttp import web

from app import keys
from app.accounts.queries import create_user
from app.marketplace.services import ServiceData, create_service

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # noqa: S105 (printed for newcomers on purpose)
DEMO_PROVIDER = ("provider@example.com", "Pat Provider")
DEMO_CLIENT = ("client@example.com", "Casey Client")
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


async def seed_demo(app: web.Application) -> None:
    db = app[keys.DB]
    if await db.fetch_value("SELECT count(*) FROM users"):
        log.info("demo: the database already has users; nothing added")
        return
    password_hash = await app[keys.PASSWORDS].hash(DEMO_PASSWORD)
    async with db.transaction():
        provider = await create_user(db, *DEMO_PROVIDER, password_hash)
        await create_user(db, *DEMO_CLIENT, password_hash)
        for service in DEMO_SERVICES:
            await create_service(db, provider.id, service)
    for email, name in (DEMO_PROVIDER, DEMO_CLIENT):
        print(f"demo account: {email} / {DEMO_PASSWORD} ({name})", flush=True)
