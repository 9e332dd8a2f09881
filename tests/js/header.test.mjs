// The header under a burst: at most three toasts and one "and N more", seen marks batched into
// a few mark_seen frames (at most 500 ids each) that stay under the server's rate limit, and a
// calm notice when the server skipped part of a replay (replay_truncated).
import test from "node:test";
import assert from "node:assert/strict";

import { LiveHeader } from "../../static/js/ui/header.js";
import { SeenBatcher } from "../../static/js/ui/seen.js";
import { ToastStack } from "../../static/js/ui/toasts.js";
import { RealtimeSocket } from "../../static/js/socket.js";
import { FakeClock, FakeEventTarget, MemoryStorage, makeWebSocketClass, serverRefusals } from "./fakes.mjs";
import { headerPage } from "./dom.mjs";

const notification = (id, extra = {}) => ({
  id, type: "notification", key: null, unread: id, data: { message: `Notice #${id}` },
  created_at: "2026-11-25T19:31:15Z", ...extra,
});

const parts = (root) => ({ badge: root.querySelector("[data-rt-badge]"), bell: root.querySelector("[data-rt-bell]") });

function fakeWindow(clock) {
  const win = new FakeEventTarget();
  win.setTimeout = clock.setTimeout;
  win.clearTimeout = clock.clearTimeout;
  return win;
}

// A header on a fake page whose messages are only recorded.
function setupHeader({ visibilityState = "visible", prefs = null, ...options } = {}) {
  const clock = new FakeClock();
  const page = headerPage({ visibilityState, prefs });
  const win = fakeWindow(clock);
  const header = new LiveHeader(page.root, { doc: page.doc, win, ...options });
  const sent = [];
  header.attach({
    sendMessage: (message) => { sent.push(message); return `id-${sent.length}`; },
    isLeader: true,
    tab: { allTabsHidden: () => false },
  });
  return { header, clock, win, sent, ...page, ...parts(page.root) };
}

// A header wired to a real RealtimeSocket on a fake WebSocket, as app.js and realtime.js do.
function setupLive(options = {}) {
  const clock = new FakeClock(1_000_000);
  const Base = makeWebSocketClass();
  class Timed extends Base {
    send(data) {
      super.send(data);
      (this.sentAt ??= []).push(clock.now());
    }
  }
  const storage = new MemoryStorage();
  const socket = new RealtimeSocket({
    WebSocket: Timed, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now,
    random: () => 0, storage, warn: () => {}, ...options,
  });
  const page = headerPage();
  const header = new LiveHeader(page.root, { doc: page.doc, win: fakeWindow(clock) });
  header.attach({ sendMessage: (m) => socket.sendMessage(m), isLeader: true, tab: { allTabsHidden: () => false } });
  socket.addEventListener("frame", (event) => header.onFrame(event.detail));
  socket.addEventListener("control", (event) => header.onControl(event.detail));
  socket.start();
  const ws = Timed.instances.at(-1);
  // The server: acks every client message, as app/realtime/ws.py does.
  const realSend = ws.send.bind(ws);
  ws.send = (data) => {
    realSend(data);
    const frame = JSON.parse(data);
    if (frame.client_msg_id) queueMicrotask(() => ws.deliver({ type: "ack", id: null, client_msg_id: frame.client_msg_id }));
  };
  ws.welcome();
  return { socket, header, clock, storage, ws, ...page, ...parts(page.root) };
}

const toastsOf = (region) => region.querySelectorAll(".toast[data-notification-id]");
const summaryOf = (region) => region.querySelector("[data-rt-summary]");
const seenFrames = (ws) => ws.frames.filter((f) => f.type === "mark_seen");

// --- toasts ------------------------------------------------------------------------------------

test("120 notifications at once: three toasts and one summary 'and 117 more' linking to the inbox", () => {
  const env = setupHeader();
  for (let id = 1; id <= 120; id += 1) env.header.onFrame(notification(id));
  const toasts = toastsOf(env.toasts);
  assert.deepEqual(toasts.map((t) => t.dataset.notificationId), ["1", "2", "3"]);
  const summary = summaryOf(env.toasts);
  assert.ok(summary, "a summary toast");
  assert.equal(summary.querySelector("a").textContent, "and 117 more");
  assert.equal(summary.querySelector("a").href, "/notifications");
  assert.equal(summary.querySelector("button.toast-close").getAttribute("aria-label"), "Dismiss");
  assert.equal(env.toasts.children.length, 4, "nothing else in the region");
  assert.equal(env.toasts.getAttribute("aria-live"), "polite");
  assert.equal(env.badge.textContent, "120");
});

test("the summary keeps counting while more arrive, and stays while they keep coming", () => {
  const env = setupHeader();
  for (let id = 1; id <= 4; id += 1) env.header.onFrame(notification(id));
  assert.equal(summaryOf(env.toasts).textContent, "and 1 more×");
  env.clock.advance(5000);
  env.header.onFrame(notification(5));
  assert.equal(summaryOf(env.toasts).querySelector("a").textContent, "and 2 more");
  env.clock.advance(1000); // the three toasts go (6 s), the summary was updated 1 s ago
  assert.equal(toastsOf(env.toasts).length, 0);
  assert.ok(summaryOf(env.toasts));
  env.header.onFrame(notification(6));
  assert.equal(toastsOf(env.toasts).length, 0, "while the summary shows, newcomers join it");
  assert.equal(summaryOf(env.toasts).querySelector("a").textContent, "and 3 more");
  env.clock.advance(6000);
  assert.equal(summaryOf(env.toasts), null, "it goes 6 s after its last update");
  env.header.onFrame(notification(7));
  assert.deepEqual(toastsOf(env.toasts).map((t) => t.dataset.notificationId), ["7"], "a calm page toasts again");
});

test("dismissing a toast makes room; large counts are written with separators", () => {
  const clock = new FakeClock();
  const { doc, toasts: region } = headerPage();
  const stack = new ToastStack(region, { doc, win: fakeWindow(clock), max: 2 });
  assert.equal(stack.show(notification(1)), "toast");
  assert.equal(stack.show(notification(2)), "toast");
  toastsOf(region)[0].querySelector("button").click();
  assert.equal(stack.show(notification(3)), "toast", "room again");
  for (let id = 4; id <= 1237; id += 1) assert.equal(stack.show(notification(id)), "summary");
  assert.equal(summaryOf(region).querySelector("a").textContent, "and 1,234 more");
  summaryOf(region).querySelector("button").click();
  assert.equal(summaryOf(region), null);
  assert.equal(stack.show(notification(1238)), "summary", "two toasts still up: a new summary");
  assert.equal(summaryOf(region).querySelector("a").textContent, "and 1 more");
});

test("toast text is the notification's text, never parsed as HTML", () => {
  const env = setupHeader();
  env.header.onFrame(notification(1, { data: { type: "new_booking", message: "<img src=x onerror=alert(1)>" } }));
  const toast = toastsOf(env.toasts)[0];
  assert.equal(toast.querySelector("strong").textContent, "New booking");
  assert.equal(toast.querySelector("a").textContent, "<img src=x onerror=alert(1)>");
  assert.equal(toast.querySelector("img"), null);
});

test("a hidden page shows no toast and marks nothing seen", () => {
  const env = setupHeader({ visibilityState: "hidden" });
  for (let id = 1; id <= 10; id += 1) env.header.onFrame(notification(id));
  env.clock.advance(5000);
  assert.equal(env.toasts.children.length, 0);
  assert.deepEqual(env.sent, []);
});

// --- seen marks, batched -----------------------------------------------------------------

test("120 toasted notifications are marked seen in one mark_seen, not 120", () => {
  const env = setupHeader();
  for (let id = 1; id <= 120; id += 1) env.header.onFrame(notification(id));
  assert.deepEqual(env.sent, [], "collected first");
  env.clock.advance(300);
  assert.deepEqual(env.sent, [{ type: "mark_seen", ids: Array.from({ length: 120 }, (_, i) => i + 1) }]);
});

test("1,234 at once go out as mark_seen frames of at most 500 ids", () => {
  const env = setupHeader();
  for (let id = 1; id <= 1234; id += 1) env.header.onFrame(notification(id));
  env.clock.advance(300);
  assert.deepEqual(env.sent.map((m) => m.ids.length), [500, 500, 234]);
  assert.deepEqual(env.sent.flatMap((m) => m.ids), Array.from({ length: 1234 }, (_, i) => i + 1));
});

test("muted events are not toasted and not marked seen; critical ones always are", () => {
  const env = setupHeader({ prefs: { new_booking: { in_app: false }, payment_failed: { in_app: false } } });
  env.header.onFrame(notification(1, { data: { type: "new_booking" } }));
  env.header.onFrame(notification(2, { data: { type: "payment_failed" } }));
  env.clock.advance(300);
  assert.deepEqual(toastsOf(env.toasts).map((t) => t.dataset.notificationId), ["2"]);
  assert.deepEqual(env.sent, [{ type: "mark_seen", ids: [2] }]);
});

test("opening the dropdown marks its unread items seen through the same batch, each id once", () => {
  const env = setupHeader({ visibilityState: "hidden" });
  for (let id = 1; id <= 5; id += 1) env.header.onFrame(notification(id));
  env.bell.click();
  assert.equal(env.bell.getAttribute("aria-expanded"), "true");
  env.bell.click();
  env.bell.click();
  env.clock.advance(300);
  assert.deepEqual(env.sent, [{ type: "mark_seen", ids: [1, 2, 3, 4, 5] }], "three opens, one frame");
  env.bell.click();
  env.bell.click();
  env.clock.advance(1000);
  assert.equal(env.sent.length, 1, "nothing new to mark");
});

test("the seen batch goes out when the page is hidden away (pagehide), not lost", () => {
  const env = setupHeader();
  env.header.onFrame(notification(1));
  env.win.dispatch("pagehide");
  assert.deepEqual(env.sent, [{ type: "mark_seen", ids: [1] }]);
});

test("SeenBatcher ignores ids that are not positive integers", () => {
  const sent = [];
  const clock = new FakeClock();
  const batcher = new SeenBatcher((ids) => sent.push(ids), clock);
  batcher.add([0, -1, 1.5, "2", null, 3]);
  clock.advance(1000);
  assert.deepEqual(sent, [[3]]);
});

// --- with the real socket ----------------------------------------------------------------------

test("a replay of 120 through the socket: a handful of mark_seen, the outbox empties, nothing refused", async () => {
  const env = setupLive();
  for (let id = 1; id <= 120; id += 1) env.ws.deliver(notification(id));
  for (let t = 0; t < 100; t += 1) {
    env.clock.advance(50);
    await Promise.resolve();
  }
  const seen = seenFrames(env.ws);
  assert.ok(seen.length >= 1 && seen.length <= 3, `${seen.length} mark_seen frames`);
  assert.ok(seen.every((f) => f.ids.length <= 500));
  assert.deepEqual([...new Set(seen.flatMap((f) => f.ids))].sort((a, b) => a - b), Array.from({ length: 120 }, (_, i) => i + 1));
  assert.equal(env.socket.outbox.size, 0, "every mark_seen acknowledged");
  assert.equal(env.storage.getItem("rt-outbox"), "[]");
  assert.equal(serverRefusals(env.ws.sentAt), 0);
  assert.equal(toastsOf(env.toasts).length, 3);
  assert.equal(summaryOf(env.toasts).querySelector("a").textContent, "and 117 more");
});

test("300 live notifications within a second: every frame the client writes is within the server's limit", async () => {
  const env = setupLive();
  for (let id = 1; id <= 300; id += 1) {
    env.ws.deliver(notification(id));
    env.clock.advance(3);
    await Promise.resolve();
  }
  for (let t = 0; t < 100; t += 1) {
    env.clock.advance(50);
    await Promise.resolve();
  }
  assert.equal(serverRefusals(env.ws.sentAt), 0, `${env.ws.sent.length} frames written`);
  assert.ok(env.ws.sent.length < 30, `${env.ws.sent.length} frames for 300 notifications`);
  assert.deepEqual([...new Set(seenFrames(env.ws).flatMap((f) => f.ids))].length, 300);
  assert.equal(env.socket.outbox.size, 0);
  assert.equal(env.badge.textContent, "300");
  assert.equal(env.socket.status, "open");
});

// --- replay_truncated --------------------------------------------------------------------------

test("replay_truncated shows one calm notice with a link to the inbox, and no toast per skipped item", () => {
  const env = setupHeader();
  env.header.onControl({ type: "replay_truncated", id: null, skipped: 19000, last_id: 12345 });
  const notices = env.toasts.querySelectorAll("[data-rt-notice]");
  assert.equal(notices.length, 1);
  assert.equal(notices[0].querySelector("a").textContent, "19,000 older notifications are in your inbox");
  assert.equal(notices[0].querySelector("a").href, "/notifications");
  assert.equal(toastsOf(env.toasts).length, 0);
  assert.deepEqual(env.sent, []);
  // The replay of the newest that follows: capped as usual, the notice does not count.
  for (let id = 12346; id <= 12355; id += 1) env.header.onFrame(notification(id));
  assert.equal(toastsOf(env.toasts).length, 3);
  assert.equal(summaryOf(env.toasts).querySelector("a").textContent, "and 7 more");
  // Another truncated replay (a reconnect) updates the notice on screen.
  env.header.onControl({ type: "replay_truncated", id: null, skipped: 1, last_id: 12400 });
  assert.equal(env.toasts.querySelectorAll("[data-rt-notice]").length, 1);
  assert.equal(env.toasts.querySelector("[data-rt-notice] a").textContent, "1 older notification is in your inbox");
});

test("replay_truncated through the socket reaches the header as a control frame", async () => {
  const env = setupLive();
  env.ws.deliver({ type: "replay_truncated", id: null, skipped: 19000, last_id: 12345 });
  assert.equal(env.socket.status, "open");
  assert.equal(env.toasts.querySelector("[data-rt-notice] a").textContent, "19,000 older notifications are in your inbox");
});

// --- the dropdown's keyboard ---------------------------------------------------------------------

test("arrow keys skip hidden controls (the desktop and push buttons when not offered)", () => {
  const { header, root, doc } = setupHeader();
  const dropdown = root.querySelector("[data-rt-dropdown]");
  const push = doc.build(["button", { type: "button", "data-push-enable": true, hidden: true }, "Enable push on this device"]);
  dropdown.append(push);
  header.onFrame(notification(1));
  header.toggle(true);
  const [markAll, link] = header.items();
  assert.equal(header.items().length, 2, "the hidden button is not an item");
  assert.equal(doc.activeElement, markAll);
  const key = (name) => header.onKey({ key: name, preventDefault() {} });
  key("ArrowDown");
  assert.equal(doc.activeElement, link);
  key("ArrowDown");
  assert.equal(doc.activeElement, markAll, "wraps past the hidden button");
  push.hidden = false;
  key("ArrowUp");
  assert.equal(doc.activeElement, push, "shown, it is reachable");
});

// --- the status line: the countdown, "Retry now", signing out --------------------------------

test("reconnecting counts down each second, and Retry now asks the connection to try at once", () => {
  const clock = new FakeClock(5_000);
  const page = headerPage();
  const header = new LiveHeader(page.root, { doc: page.doc, win: fakeWindow(clock), now: clock.now });
  let retries = 0;
  header.attach({ sendMessage: () => "id", retryNow: () => { retries += 1; }, isLeader: true, tab: { allTabsHidden: () => false } });
  const status = page.root.querySelector("[data-rt-status]");
  header.setStatus({ status: "reconnecting", retryIn: 3 });
  assert.equal(status.textContent, "Reconnecting in 3s…");
  clock.advance(1000);
  assert.equal(status.textContent, "Reconnecting in 2s…");
  clock.advance(1000);
  assert.equal(status.textContent, "Reconnecting in 1s…");
  clock.advance(1000);
  assert.equal(status.textContent, "Reconnecting…");
  const retry = page.root.querySelector("[data-rt-retry]");
  assert.ok(retry && !retry.hidden, "a Retry now button while waiting");
  retry.click();
  assert.equal(retries, 1);
  header.setStatus({ status: "open", retryIn: null });
  assert.equal(status.textContent, "Live");
  assert.equal(retry.hidden, true);
  clock.advance(5000); // no countdown left running over the new status
  assert.equal(status.textContent, "Live");
});

test("signed out, the header stops showing whose page it was", () => {
  const { header, doc } = setupHeader();
  const name = doc.build(["li", { "data-rt-account": true }, "Casey Client"]);
  const logout = doc.build(["li", { "data-rt-account": true }, "Log out"]);
  doc.body.append(name, logout);
  header.setStatus({ status: "signed-out", retryIn: null });
  assert.equal(name.hidden, true);
  assert.equal(logout.hidden, true);
});

// --- the dropdown: focus leaving it closes it ---------------------------------------------------

test("Tab past the dropdown's last item, or Shift+Tab before the bell, closes it", () => {
  const { header, doc, root, bell } = setupHeader();
  const dropdown = root.querySelector("[data-rt-dropdown]");
  const outsideBefore = doc.build(["a", { href: "/bookings" }, "Bookings"]);
  const outsideAfter = doc.build(["a", { href: "/account" }, "Account"]);
  doc.body.prepend(outsideBefore);
  doc.body.append(outsideAfter);
  header.onFrame(notification(1));
  const item = root.querySelector("[data-rt-list] a");

  bell.click();
  assert.equal(dropdown.hidden, false);
  assert.equal(bell.getAttribute("aria-expanded"), "true");
  // Moving within the bell and the dropdown keeps it open.
  item.dispatch("focusout", { relatedTarget: root.querySelector("[data-rt-mark-all]") });
  bell.dispatch("focusout", { relatedTarget: item });
  assert.equal(dropdown.hidden, false);
  // Focus left the window (no relatedTarget): still open for when the person comes back.
  item.dispatch("focusout", { relatedTarget: null });
  assert.equal(dropdown.hidden, false);
  // Tab past the last item.
  item.dispatch("focusout", { relatedTarget: outsideAfter });
  assert.equal(dropdown.hidden, true);
  assert.equal(bell.getAttribute("aria-expanded"), "false");

  bell.click();
  assert.equal(dropdown.hidden, false);
  // Shift+Tab from the bell to what comes before it.
  bell.dispatch("focusout", { relatedTarget: outsideBefore });
  assert.equal(dropdown.hidden, true);
  assert.equal(bell.getAttribute("aria-expanded"), "false");
});

test("Escape still closes the dropdown and puts focus back on the bell", () => {
  const { header, doc, root, bell } = setupHeader();
  header.onFrame(notification(1));
  bell.click();
  const dropdown = root.querySelector("[data-rt-dropdown]");
  dropdown.dispatch("keydown", { key: "Escape" });
  assert.equal(dropdown.hidden, true);
  assert.equal(doc.activeElement, bell);
  assert.equal(bell.getAttribute("aria-expanded"), "false");
});

test("an item that arrived live opens through /notifications/<id>, which marks it read", () => {
  const { header, root } = setupHeader();
  header.onFrame(notification(42));
  assert.equal(root.querySelector('[data-notification-id="42"] a').getAttribute("href"), "/notifications/42");
});
