"""Failed-login limits: counted before the password is checked, kept in the database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from app import create_app, keys
from app.accounts.limits import Blocked, LoginLimiter, Reservation
from app.db import Database
from tests.conftest import PASSWORD, Browser, BrowserFactory, MakeSettings


class FakeClock:
    def __init__(self) -> None:
        # Near the real time: the app's own pruning job runs on the same table.
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(db: Database, clock: FakeClock) -> LoginLimiter:
    return LoginLimiter(db, max_per_account=3, max_per_address=10, window_seconds=60, clock=clock)


async def test_200_concurrent_guesses_at_one_account_get_exactly_five_checked(
    client_browser: Browser, new_browser: BrowserFactory, app: web.Application, db: Database
) -> None:
    checked: list[str] = []
    passwords = app[keys.PASSWORDS]
    original = passwords.verify

    async def counting_verify(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return await original(password_hash, password)

    passwords.verify = counting_verify  # type: ignore[method-assign]
    guesses = [f"wrong guess {n}" for n in range(199)] + [PASSWORD]
    attackers = [await new_browser() for _ in range(20)]
    tokens = [await a.csrf() for a in attackers]

    async def attempt(n: int, password: str) -> int:
        browser = attackers[n % len(attackers)]
        response = await browser.post(
            "/login",
            {"email": "client@example.com", "password": password, "csrf_token": tokens[n % 20]},
        )
        return response.status

    statuses = await asyncio.gather(*(attempt(n, p) for n, p in enumerate(guesses)))

    # The limit is five per account: exactly five passwords were checked, the rest refused
    # before any hashing. The right password, sent last, was not among them.
    assert len(checked) == 5
    assert statuses.count(429) == 195
    assert sorted(s for s in statuses if s != 429) == [400] * 5
    assert PASSWORD not in checked
    assert await db.fetch_value("SELECT count(*) FROM sessions") == 1  # the owner's own


async def test_an_account_is_blocked_after_the_maximum_failures_until_the_oldest_leaves(
    limiter: LoginLimiter, clock: FakeClock
) -> None:
    for _ in range(3):
        assert isinstance(await limiter.reserve("ada@example.com", "10.0.0.1"), Reservation)
        clock.now += 1

    blocked = await limiter.reserve("ada@example.com", "10.0.0.2")

    # First attempt at t, window 60 s, now t + 3: blocked until t + 60.
    assert blocked == Blocked(58)
    assert isinstance(await limiter.reserve("bob@example.com", "10.0.0.1"), Reservation)
    clock.now += 57
    assert isinstance(await limiter.reserve("ada@example.com", "10.0.0.2"), Reservation)


async def test_a_successful_attempt_clears_the_account_and_does_not_count_for_the_address(
    limiter: LoginLimiter, db: Database
) -> None:
    for _ in range(2):
        await limiter.reserve("ada@example.com", "10.0.0.1")
    right = await limiter.reserve("ada@example.com", "10.0.0.1")
    assert isinstance(right, Reservation)

    await limiter.succeeded(right)

    rows = await db.fetch_all("SELECT scope, key FROM login_attempts ORDER BY id")
    assert [tuple(r) for r in rows] == [("address", "10.0.0.1")] * 2


async def test_an_address_is_blocked_across_accounts(limiter: LoginLimiter) -> None:
    for n in range(10):
        assert isinstance(await limiter.reserve(f"v{n}@example.com", "10.0.0.9"), Reservation)

    assert isinstance(await limiter.reserve("other@example.com", "10.0.0.9"), Blocked)
    assert isinstance(await limiter.reserve("other@example.com", "10.0.0.8"), Reservation)


async def test_pruning_forgets_attempts_that_left_the_window(
    limiter: LoginLimiter, clock: FakeClock, db: Database
) -> None:
    await limiter.reserve("ada@example.com", "10.0.0.1")
    clock.now += 30
    await limiter.reserve("ada@example.com", "10.0.0.1")
    clock.now += 31

    assert await limiter.prune() == 2  # the first attempt's two rows
    assert await db.fetch_value("SELECT count(*) FROM login_attempts") == 2


async def test_failures_counted_by_one_process_block_logins_on_another(
    make_settings: MakeSettings, aiohttp_server: Any, client_browser: Browser, settings: Any
) -> None:
    # A second app on the same database: another process of the same site.
    other = await aiohttp_server(create_app(make_settings()))
    client = TestClient(other)
    await client.start_server()
    try:
        attacker = Browser(client)
        for _ in range(5):
            assert (await attacker.login("client@example.com", "guess-guess")).status == 400
        # Back on the first process, the account is blocked even with the right password.
        assert (await client_browser.login("client@example.com")).status == 429
    finally:
        await client.close()
