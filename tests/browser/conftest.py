"""Real-browser infrastructure: the app as a subprocess, headless Chromium, and helpers.

The server is the real `python run.py` (so stopping and restarting it is a real outage), one
per test module and store (each module runs on SQLite, then on PostgreSQL); Chromium is the
system's, driven by Playwright's sync API in plain test functions. Every wait is for a
condition, with a bound.

Without Chromium (or when Playwright cannot start it) the browser tests are skipped, except
when CI=true: then they fail, so CI never passes by skipping them.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.conftest import STORES
from tests.net import free_port
from tests.pg import Cluster
from tests.stores import OutsideDatabase

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Locator,
        Page,
        Playwright,
        expect,
        sync_playwright,
    )
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the test extras install it; without them, leave these tests out
    if os.environ.get("CI") == "true":
        raise
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "browser-test-api-key-0123456789"
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 15.0  # s for the server to print its URL
WAIT_MS = 5_000  # default bound for a browser-side condition
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_USER_ID = re.compile(r'data-user-id="(\d+)"')


def unavailable(message: str) -> NoReturn:
    """Skip locally; fail on CI, where a browser test that cannot run is a broken build."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def future_slot(days: int = 7) -> str:
    """A `datetime-local` value a week ahead (valid for booking)."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT10:00")


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def poll(
    condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Calls `condition` until it returns something truthy (returned), or fails at `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition!r} ({last!r})")
        time.sleep(interval)


# --- the server ------------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class LiveServer:
    """`python run.py` on a fixed port and database; stop() and start() again keep both."""

    def __init__(self, db: OutsideDatabase) -> None:
        self.db = db
        self.workdir = db.workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "server.log"
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []

    # lifecycle

    def start(self) -> None:
        assert self.process is None, "already running"
        ready = threading.Event()
        lines: list[str] = []
        log = self.log_path.open("ab")
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "run.py",
                    "--port",
                    str(self.port),
                    *self.db.flags(),
                    "--api-key",
                    API_KEY,
                    "--argon2-memory-kib",
                    "64",
                    "--argon2-time-cost",
                    "1",
                    "--ws-heartbeat",
                    "2",
                    "--ws-heartbeat-timeout",
                    "2",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        finally:
            log.close()
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            for line in stdout:
                lines.append(line)
                if "Serving the marketplace on" in line:
                    ready.set()

        reader = threading.Thread(target=read, name=f"server-{self.port}-stdout", daemon=True)
        reader.start()
        self.process, self._reader, self._lines = process, reader, lines
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the server did not start:\n{self.log_tail()}\n{''.join(lines)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful shutdown: sockets closed with 1001), then wait for the exit."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._reap()

    def kill(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(5)
        self._reap()

    def _reap(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        self._reader = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # HTTP, as a program (no cookies)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def publish(
        self,
        user_ids: list[int],
        data: dict[str, Any],
        type: str = "notification",
        key: str | None = None,
    ) -> list[int]:
        """POST /api/publish; returns the stored notification ids (one per user)."""
        payload: dict[str, Any] = {"user_ids": user_ids, "type": type, "data": data}
        if key is not None:
            payload["key"] = key
        status, text = self.request(
            "POST",
            "/api/publish",
            json.dumps(payload).encode(),
            {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        )
        assert status == 202, (status, text)
        ids: list[int] = json.loads(text)["ids"]
        return ids

    def metrics(self) -> dict[str, float]:
        """GET /metrics as {"name{labels}": value}."""
        status, text = self.request("GET", "/metrics")
        assert status == 200, status
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def ws_connections(self) -> int:
        return int(self.metrics()["ws_connections"])

    def refused_unauthenticated(self) -> int:
        return int(self.metrics().get('ws_connections_refused_total{reason="unauthenticated"}', 0))

    def wait_for_ws_connections(self, count: int, timeout: float = 5.0) -> None:
        poll(
            lambda: self.ws_connections() == count,
            timeout,
            what=f"ws_connections == {count} (now {self.ws_connections()})",
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Reads the server's database directly, while it runs."""
        return self.db.query(sql, params)

    # people

    def signup(self, name: str, email: str | None = None) -> HttpUser:
        """A new account through the signup form (GET for the CSRF token, then POST)."""
        user = HttpUser(self, email or unique_email(name.split()[0].lower()), name)
        form = {"email": user.email, "name": name, "password": PASSWORD}
        status, location = user.post_form("/signup", form)
        assert status == 303, (status, location)
        # Sign-up never signs in (it answers alike for a taken email): log in next.
        status, location = user.post_form("/login", {"email": user.email, "password": PASSWORD})
        assert status == 303, (status, location)
        user.id = user.current_user_id()
        return user


class HttpUser:
    """A person using the site over plain HTTP: own cookie jar, forms with CSRF tokens."""

    def __init__(self, server: LiveServer, email: str, name: str) -> None:
        self.server = server
        self.email = email
        self.name = name
        self.id = 0
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.server.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def csrf(self, path: str) -> str:
        status, body = self.get(path)
        match = _CSRF.search(body)
        assert match is not None, f"no CSRF token on {path} ({status})"
        return match.group(1)

    def post_form(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        """POSTs a form (with the page's CSRF token); returns (status, Location or body)."""
        data = dict(form)
        data.setdefault(
            "csrf_token", self.csrf(path if path in ("/signup", "/login") else "/services")
        )
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.server.url + path, data=body, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code in (301, 302, 303):
                    return exc.code, exc.headers["Location"]
                return exc.code, exc.read().decode()

    def current_user_id(self) -> int:
        status, body = self.get("/services")
        match = _USER_ID.search(body)
        assert status == 200 and match is not None, "not signed in"
        return int(match.group(1))

    def create_service(
        self, name: str = "House Cleaning", price: str = "150.00", **fields: str
    ) -> int:
        """A service through the form (no picture): online unless `city` is given; `fields`
        set or override the rest (category, description, ...)."""
        form = {"name": name, "description": "Thorough.", "price": price, "duration_minutes": "90"}
        if not fields.get("city"):
            form["online"] = "1"  # a service is online or in a city
        form.update(fields)
        status, location = self.post_form("/services/new", form)
        assert status == 303, (status, location)
        return int(location.rstrip("/").rsplit("/", 1)[1])

    def form_value(self, path: str, name: str) -> str:
        """A hidden field's value on a page (a payment form's idempotency key, a message id)."""
        status, body = self.get(path)
        match = re.search(rf'name="{name}" value="([^"]+)"', body)
        assert status == 200 and match is not None, f"no {name} on {path} ({status})"
        return match.group(1)

    def pay(self, booking_id: int, card: str = "4242 4242 4242 4242") -> int:
        """Pays a booking (its whole price, 150.00) through the form; the payment's id."""
        form = {
            "amount": "150.00",
            "card_number": card,
            "idempotency_key": self.form_value(f"/bookings/{booking_id}/pay", "idempotency_key"),
        }
        status, location = self.post_form(f"/bookings/{booking_id}/pay", form)
        assert status == 303 and "/payments/" in location, (status, location)
        return int(location.rstrip("/").rsplit("/", 1)[1])

    def book(self, service_id: int, note: str = "") -> int:
        form = {"scheduled_at": future_slot(), "note": note}
        status, location = self.post_form(f"/services/{service_id}/book", form)
        assert status == 303, (status, location)
        return int(location.rstrip("/").rsplit("/", 1)[1])


# --- the browser -----------------------------------------------------------------------------

# Scripts run in every page of a context before the page's own.
HIDDEN_PAGE = """
for (const [name, value] of [["visibilityState", "hidden"], ["hidden", true]]) {
  Object.defineProperty(Document.prototype, name, {get: () => value, configurable: true});
}
"""
NOTIFICATION_SPY = """
window.__notifications = [];
class NotificationSpy {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options = {}) {
    this.title = title;
    this.options = options;
    window.__notifications.push({title, body: options.body, tag: options.tag});
  }
  close() {}
}
Object.defineProperty(window, "Notification", {
  value: NotificationSpy, writable: true, configurable: true,
});
"""
# Every toast ever shown (they remove themselves after a few seconds).
TOAST_RECORDER = """
window.__toasts = [];
document.addEventListener("DOMContentLoaded", () => {
  const region = document.querySelector("[data-rt-toasts]");
  if (!region) return;
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        const id = node.dataset && node.dataset.notificationId;
        if (id) window.__toasts.push(Number(id));
      }
    }
  }).observe(region, {childList: true});
});
"""


# Package scope, not session: while Playwright's sync API is alive its event loop counts as
# the thread's running loop, which pytest-asyncio's tests after this package would trip on.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    try:
        manager = sync_playwright().start()
    except Exception as exc:
        unavailable(f"playwright could not start: {exc}")
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("chromium not installed: apt-get install chromium")
    try:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except PlaywrightError as exc:
        unavailable(f"playwright could not launch chromium ({executable}): {exc.message}")
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module", params=STORES)
def live_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OutsideDatabase]:
    """This module's database: a SQLite file, or a PostgreSQL database of its own."""
    workdir = tmp_path_factory.mktemp("live")
    if request.param == "sqlite":
        yield OutsideDatabase(workdir)
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database()
    try:
        yield OutsideDatabase(workdir, url, cluster)
    finally:
        cluster.drop_database(url)


@pytest.fixture(scope="module")
def live_server(live_db: OutsideDatabase) -> Iterator[LiveServer]:
    server = LiveServer(live_db)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@dataclass
class Contexts:
    """Makes browser contexts on the live server; closes them all when the test ends and
    fails the test if any page threw an uncaught JavaScript error."""

    browser: Browser
    server: LiveServer
    opened: list[BrowserContext]
    page_errors: list[str]

    def __call__(self, *, init_scripts: tuple[str, ...] = (), **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1100, "height": 720})
        context = self.browser.new_context(base_url=self.server.url, **options)
        context.set_default_timeout(WAIT_MS)
        for script in init_scripts:
            context.add_init_script(script)
        context.on("page", self._watch)
        self.opened.append(context)
        return context

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))

    def close_all(self) -> None:
        while self.opened:
            self.opened.pop().close()


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[Contexts]:
    if not live_server.running:  # an earlier test failed while it was stopped
        live_server.start()
    contexts = Contexts(browser, live_server, [], [])
    try:
        yield contexts
    finally:
        contexts.close_all()
    assert not contexts.page_errors, contexts.page_errors


def login(context: BrowserContext, user: HttpUser, path: str = "/services") -> Page:
    """Logs the context in through the login form; returns its page, open at `path`."""
    page = context.new_page()
    page.goto("/login?next=" + urllib.parse.quote(path))
    page.fill("#f-email", user.email)
    page.fill("#f-password", PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/login" not in page.url, page.content()[:2000]
    return page


def signup_ui(context: BrowserContext, name: str) -> tuple[Page, str]:
    """Signs up through the form, then logs in on the form it leads to (email filled in);
    returns the page (signed in, on the home page) and the email."""
    page = context.new_page()
    page.goto("/signup")
    email = unique_email(name.split()[0].lower())
    page.fill("#f-email", email)
    page.fill("#f-name", name)
    page.fill("#f-password", PASSWORD)
    with page.expect_navigation(url=re.compile(r"/login$")):
        page.get_by_role("button", name="Sign up").click()
    assert page.input_value("#f-email") == email
    page.fill("#f-password", PASSWORD)
    with page.expect_navigation(url=re.compile(r"^[^?#]*://[^/]+/$")):
        page.locator("main form button[type=submit]").click()
    return page, email


def open_page(context: BrowserContext, path: str) -> Page:
    page = context.new_page()
    page.goto(path)
    return page


def status(page: Page) -> Locator:
    return page.locator("[data-rt-status]")


def badge(page: Page) -> Locator:
    return page.locator("[data-rt-badge]")


def wait_live(page: Page, timeout: float = WAIT_MS) -> None:
    """Waits until the header says the page is connected."""
    expect(status(page)).to_have_attribute("data-state", "open", timeout=timeout)
    expect(status(page)).to_have_text("Live")


def mark_page(page: Page) -> None:
    """Leaves a mark in the page's window: gone after a reload or a navigation."""
    page.evaluate("window.__sameDocument = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))
