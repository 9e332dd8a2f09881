"""Shared fixtures: a real app on a real database per test, and browser-like clients.

Every test that uses the database runs twice, once per store (`[sqlite]`: a file of its own;
`[postgresql]`: a database of its own in a throwaway cluster, see `tests/pg.py`). Without
PostgreSQL installed its half is skipped with a message, except with CI=true, where that is a
failure. A test that is about one store's specifics says so with `sqlite_only`.

`Browser` behaves like a person's browser: its own cookie jar, forms posted with the CSRF
token the site gave it, redirects not followed unless asked, so tests can assert on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app, keys
from app.config import Argon2Params, Settings
from app.db import Database
from tests.pg import Cluster, Unavailable, find_bindir
from tests.redis_fixtures import redis_server  # noqa: F401 (a fixture for every test module)
from tests.stores import OutsideDatabase

TEST_API_KEY = "test-api-key-0123456789"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


STORES = ("sqlite", "postgresql")
# For a test about SQLite's own behaviour (its files, WAL, locking); the reason goes beside it.
sqlite_only = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def unavailable(message: str) -> NoReturn:
    """Skip locally; fail on CI, where a test that cannot run is a broken build."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster(find_bindir())
    except Unavailable as exc:
        unavailable(f"PostgreSQL tests need a server: {exc}")
    try:
        cluster.start()
    except Unavailable as exc:
        cluster.stop()
        unavailable(f"the PostgreSQL test cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(store: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the file is `tmp_path / "app.db"`), else a fresh PostgreSQL database
    with the migrations applied."""
    if store == "sqlite":
        yield None
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database()
    try:
        yield url
    finally:
        cluster.drop_database(url)


@pytest.fixture
def outside_db(
    tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest
) -> OutsideDatabase:
    """This test's database for a `run.py` subprocess."""
    if database_url is None:
        return OutsideDatabase(tmp_path)
    return OutsideDatabase(tmp_path, database_url, request.getfixturevalue("postgres_cluster"))


class MakeSettings(Protocol):
    def __call__(self, **overrides: Any) -> Settings: ...


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str | None) -> MakeSettings:
    """Settings for an app on this test's database; every call gives the same database (two
    apps made from them are two processes of one site)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_path": tmp_path / "app.db",
            "database_url": database_url,
            "secret_key": b"s" * 64,
            "api_key": TEST_API_KEY,
            # Cheap hashing keeps the suite fast; the production cost is tested in test_security.
            "argon2": Argon2Params(memory_kib=64, time_cost=1),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def server(app: web.Application, aiohttp_server: Any) -> TestServer:
    return await aiohttp_server(app)


@pytest.fixture
def db(app: web.Application, server: TestServer) -> Database:
    return app[keys.DB]


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.user_id: int | None = None

    async def get(self, path: str, **kwargs: Any) -> ClientResponse:
        kwargs.setdefault("allow_redirects", False)
        return await self.client.get(path, **kwargs)

    async def page(self, path: str) -> str:
        """GET a page that must answer 200, and return its HTML."""
        response = await self.get(path)
        body = await response.text()
        assert response.status == 200, (path, response.status, body[:500])
        return body

    async def csrf(self) -> str:
        body = await (await self.get("/login")).text()
        if (match := _CSRF.search(body)) is None:
            body = await (await self.get("/services")).text()
            match = _CSRF.search(body)
        assert match is not None, "no CSRF token on the page"
        return match.group(1)

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> ClientResponse:
        form = dict(data or {})
        if csrf and "csrf_token" not in form:
            form["csrf_token"] = await self.csrf()
        kwargs.setdefault("allow_redirects", False)
        return await self.client.post(path, data=form, **kwargs)

    async def signup(self, email: str, name: str, password: str = PASSWORD) -> int:
        """Sign up, then log in (sign-up never signs in: it answers alike for a taken email)."""
        response = await self.post("/signup", {"email": email, "name": name, "password": password})
        assert response.status == 303, await response.text()
        response = await self.login(email, password)
        assert response.status == 303, await response.text()
        db: Database = self.client.server.app[keys.DB]  # type: ignore[union-attr]
        self.user_id = int(
            await db.fetch_value(
                f"SELECT id FROM users WHERE {db.dialect.email_equals}", (email.lower(),)
            )
        )
        return self.user_id

    async def login(self, email: str, password: str = PASSWORD) -> ClientResponse:
        return await self.post("/login", {"email": email, "password": password})


BrowserFactory = Callable[[], Awaitable[Browser]]


@pytest.fixture
async def new_browser(server: TestServer) -> AsyncIterator[BrowserFactory]:
    clients: list[TestClient] = []

    async def factory() -> Browser:
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return Browser(client)

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def provider(new_browser: BrowserFactory) -> Browser:
    browser = await new_browser()
    await browser.signup("provider@example.com", "Pat Provider")
    return browser


@pytest.fixture
async def client_browser(new_browser: BrowserFactory) -> Browser:
    browser = await new_browser()
    await browser.signup("client@example.com", "Casey Client")
    return browser


@pytest.fixture
async def stranger(new_browser: BrowserFactory) -> Browser:
    browser = await new_browser()
    await browser.signup("stranger@example.com", "Sam Stranger")
    return browser
