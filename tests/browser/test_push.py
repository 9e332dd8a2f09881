"""Web Push in real Chromium: the service worker (/sw.js) and "Enable push on this device".

No push service is reachable here, so `PushManager.subscribe` and `getSubscription` are stubbed
in an init script: they hand the page a subscription-like object (a real P-256 key, an endpoint
the server accepts) and remember it in localStorage like a browser would. Pushes are handed to
the real service worker with the DevTools protocol (`ServiceWorker.deliverPushMessage`), and
what it showed is read back with `registration.getNotifications()`.

A notification click cannot be made through the DevTools protocol (it has no notification
domain), so what `notificationclick` opens is tested in node (tests/js/sw.test.mjs), on the
same sw.js. The server's side (encryption, VAPID, when to push) is in tests/test_push.py.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from tests.browser.conftest import WAIT_MS, Contexts, HttpUser, LiveServer, login, wait_live

ENDPOINT_BASE = "https://push.invalid/push/"  # .invalid never resolves: nothing leaves here


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def device_keys() -> dict[str, str]:
    """A browser's subscription keys: a P-256 public point and a 16-byte auth secret."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}


# The Push API without a push service: subscribe() makes a subscription (kept in localStorage,
# as a browser keeps it across reloads), getSubscription() returns it, unsubscribe() drops it.
# Calls are recorded in window.__push.
PUSH_STUB = """
(() => {
  const KEY = "test:push-subscription";
  const keys = %(keys)s;
  const toB64url = (bytes) => btoa(String.fromCharCode(...bytes))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  window.__push = {subscribe: [], unsubscribe: 0};
  function subscription(stored) {
    return {
      endpoint: stored.endpoint,
      expirationTime: null,
      options: {
        userVisibleOnly: true,
        applicationServerKey: Uint8Array.from(stored.key).buffer,
      },
      toJSON() {
        return {endpoint: stored.endpoint, expirationTime: null, keys: {...keys}};
      },
      async unsubscribe() {
        window.__push.unsubscribe += 1;
        localStorage.removeItem(KEY);
        return true;
      },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__push.subscribe.push({
      userVisibleOnly: options.userVisibleOnly, applicationServerKey: toB64url(key),
    });
    const stored = {endpoint: "%(base)s" + crypto.randomUUID(), key: [...key]};
    localStorage.setItem(KEY, JSON.stringify(stored));
    return subscription(stored);
  };
  PushManager.prototype.getSubscription = async function () {
    const stored = localStorage.getItem(KEY);
    return stored ? subscription(JSON.parse(stored)) : null;
  };
})();
"""

# The permission prompt, answered by the test: Notification.permission reads "default" until
# requestPermission() (counted per page) answers window.__promptAnswer ("granted" unless a test
# says), remembered for the origin like a browser does. The real permission is granted to the
# context, so the worker may show notifications.
PERMISSION_PROMPT = """
(() => {
  const KEY = "test:permission";
  window.__permissionRequests = 0;
  Object.defineProperty(Notification, "permission", {
    get: () => localStorage.getItem(KEY) || "default", configurable: true,
  });
  Notification.requestPermission = async () => {
    window.__permissionRequests += 1;
    localStorage.setItem(KEY, window.__promptAnswer || "granted");
    return Notification.permission;
  };
})();
"""

NOTIFICATIONS = """
async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}));
}
"""


def push_context(
    new_context: Contexts, server: LiveServer, *, prompt: bool = True
) -> BrowserContext:
    stub = PUSH_STUB % {"keys": json.dumps(device_keys()), "base": ENDPOINT_BASE}
    scripts = (stub, PERMISSION_PROMPT) if prompt else (stub,)
    context = new_context(init_scripts=scripts)
    context.grant_permissions(["notifications"], origin=server.url)
    return context


def until(page: Page, script: str, arg: Any = None, what: str = "") -> Any:
    """Evaluates `script` (a function of `arg`) in the page until it gives something truthy,
    which is returned; fails after WAIT_MS. (Not page.wait_for_function: its polling compiles
    the predicate with eval, which the site's CSP refuses.)"""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        result = page.evaluate(script, arg)
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_MS} ms waiting for {what or script} ({result!r})")
        page.wait_for_timeout(25)


def wait_controlled(page: Page) -> None:
    """The service worker registered on load is active and controls the page (clients.claim)."""
    until(page, "() => navigator.serviceWorker.controller !== null", what="a controlling worker")


def open_bell(page: Page) -> None:
    page.locator("[data-rt-bell]").click()
    expect(page.locator("[data-rt-dropdown]")).to_be_visible()


def push_button(page: Page) -> Any:
    return page.locator("[data-push-enable]")


def push_note(page: Page) -> Any:
    return page.locator("[data-push-note]")


def subscriptions(server: LiveServer, user: HttpUser) -> list[tuple[str, str, str]]:
    rows = server.query(
        "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = ? ORDER BY id",
        (user.id,),
    )
    return [(str(e), str(p), str(a)) for e, p, a in rows]


def wait_for_rows(server: LiveServer, user: HttpUser, count: int) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        rows = subscriptions(server, user)
        if len(rows) == count:
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"{len(rows)} push subscriptions stored, not {count}: {rows}")
        time.sleep(0.05)


# --- the page control -------------------------------------------------------------------------


def test_the_worker_registers_without_a_question_and_the_click_subscribes_this_device(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Petra Push")
    context = push_context(new_context, live_server)
    page = login(context, user, "/services")
    wait_live(page)
    wait_controlled(page)
    registration = page.evaluate(
        "navigator.serviceWorker.ready.then((r) => ({scope: r.scope, script: r.active.scriptURL}))"
    )
    assert registration == {"scope": live_server.url + "/", "script": live_server.url + "/sw.js"}
    assert page.evaluate("window.__permissionRequests") == 0  # loading asks nothing
    assert page.evaluate("window.__push.subscribe") == []

    open_bell(page)
    expect(push_button(page)).to_be_visible()
    expect(push_button(page)).to_have_text("Enable push on this device")
    expect(push_note(page)).to_have_text("")
    push_button(page).click()
    expect(push_note(page)).to_have_text("Push is on for this device.")
    expect(push_button(page)).to_have_text("Turn off push on this device")
    assert page.evaluate("window.__permissionRequests") == 1
    # The answer covers desktop notifications too: that control says so at once.
    expect(page.locator("[data-rt-desktop-note]")).to_have_text(
        "Desktop notifications are on for this browser."
    )
    expect(page.locator("[data-rt-enable-desktop]")).to_be_hidden()

    # Subscribed with the site's VAPID key, and the subscription is the server's.
    key = page.evaluate("fetch('/account/push').then((r) => r.json()).then((b) => b.public_key)")
    assert page.evaluate("window.__push.subscribe") == [
        {"userVisibleOnly": True, "applicationServerKey": key}
    ]
    [(endpoint, p256dh, auth)] = wait_for_rows(live_server, user, 1)
    assert endpoint.startswith(ENDPOINT_BASE)
    assert endpoint == page.evaluate(
        "navigator.serviceWorker.ready.then((r) => "
        "r.pushManager.getSubscription()).then((s) => s.endpoint)"
    )
    assert (p256dh, auth) != ("", "")
    sessions = context.new_page()
    sessions.goto("/account/sessions")
    expect(sessions.locator("[data-push-devices]")).to_have_count(1)
    sessions.close()

    # A new page of the same browser: on at once, nothing asked, nothing subscribed again.
    page.reload()
    wait_live(page)
    open_bell(page)
    expect(push_note(page)).to_have_text("Push is on for this device.")
    expect(push_button(page)).to_have_text("Turn off push on this device")
    assert page.evaluate("window.__permissionRequests") == 0
    assert page.evaluate("window.__push.subscribe") == []
    assert [row[0] for row in wait_for_rows(live_server, user, 1)] == [endpoint]

    # Turning it off: unsubscribed in the browser, forgotten by the server.
    push_button(page).click()
    expect(push_note(page)).to_have_text("Push is off for this device.")
    expect(push_button(page)).to_have_text("Enable push on this device")
    assert page.evaluate("window.__push.unsubscribe") == 1
    wait_for_rows(live_server, user, 0)


def test_a_permission_denied_at_the_prompt_leaves_push_off_and_says_so(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Dora Denied")
    context = push_context(new_context, live_server)
    page = login(context, user, "/services")
    wait_live(page)
    wait_controlled(page)
    page.evaluate("window.__promptAnswer = 'denied'")
    open_bell(page)
    push_button(page).click()
    expect(push_note(page)).to_have_text("Push is blocked in this browser's settings.")
    expect(push_button(page)).to_be_hidden()
    assert page.evaluate("window.__permissionRequests") == 1
    assert page.evaluate("window.__push.subscribe") == []
    assert subscriptions(live_server, user) == []


def test_sw_js_is_served_from_the_root_uncached_as_javascript(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.url + "/sw.js", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Cache-Control"] == "no-cache"
        assert b'addEventListener("push"' in response.read()


# --- the service worker -----------------------------------------------------------------------


# Counts, in the service worker, the showNotification calls that have settled. Installed by the
# test (the worker stays running while Playwright is attached to it), not part of sw.js.
SHOWN_COUNTER = """
() => {
  if (self.__settled) return;
  self.__settled = [];
  const show = ServiceWorkerRegistration.prototype.showNotification;
  const settled = (tag, error) => self.__settled.push({tag, error});
  ServiceWorkerRegistration.prototype.showNotification = function (title, options = {}) {
    return show.call(this, title, options).then(
      (value) => { settled(options.tag, null); return value; },
      (error) => { settled(options.tag, String(error)); throw error; },
    );
  };
}
"""


class WorkerPushes:
    """Delivers push messages to the page's service worker through the DevTools protocol.

    getNotifications() is never polled while a notification is being shown: in this Chromium a
    notification asked about during its display went missing from getNotifications() for good
    (about one run in three when the page polled it). Each delivery waits, in the worker, until
    its showNotification has settled; only then does the page read getNotifications(), once."""

    def __init__(self, context: BrowserContext, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.registrations: dict[str, dict[str, Any]] = {}
        self.cdp: CDPSession = context.new_cdp_session(page)
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._updated)
        self.cdp.send("ServiceWorker.enable")  # answers with every registration there is
        self.registration_id = self._wait_for_registration()
        self.worker = self._wait_for(
            lambda: next((w for w in context.service_workers if w.url == origin + "/sw.js"), None),
            "the service worker",
        )
        self.worker.evaluate(SHOWN_COUNTER)
        self.delivered = 0

    def _updated(self, params: dict[str, Any]) -> None:
        for registration in params["registrations"]:
            self.registrations[registration["registrationId"]] = registration

    def _wait_for(self, condition: Any, what: str) -> Any:
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {WAIT_MS} ms waiting for {what}")
            self.page.wait_for_timeout(20)  # lets Playwright take the protocol's events in

    def _wait_for_registration(self) -> str:
        scope = self.origin + "/"
        found: str = self._wait_for(
            lambda: next(
                (
                    registration_id
                    for registration_id, registration in self.registrations.items()
                    if registration["scopeURL"] == scope and not registration["isDeleted"]
                ),
                None,
            ),
            f"a service worker registration for {scope}",
        )
        return found

    def deliver(self, data: str | dict[str, Any]) -> None:
        """One push; returns once the worker's notification for it is shown."""
        text = data if isinstance(data, str) else json.dumps(data)
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": self.origin, "registrationId": self.registration_id, "data": text},
        )
        self.delivered += 1
        settled: list[dict[str, Any]] = self._wait_for(
            lambda: self._settled(self.delivered),
            f"the worker to show push #{self.delivered} ({text})",
        )
        assert settled[-1]["error"] is None, settled

    def _settled(self, count: int) -> list[dict[str, Any]] | None:
        settled: list[dict[str, Any]] = self.worker.evaluate("self.__settled")
        return settled if len(settled) >= count else None


def shown(page: Page) -> list[dict[str, Any]]:
    """What the service worker's registration shows now: [{title, body, tag, url}]."""
    result: list[dict[str, Any]] = page.evaluate(NOTIFICATIONS)
    return result


def test_pushes_become_notifications_tagged_by_key_and_a_newer_one_replaces_the_older(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Nico Notified")
    context = push_context(new_context, live_server, prompt=False)
    page = login(context, user, "/services")
    wait_controlled(page)
    pushes = WorkerPushes(context, page, live_server.url)
    assert shown(page) == []

    accepted = {
        "title": "Marketplace",
        "body": "Pat accepted the booking of House Cleaning.",
        "url": "/bookings/42",
        "tag": "booking:42",
        "id": 123,
    }
    pushes.deliver(accepted)
    assert shown(page) == [
        {
            "title": "Marketplace",
            "body": "Pat accepted the booking of House Cleaning.",
            "tag": "booking:42",
            "url": "/bookings/42",
        }
    ]

    pushes.deliver(
        {
            "title": "Marketplace",
            "body": "Paid.",
            "url": "/payments/7",
            "tag": "payment:7",
            "id": 124,
        }
    )
    assert sorted(n["tag"] for n in shown(page)) == ["booking:42", "payment:7"]

    # The same booking again: the newer replaces the older (one notification with that tag).
    pushes.deliver({**accepted, "body": "Pat completed House Cleaning.", "id": 125})
    now = shown(page)
    booking = [n for n in now if n["tag"] == "booking:42"]
    assert booking == [
        {
            "title": "Marketplace",
            "body": "Pat completed House Cleaning.",
            "tag": "booking:42",
            "url": "/bookings/42",
        }
    ]
    assert sorted(n["tag"] for n in now) == ["booking:42", "payment:7"]


def test_a_push_that_is_not_json_shows_a_generic_notification_for_the_inbox(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Greta Generic")
    context = push_context(new_context, live_server, prompt=False)
    page = login(context, user, "/services")
    wait_controlled(page)
    pushes = WorkerPushes(context, page, live_server.url)

    pushes.deliver("this is not JSON {")
    assert shown(page) == [
        {
            "title": "Marketplace",
            "body": "You have a new notification.",
            "tag": "marketplace",
            "url": "/notifications",
        }
    ]
    # And a url off the site is never kept for the click.
    pushes.deliver(
        {"title": "Marketplace", "body": "Look", "url": "https://evil.example/", "tag": "t:1"}
    )
    [outside] = [n for n in shown(page) if n["tag"] == "t:1"]
    assert outside["url"] == "/notifications"
