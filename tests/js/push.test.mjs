// "Enable push on this device" (static/js/push.js) against fakes of the Notification API, the
// service worker container, the push manager and the site's /account/push routes: the worker is
// registered on load without a question, the permission is asked only inside the click, the
// subscription goes to the site, and turning it off unsubscribes and tells the site.
import test from "node:test";
import assert from "node:assert/strict";

import { OWNER_KEY, PUSH_TEXT, PushControl, b64urlToBytes, pushSupported, subscriptionFields } from "../../static/js/push.js";
import { MemoryStorage } from "./fakes.mjs";
import { FakeDom } from "./dom.mjs";

const KEY = Buffer.from([4, ...Array.from({ length: 64 }, (_, i) => i + 1)]).toString("base64url");
const OLD_KEY = Buffer.from([4, ...Array.from({ length: 64 }, () => 9)]).toString("base64url");
const CSRF = "csrf-token-1";

// A PushSubscription as the browser gives it.
function fakeSubscription(endpoint, key = KEY) {
  const subscription = {
    endpoint,
    options: { applicationServerKey: b64urlToBytes(key).buffer, userVisibleOnly: true },
    unsubscribed: false,
    toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh: "BP256dh-key", auth: "auth-secret" } }),
    async unsubscribe() {
      subscription.unsubscribed = true;
      return true;
    },
  };
  return subscription;
}

// The browser: Notification (permission, answers to requestPermission), the service worker
// container and one registration's push manager.
function fakeBrowser({
  permission = "default", answer = "granted", existing = null, subscribeError = null,
  noPush = false, registerError = null, readyNever = false,
} = {}) {
  const calls = { requests: 0, register: [], subscribe: [], getSubscription: 0 };
  class FakeNotification {
    static permission = permission;

    static requestPermission() {
      calls.requests += 1;
      FakeNotification.permission = answer;
      return Promise.resolve(answer);
    }
  }
  const pushManager = {
    current: existing,
    async getSubscription() {
      calls.getSubscription += 1;
      return pushManager.current && !pushManager.current.unsubscribed ? pushManager.current : null;
    },
    async subscribe(options) {
      calls.subscribe.push(options);
      if (subscribeError) throw subscribeError;
      pushManager.current = fakeSubscription(`https://push.example.com/send/${calls.subscribe.length}`);
      return pushManager.current;
    },
  };
  const registration = { scope: "https://market.example/", pushManager };
  const serviceWorker = {
    register(url, options) {
      calls.register.push({ url, options });
      return registerError ? Promise.reject(registerError) : Promise.resolve(registration);
    },
    ready: readyNever ? new Promise(() => {}) : Promise.resolve(registration),
  };
  const timers = [];
  const win = {
    navigator: { serviceWorker },
    Notification: FakeNotification,
    localStorage: new MemoryStorage(),
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
    clearTimeout: () => {},
  };
  if (!noPush) win.PushManager = function PushManager() {};
  return { win, calls, pushManager, Notification: FakeNotification, timers };
}

// The site: GET /account/push, POST /account/push, POST /account/push/remove.
function fakeSite({ keyStatus = 200, saveStatus = 201, saveError = "", publicKey = KEY } = {}) {
  const requests = [];
  const json = (status, body) => ({
    ok: status >= 200 && status < 300, status, json: async () => body,
  });
  const fetchImpl = async (path, init = {}) => {
    const method = init.method ?? "GET";
    const fields = init.body ? Object.fromEntries(init.body) : null;
    requests.push({ method, path, fields, credentials: init.credentials });
    if (method === "GET" && path === "/account/push") {
      return keyStatus === 200
        ? json(200, { public_key: publicKey, csrf_token: CSRF })
        : json(keyStatus, { error: "sign in first" });
    }
    if (method === "POST" && path === "/account/push") {
      return saveStatus === 201 ? json(201, { id: 1 }) : json(saveStatus, { error: saveError });
    }
    if (method === "POST" && path === "/account/push/remove") return json(204, null);
    return json(404, { error: "not found" });
  };
  return { fetchImpl, requests, posts: () => requests.filter((r) => r.method === "POST") };
}

function page() {
  const doc = new FakeDom();
  const root = doc.build(["div", { class: "rt-desktop" },
    ["button", { type: "button", class: "button small", "data-push-enable": true, hidden: true }, PUSH_TEXT.enable],
    ["p", { class: "muted", "data-push-note": true }]]);
  doc.body.append(root);
  return { root, button: root.querySelector("[data-push-enable]"), note: root.querySelector("[data-push-note]") };
}

function setup({ browser = {}, site = {}, userId = "7", owner = null } = {}) {
  const b = fakeBrowser(browser);
  const s = fakeSite(site);
  if (owner !== null) b.win.localStorage.setItem(OWNER_KEY, owner);
  const p = page();
  const answers = [];
  const onPermission = (answer) => answers.push(answer);
  const control = new PushControl(p.root, { win: b.win, fetchImpl: s.fetchImpl, userId, onPermission });
  return { control, answers, ...b, site: s, ...p };
}

// Lets every pending promise chain run (the fakes answer at once).
async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

test("pushSupported needs a service worker container, the Push API and notifications", () => {
  assert.equal(pushSupported(fakeBrowser().win), true);
  assert.equal(pushSupported(fakeBrowser({ noPush: true }).win), false);
  const noWorker = fakeBrowser().win;
  noWorker.navigator = {};
  assert.equal(pushSupported(noWorker), false);
  assert.equal(pushSupported(null), false);
});

test("on load the worker is registered at /sw.js for the whole site and nothing is asked", async () => {
  const { control, calls, button, note, site } = setup();
  assert.equal(await control.start(), "off");
  assert.deepEqual(calls.register, [{ url: "/sw.js", options: { scope: "/" } }]);
  assert.equal(calls.requests, 0);
  assert.equal(calls.subscribe.length, 0);
  assert.equal(site.requests.length, 0);
  assert.equal(button.hidden, false);
  assert.equal(button.textContent, "Enable push on this device");
  assert.equal(note.textContent, "");
});

test("without the Push API the control stays hidden and no worker is registered", async () => {
  const { control, calls, button, note } = setup({ browser: { noPush: true } });
  assert.equal(await control.start(), "unsupported");
  assert.equal(calls.register.length, 0);
  assert.equal(button.hidden, true);
  assert.equal(note.textContent, "");
});

test("a worker the browser refuses to register leaves the button hidden and says so", async () => {
  const { control, button, note } = setup({ browser: { registerError: new Error("SecurityError") } });
  assert.equal(await control.start(), "unsupported");
  assert.equal(button.hidden, true);
  assert.match(note.textContent, /service worker/);
});

test("the click asks for permission inside the click, subscribes with the site's key and posts the subscription", async () => {
  const { control, calls, button, note, site, win, answers } = setup();
  await control.start();
  button.click();
  assert.equal(calls.requests, 1, "asked synchronously, inside the click");
  assert.equal(button.disabled, true);
  assert.equal(note.textContent, "Turning push on…");
  await settle();
  assert.equal(calls.requests, 1);
  assert.equal(calls.subscribe.length, 1);
  assert.equal(calls.subscribe[0].userVisibleOnly, true);
  assert.deepEqual([...calls.subscribe[0].applicationServerKey], [...Buffer.from(KEY, "base64url")]);
  assert.deepEqual(site.posts(), [{
    method: "POST", path: "/account/push", credentials: "same-origin",
    fields: { csrf_token: CSRF, endpoint: "https://push.example.com/send/1", p256dh: "BP256dh-key", auth: "auth-secret" },
  }]);
  assert.equal(control.state, "on");
  assert.equal(note.textContent, "Push is on for this device.");
  assert.equal(button.textContent, "Turn off push on this device");
  assert.equal(button.hidden, false);
  assert.equal(button.disabled, false);
  assert.equal(win.localStorage.getItem(OWNER_KEY), "7");
  assert.deepEqual(answers, ["granted"], "the header hears the answer (desktop notifications share it)");
});

test("with the permission already granted the click does not ask again", async () => {
  const { control, calls, button, note, answers } = setup({ browser: { permission: "granted" } });
  await control.start();
  button.click();
  await settle();
  assert.equal(calls.requests, 0);
  assert.deepEqual(answers, []);
  assert.equal(calls.subscribe.length, 1);
  assert.equal(note.textContent, "Push is on for this device.");
});

test("a permission denied at the click: blocked in words, nothing subscribed or posted", async () => {
  const { control, calls, button, note, site, answers } = setup({ browser: { answer: "denied" } });
  await control.start();
  button.click();
  await settle();
  assert.equal(calls.requests, 1);
  assert.deepEqual(answers, ["denied"]);
  assert.equal(calls.subscribe.length, 0);
  assert.deepEqual(site.posts(), []);
  assert.equal(control.state, "blocked");
  assert.equal(note.textContent, "Push is blocked in this browser's settings.");
  assert.equal(button.hidden, true);
});

test("a permission prompt dismissed: push stays off and the button stays for another try", async () => {
  const { control, calls, button, note } = setup({ browser: { answer: "default" } });
  await control.start();
  button.click();
  await settle();
  assert.equal(calls.subscribe.length, 0);
  assert.equal(control.state, "off");
  assert.equal(note.textContent, PUSH_TEXT.notGranted);
  assert.equal(button.hidden, false);
  assert.equal(button.textContent, "Enable push on this device");
});

test("a permission denied before the page loaded: blocked on load, never asked", async () => {
  const { control, calls, button, note } = setup({ browser: { permission: "denied" } });
  assert.equal(await control.start(), "blocked");
  assert.equal(calls.requests, 0);
  assert.equal(button.hidden, true);
  assert.equal(note.textContent, "Push is blocked in this browser's settings.");
});

test("a subscription this person made here is shown on at load and posted again for this session", async () => {
  const existing = fakeSubscription("https://push.example.com/send/old");
  const { control, calls, button, note, site } = setup({ browser: { permission: "granted", existing }, owner: "7" });
  assert.equal(await control.start(), "on");
  assert.equal(calls.requests, 0);
  assert.equal(calls.subscribe.length, 0);
  assert.deepEqual(site.posts().map((r) => [r.path, r.fields.endpoint]), [["/account/push", "https://push.example.com/send/old"]]);
  assert.equal(note.textContent, "Push is on for this device.");
  assert.equal(button.textContent, "Turn off push on this device");
});

test("a subscription someone else made in this browser is not taken over at load", async () => {
  const existing = fakeSubscription("https://push.example.com/send/theirs");
  const { control, site, button } = setup({ browser: { permission: "granted", existing }, owner: "99" });
  assert.equal(await control.start(), "off");
  assert.deepEqual(site.requests, []);
  assert.equal(button.textContent, "Enable push on this device");
});

test("a subscription made with an older key of the site is replaced at load", async () => {
  const existing = fakeSubscription("https://push.example.com/send/stale", OLD_KEY);
  const { control, calls, site } = setup({ browser: { permission: "granted", existing }, owner: "7" });
  assert.equal(await control.start(), "on");
  assert.equal(existing.unsubscribed, true);
  assert.equal(calls.subscribe.length, 1);
  assert.deepEqual(site.posts().map((r) => [r.path, r.fields.endpoint]), [
    ["/account/push/remove", "https://push.example.com/send/stale"],
    ["/account/push", "https://push.example.com/send/1"],
  ]);
});

test("turning off unsubscribes the browser and tells the site which endpoint to forget", async () => {
  const { control, button, note, site, pushManager, win } = setup({ browser: { permission: "granted" } });
  await control.start();
  button.click();
  await settle();
  const subscription = pushManager.current;
  button.click();
  await settle();
  assert.equal(subscription.unsubscribed, true);
  assert.deepEqual(site.posts().at(-1), {
    method: "POST", path: "/account/push/remove", credentials: "same-origin",
    fields: { csrf_token: CSRF, endpoint: subscription.endpoint },
  });
  assert.equal(control.state, "off");
  assert.equal(note.textContent, "Push is off for this device.");
  assert.equal(button.textContent, "Enable push on this device");
  assert.equal(win.localStorage.getItem(OWNER_KEY), null);
});

test("a subscription the site refuses is an error in words, and push stays off", async () => {
  const { control, button, note } = setup({ site: { saveStatus: 400, saveError: "the endpoint must be an https:// URL" } });
  await control.start();
  button.click();
  await settle();
  assert.equal(control.state, "off");
  assert.equal(note.textContent, "Push could not be turned on: the site said: the endpoint must be an https:// URL.");
  assert.equal(button.textContent, "Enable push on this device");
});

test("a push service that does not answer is an error in words", async () => {
  const error = Object.assign(new Error("Registration failed - push service error"), { name: "AbortError" });
  const { control, button, note, site } = setup({ browser: { subscribeError: error } });
  await control.start();
  button.click();
  await settle();
  assert.equal(control.state, "off");
  assert.equal(note.textContent, "Push could not be turned on: the browser's push service did not answer; try again later.");
  assert.deepEqual(site.posts(), []);
});

test("signed out in the meantime: the note says to log in again", async () => {
  const { control, button, note, calls } = setup({ site: { keyStatus: 401 } });
  await control.start();
  button.click();
  await settle();
  assert.equal(calls.subscribe.length, 0);
  assert.equal(note.textContent, "Push could not be turned on: you are signed out; log in again.");
});

test("a worker that never becomes active ends in an error, not a button stuck on 'Turning push on…'", async () => {
  const { control, button, note, timers } = setup({ browser: { readyNever: true } });
  await control.start();
  button.click();
  await settle();
  assert.equal(note.textContent, "Turning push on…");
  assert.equal(timers.length, 1);
  assert.equal(timers[0].ms, 10_000);
  timers[0].fn();
  await settle();
  assert.equal(control.state, "off");
  assert.equal(note.textContent, "Push could not be turned on: the site's service worker did not start.");
});

test("clicks while it is working do nothing more", async () => {
  const { control, button, calls } = setup();
  await control.start();
  button.click();
  button.click();
  button.click();
  await settle();
  assert.equal(calls.requests, 1);
  assert.equal(calls.subscribe.length, 1);
});

test("subscriptionFields takes the keys from toJSON", () => {
  assert.deepEqual(subscriptionFields(fakeSubscription("https://push.example.com/x")), {
    endpoint: "https://push.example.com/x", p256dh: "BP256dh-key", auth: "auth-secret",
  });
});
