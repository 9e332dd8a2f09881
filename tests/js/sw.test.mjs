// The service worker (static/js/sw.js), run as it is in a node:vm context whose global is a
// fake ServiceWorkerGlobalScope: push payloads become notifications (title, body, tag = the
// collapse key, the url kept for the click), a payload that is not JSON shows a generic one,
// a click opens only paths on this site, and a changed subscription is swapped at the site.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../../static/js/sw.js", import.meta.url), "utf8");
const ORIGIN = "https://market.example";
const KEY = Buffer.from([4, ...Array.from({ length: 64 }, (_, i) => i + 1)]).toString("base64url");

// Loads sw.js into a fresh fake worker scope. `windows`: the open clients ({url}); `fetchImpl`:
// the site as the worker reaches it.
function loadWorker({ windows = [], fetchImpl = async () => ({ ok: false, status: 500 }), subscribeError = null } = {}) {
  const listeners = new Map();
  const shown = [];
  const opened = [];
  const focused = [];
  const subscribed = [];
  const calls = { skipWaiting: 0, claim: 0, matchAll: [] };
  const scope = {
    location: { origin: ORIGIN, href: `${ORIGIN}/sw.js` },
    addEventListener(type, fn) {
      listeners.set(type, fn);
    },
    registration: {
      async showNotification(title, options) {
        shown.push({ title, options });
      },
      pushManager: {
        async subscribe(options) {
          if (subscribeError) throw subscribeError;
          subscribed.push(options);
          return {
            endpoint: "https://push.example.com/send/renewed",
            toJSON: () => ({ keys: { p256dh: "BNew", auth: "new-auth" } }),
          };
        },
      },
    },
    clients: {
      async matchAll(options) {
        calls.matchAll.push({ ...options }); // an object of the worker's realm: copied for deepEqual
        return windows.map((w) => ({
          ...w,
          async focus() {
            focused.push(w.url);
            return this;
          },
        }));
      },
      async openWindow(url) {
        opened.push(url);
        return { url };
      },
      async claim() {
        calls.claim += 1;
      },
    },
    async skipWaiting() {
      calls.skipWaiting += 1;
    },
    fetch: fetchImpl,
    URL,
    URLSearchParams,
    atob,
    console,
  };
  scope.self = scope;
  vm.createContext(scope);
  vm.runInContext(SOURCE, scope, { filename: "sw.js" });

  // Dispatches an ExtendableEvent-like event and waits for what it asked to wait for.
  async function dispatch(type, fields = {}) {
    const waits = [];
    const handler = listeners.get(type);
    assert.ok(handler, `no ${type} listener`);
    handler({ type, waitUntil: (promise) => waits.push(promise), ...fields });
    assert.equal(waits.length, 1, `${type} must waitUntil its work`);
    await Promise.all(waits);
  }
  const push = (text) => dispatch("push", { data: text === null ? null : { text: () => text } });
  function click(data) {
    const notification = { data, closed: false, close() { this.closed = true; } };
    return dispatch("notificationclick", { notification }).then(() => notification);
  }
  return { scope, listeners, shown, opened, focused, subscribed, calls, dispatch, push, click };
}

const PAYLOAD = {
  title: "Marketplace",
  body: "Pat accepted the booking of House Cleaning.",
  url: "/bookings/42",
  tag: "booking:42",
  id: 123,
};

test("the worker listens for push, notificationclick, pushsubscriptionchange, install and activate", () => {
  const worker = loadWorker();
  assert.deepEqual([...worker.listeners.keys()].sort(), ["activate", "install", "notificationclick", "push", "pushsubscriptionchange"]);
});

test("a push shows its title and body, tagged with its collapse key, its url kept for the click", async () => {
  const worker = loadWorker();
  await worker.push(JSON.stringify(PAYLOAD));
  assert.equal(worker.shown.length, 1);
  const [{ title, options }] = worker.shown;
  assert.equal(title, "Marketplace");
  assert.equal(options.body, "Pat accepted the booking of House Cleaning.");
  assert.equal(options.tag, "booking:42");
  assert.equal(options.renotify, true);
  assert.deepEqual({ ...options.data }, { url: "/bookings/42", id: 123 });
});

test("two pushes about one booking share a tag, so the system replaces the older", async () => {
  const worker = loadWorker();
  await worker.push(JSON.stringify(PAYLOAD));
  await worker.push(JSON.stringify({ ...PAYLOAD, body: "Pat completed House Cleaning.", id: 124 }));
  assert.deepEqual(worker.shown.map((n) => n.options.tag), ["booking:42", "booking:42"]);
  assert.equal(worker.shown[1].options.body, "Pat completed House Cleaning.");
});

test("a push without a tag is tagged by its notification id", async () => {
  const worker = loadWorker();
  await worker.push(JSON.stringify({ title: "Marketplace", body: "Maintenance tonight", url: "/notifications/9", id: 9 }));
  assert.equal(worker.shown[0].options.tag, "notification:9");
});

test("a payload that is not JSON, not an object, or missing shows the generic notification for the inbox", async () => {
  for (const text of ["not json {", "[1, 2]", "42", "null", "", null]) {
    const worker = loadWorker();
    await worker.push(text);
    assert.equal(worker.shown.length, 1, String(text));
    const [{ title, options }] = worker.shown;
    assert.equal(title, "Marketplace", String(text));
    assert.equal(options.body, "You have a new notification.", String(text));
    assert.equal(options.data.url, "/notifications", String(text));
    assert.equal(options.tag, "marketplace", String(text));
    assert.equal(options.renotify, true);
  }
});

test("fields of the wrong type fall back one by one; long text is clipped", async () => {
  const worker = loadWorker();
  await worker.push(JSON.stringify({ title: 5, body: "x".repeat(1000), url: 7, tag: "" }));
  const [{ title, options }] = worker.shown;
  assert.equal(title, "Marketplace");
  assert.equal(options.body.length, 300);
  assert.ok(options.body.endsWith("…"));
  assert.equal(options.data.url, "/notifications");
  assert.equal(options.tag, "marketplace");
});

test("a url that is not a path on this site is never kept: the inbox instead", async () => {
  const outside = [
    "https://evil.example/phish", "//evil.example/x", "/\\evil.example/x", "/\t/evil.example",
    "javascript:alert(1)", "bookings/42", "",
  ];
  for (const url of outside) {
    const worker = loadWorker();
    await worker.push(JSON.stringify({ ...PAYLOAD, url }));
    assert.equal(worker.shown[0].options.data.url, "/notifications", JSON.stringify(url));
  }
  const worker = loadWorker();
  await worker.push(JSON.stringify({ ...PAYLOAD, url: "/notifications/5?from=push#top" }));
  assert.equal(worker.shown[0].options.data.url, "/notifications/5?from=push#top");
});

test("a click closes the notification and opens its page in a new window when none shows it", async () => {
  const worker = loadWorker({ windows: [{ url: `${ORIGIN}/services` }] });
  const notification = await worker.click({ url: "/bookings/42" });
  assert.equal(notification.closed, true);
  assert.deepEqual(worker.opened, [`${ORIGIN}/bookings/42`]);
  assert.deepEqual(worker.focused, []);
  assert.deepEqual(worker.calls.matchAll, [{ type: "window", includeUncontrolled: true }]);
});

test("a click focuses a window already showing the page instead of opening another", async () => {
  const worker = loadWorker({ windows: [{ url: `${ORIGIN}/services` }, { url: `${ORIGIN}/bookings/42` }] });
  await worker.click({ url: "/bookings/42" });
  assert.deepEqual(worker.focused, [`${ORIGIN}/bookings/42`]);
  assert.deepEqual(worker.opened, []);
});

test("a click never leaves the site, whatever the notification's data says", async () => {
  for (const data of [{ url: "https://evil.example/" }, { url: "//evil.example/" }, { url: "/\\evil.example" }, null, {}]) {
    const worker = loadWorker();
    await worker.click(data);
    assert.deepEqual(worker.opened, [`${ORIGIN}/notifications`], JSON.stringify(data));
  }
});

test("install skips waiting and activate claims the open pages", async () => {
  const worker = loadWorker();
  await worker.dispatch("install");
  await worker.dispatch("activate");
  assert.equal(worker.calls.skipWaiting, 1);
  assert.equal(worker.calls.claim, 1);
});

// The site as the worker reaches it: records requests, answers like app/push/views.py.
function fakeSite({ signedIn = true } = {}) {
  const requests = [];
  const fetchImpl = async (path, init = {}) => {
    const method = init.method ?? "GET";
    requests.push({ method, path, credentials: init.credentials, fields: init.body ? Object.fromEntries(init.body) : null });
    if (!signedIn) return { ok: false, status: 401, json: async () => ({ error: "sign in first" }) };
    if (method === "GET") return { ok: true, status: 200, json: async () => ({ public_key: KEY, csrf_token: "tok" }) };
    return { ok: true, status: path === "/account/push" ? 201 : 204, json: async () => ({ id: 1 }) };
  };
  return { requests, fetchImpl };
}

const oldSubscription = { endpoint: "https://push.example.com/send/old" };

test("pushsubscriptionchange: the site forgets the old endpoint and learns the new subscription", async () => {
  const site = fakeSite();
  const worker = loadWorker({ fetchImpl: site.fetchImpl });
  const newSubscription = {
    endpoint: "https://push.example.com/send/new",
    toJSON: () => ({ keys: { p256dh: "BNewKey", auth: "newauth" } }),
  };
  await worker.dispatch("pushsubscriptionchange", { oldSubscription, newSubscription });
  assert.deepEqual(site.requests, [
    { method: "GET", path: "/account/push", credentials: "same-origin", fields: null },
    { method: "POST", path: "/account/push/remove", credentials: "same-origin",
      fields: { csrf_token: "tok", endpoint: "https://push.example.com/send/old" } },
    { method: "POST", path: "/account/push", credentials: "same-origin",
      fields: { csrf_token: "tok", endpoint: "https://push.example.com/send/new", p256dh: "BNewKey", auth: "newauth" } },
  ]);
  assert.deepEqual(worker.subscribed, []);
});

test("pushsubscriptionchange without a new subscription subscribes again with the site's key", async () => {
  const site = fakeSite();
  const worker = loadWorker({ fetchImpl: site.fetchImpl });
  await worker.dispatch("pushsubscriptionchange", { oldSubscription, newSubscription: null });
  assert.equal(worker.subscribed.length, 1);
  assert.equal(worker.subscribed[0].userVisibleOnly, true);
  assert.deepEqual([...worker.subscribed[0].applicationServerKey], [...Buffer.from(KEY, "base64url")]);
  assert.deepEqual(site.requests.at(-1).fields, {
    csrf_token: "tok", endpoint: "https://push.example.com/send/renewed", p256dh: "BNew", auth: "new-auth",
  });
});

test("pushsubscriptionchange when subscribing again fails: the old endpoint is still removed, nothing posted", async () => {
  const site = fakeSite();
  const worker = loadWorker({ fetchImpl: site.fetchImpl, subscribeError: new Error("NotAllowedError") });
  await worker.dispatch("pushsubscriptionchange", { oldSubscription, newSubscription: null });
  assert.deepEqual(site.requests.map((r) => `${r.method} ${r.path}`), ["GET /account/push", "POST /account/push/remove"]);
});

test("pushsubscriptionchange while signed out does nothing more than ask", async () => {
  const site = fakeSite({ signedIn: false });
  const worker = loadWorker({ fetchImpl: site.fetchImpl });
  await worker.dispatch("pushsubscriptionchange", { oldSubscription, newSubscription: null });
  assert.deepEqual(site.requests.map((r) => `${r.method} ${r.path}`), ["GET /account/push"]);
  assert.deepEqual(worker.subscribed, []);
});
