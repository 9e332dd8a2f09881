"""Payments left pending by a process that died mid-charge are resolved while the site runs,
by one process at a time, and the booking can be paid again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from app import create_app, keys
from app.clock import now_text
from app.config import Settings
from app.db import Database
from app.jobs import Leases
from app.marketplace.payments import ChargeResult, SimulatedProcessor
from tests.conftest import Browser, MakeSettings
from tests.flows import accepted_booking, id_from_location, pay
from tests.ws_helpers import eventually

FAST = {"interrupted_payment_seconds": 1.0, "maintenance_interval_seconds": 0.2}


@pytest.fixture
def settings(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Settings:
    return make_settings(**getattr(request, "param", FAST))


async def leave_pending(db: Database, booking_id: int, key: str = "killed-mid-charge") -> int:
    """The row a process killed during the processor call leaves behind."""
    row = await db.fetch_one(
        "SELECT client_id, provider_id, price_cents FROM bookings WHERE id = ?", (booking_id,)
    )
    assert row is not None
    async with db.transaction() as tx:
        payment_id = await tx.fetch_value(
            "INSERT INTO payments (booking_id, payer_id, payee_id, amount_cents, currency,"
            " status, idempotency_key, card_last4, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'USD', 'pending', ?, '4242', ?, ?) RETURNING id",
            (booking_id, row[0], row[1], row[2], key, now_text(), now_text()),
        )
    return int(payment_id)


async def status_of(db: Database, payment_id: int) -> tuple[str, str | None]:
    row = await db.fetch_one(
        "SELECT status, failure_reason FROM payments WHERE id = ?", (payment_id,)
    )
    assert row is not None
    return row[0], row[1]


async def events_for(db: Database, user_id: int | None) -> list[str]:
    rows = await db.fetch_all(
        "SELECT event FROM notifications WHERE user_id = ? ORDER BY id", (user_id,)
    )
    return [row[0] for row in rows]


async def test_a_payment_left_pending_is_failed_while_running_and_the_booking_paid_again(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    payment_id = await leave_pending(db, booking_id)
    status, _ = await pay(client_browser, booking_id, key="retry-while-stuck")
    assert status == 409  # stuck: the pending payment blocks the booking

    # No restart: the running site resolves it once it is older than any charge can take.
    await eventually(
        lambda: _is(status_of(db, payment_id), ("failed", "interrupted")),
        within=10,
        what="the interrupted payment failed",
    )

    assert (await events_for(db, client_browser.user_id))[-1] == "payment_failed"
    status, location = await pay(client_browser, booking_id)
    assert status == 303
    assert await status_of(db, id_from_location(location)) == ("succeeded", None)


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_a_charge_the_processor_made_before_the_crash_is_recorded_as_paid(
    provider: Browser, client_browser: Browser, db: Database, app: web.Application
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    processor = app[keys.PAYMENT_PROCESSOR]
    assert isinstance(processor, SimulatedProcessor)
    processor._charges[f"{client_browser.user_id}:charged-then-killed"] = ChargeResult(
        True, "sim_ch_before_crash"
    )

    payment_id = await leave_pending(db, booking_id, "charged-then-killed")

    await eventually(
        lambda: _is(status_of(db, payment_id), ("succeeded", None)), within=10, what="paid"
    )
    assert (await events_for(db, client_browser.user_id))[-1] == "payment_confirmed"
    assert (await events_for(db, provider.user_id))[-1] == "payment_received"
    ref = await db.fetch_value("SELECT processor_ref FROM payments WHERE id = ?", (payment_id,))
    assert ref == "sim_ch_before_crash"


@pytest.mark.parametrize(
    "settings",
    [{"interrupted_payment_seconds": 60.0, "maintenance_interval_seconds": 0.1}],
    indirect=True,
    ids=["in-flight"],
)
async def test_a_payment_still_being_charged_is_left_alone_by_the_job(
    provider: Browser,
    client_browser: Browser,
    db: Database,
    app: web.Application,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    release = asyncio.Event()
    real_charge = SimulatedProcessor.charge

    async def slow_charge(self: SimulatedProcessor, **kwargs: Any) -> ChargeResult:
        await release.wait()
        return await real_charge(self, **kwargs)

    monkeypatch.setattr(SimulatedProcessor, "charge", slow_charge)
    paying = asyncio.create_task(pay(client_browser, booking_id))
    await eventually(
        lambda: _is(db.fetch_value("SELECT count(*) FROM payments"), 1), what="pending row"
    )
    runs = await db.fetch_value("SELECT expires_at FROM job_leases WHERE name = ?", ("prune",))
    # Let the job run a few times while the charge is in flight.
    await eventually(
        lambda: _is_more(
            db.fetch_value("SELECT expires_at FROM job_leases WHERE name = 'interrupted_payments'"),
            (runs or 0) + 0.3,
        ),
        what="several job runs",
    )

    release.set()
    status, location = await paying

    assert status == 303
    assert await status_of(db, id_from_location(location)) == ("succeeded", None)
    assert "payment_failed" not in await events_for(db, client_browser.user_id)


async def _is_more(value: Any, than: float) -> bool:
    result = await value
    return result is not None and float(result) > than


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_job_lease_is_held_by_one_process_until_it_expires(db: Database) -> None:
    clock = Clock()
    first = Leases(db, "host:1:a", clock)
    second = Leases(db, "host:2:b", clock)

    assert await first.acquire("cleanup", 10)
    assert not await second.acquire("cleanup", 10)
    clock.now += 5
    assert await first.acquire("cleanup", 10)  # renewed until now + 10
    clock.now += 9
    assert not await second.acquire("cleanup", 10)
    clock.now += 2  # the holder stopped renewing: it died
    assert await second.acquire("cleanup", 10)
    assert not await first.acquire("cleanup", 10)

    await second.release("cleanup")
    assert await first.acquire("cleanup", 10)


async def test_two_processes_resolve_an_interrupted_payment_once(
    make_settings: MakeSettings,
    aiohttp_server: Any,
    provider: Browser,
    client_browser: Browser,
    db: Database,
) -> None:
    # A second app on the same database: another process of the same site.
    other = await aiohttp_server(create_app(make_settings(**FAST)))
    booking_id = await accepted_booking(provider, client_browser)
    payment_id = await leave_pending(db, booking_id)

    await eventually(
        lambda: _is(status_of(db, payment_id), ("failed", "interrupted")), within=10, what="failed"
    )
    lease = "SELECT holder, expires_at FROM job_leases WHERE name = 'interrupted_payments'"
    holder, expires = await db.fetch_one(lease) or (None, 0.0)
    # Both processes' jobs go on running (the lease is renewed) ...
    await eventually(
        lambda: _is_more(db.fetch_value(lease.replace("holder, ", "")), expires + 0.5),
        what="more runs",
    )
    # ... and the client was told once.
    assert (await events_for(db, client_browser.user_id)).count("payment_failed") == 1
    assert await db.fetch_value("SELECT count(*) FROM job_leases WHERE holder = ?", (holder,)) == 2
    await other.close()
