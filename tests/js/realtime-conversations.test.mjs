// The connection's side of conversations: message frames to onMessage (never the bell),
// ephemeral frames that never enter the outbox, refusals naming a client_msg_id, typing and
// presence on every tab, and one view set per socket, the union of the visible tabs'.
import test from "node:test";
import assert from "node:assert/strict";

import { dispatchFrame, MAX_VIEWS } from "../../static/js/realtime.js";
import { RealtimeSocket } from "../../static/js/socket.js";
import { LiveHeader } from "../../static/js/ui/header.js";
import { FakeClock, FakeEventTarget, MemoryStorage, makeWebSocketClass, settle } from "./fakes.mjs";
import { USER, makeTabsEnv, openTabs } from "./tabs.mjs";
import { headerPage } from "./dom.mjs";

function makeEnv() {
  return makeTabsEnv({
    callbacks: (log) => {
      Object.assign(log, { message: [], notification: [], control: [] });
      return {
        onMessage: (data, frame) => log.message.push({ data, id: frame.id }),
        onNotification: (_data, frame) => log.notification.push(frame.id),
        onControl: (frame) => log.control.push(frame),
      };
    },
  });
}

const messageFrame = (id, seq, convSeq, extra = {}) => ({
  id, seq, type: "message", key: "conversation:42", unread: 3,
  data: { type: "message", booking_id: 42, message: { id: 300 + convSeq, seq: convSeq, sender_id: 5, sender_name: "Pat", body: "hi", created_at: "2026-12-04T10:00:00Z" }, unread: 1, unread_messages: 4 },
  created_at: "2026-12-04T10:00:00Z", ...extra,
});
const viewsSent = (ws) => ws.frames.filter((f) => f.type === "view").map((f) => [...f.booking_ids].sort((a, b) => a - b));

// --- message frames ----------------------------------------------------------------------------

test("dispatchFrame sends envelope 'message' to onMessage, never to onNotification", () => {
  const calls = [];
  const callbacks = {
    onBookingUpdate: () => calls.push("booking"),
    onPaymentUpdate: () => calls.push("payment"),
    onNotification: () => calls.push("notification"),
    onMessage: (data, frame) => calls.push(["message", data.type, frame.id]),
  };
  dispatchFrame(messageFrame(9, 3, 1), callbacks);
  dispatchFrame({ id: 10, seq: 4, type: "message", data: { type: "message_read", booking_id: 42 } }, callbacks);
  assert.deepEqual(calls, [["message", "message", 9], ["message", "message_read", 10]]);
  // A page without a conversation passes no onMessage: nothing breaks, the bell hears nothing.
  dispatchFrame(messageFrame(11, 5, 2), { onNotification: () => calls.push("notification") });
  assert.equal(calls.length, 2);
});

test("message frames reach every tab's onMessage once, deduped by seq like notifications", async () => {
  const env = makeEnv();
  const tabs = await openTabs(env, 2);
  env.ws.welcome();
  env.ws.deliver(messageFrame(20, 1, 1)).deliver(messageFrame(21, 2, 2)).deliver(messageFrame(21, 2, 2));
  await settle();
  for (const tab of tabs) {
    assert.deepEqual(tab.log.message.map((m) => m.id), [20, 21]);
    assert.deepEqual(tab.log.notification, []);
  }
  assert.equal(env.browser.localStorage.getItem(`rt-last-id:${USER}`), "21:2", "the position moves with them");
});

// --- ephemeral frames --------------------------------------------------------------------------

test("sendEphemeral writes on an open socket and never enters the outbox; offline it is dropped, not resent", () => {
  const clock = new FakeClock();
  const WS = makeWebSocketClass();
  const storage = new MemoryStorage();
  const socket = new RealtimeSocket({ WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: () => 0, storage, warn: () => {} });
  socket.start();
  const first = WS.instances.at(-1);
  first.open();
  assert.equal(socket.sendEphemeral({ type: "typing", booking_id: 42 }), false, "not welcomed yet");
  first.welcome();
  assert.equal(socket.sendEphemeral({ type: "typing", booking_id: 42 }), true);
  assert.deepEqual(first.frames, [{ type: "typing", booking_id: 42 }], "as is: no client_msg_id");
  assert.equal(socket.outbox.size, 0);
  assert.equal(storage.getItem("rt-outbox"), null, "nothing stored");

  first.serverClose(1006);
  assert.equal(socket.sendEphemeral({ type: "typing", booking_id: 42 }), false);
  socket.offline();
  assert.equal(socket.sendEphemeral({ type: "view", booking_ids: [42] }), false);
  socket.wake();
  const second = WS.instances.at(-1);
  second.welcome();
  clock.advance(60000);
  assert.deepEqual(second.frames.filter((f) => f.type === "typing"), [], "never resent");
  assert.equal(socket.outbox.size, 0);
});

test("a follower's sendEphemeral goes out on the leader's socket, and nowhere when it is offline", async () => {
  const env = makeEnv();
  const [leader, follower] = await openTabs(env, 2);
  env.ws.welcome();
  follower.rt.sendEphemeral({ type: "typing", booking_id: 42 });
  await settle();
  assert.deepEqual(env.ws.frames.filter((f) => f.type === "typing"), [{ type: "typing", booking_id: 42 }]);
  assert.equal(leader.rt.tab.socket.outbox.size, 0);
  assert.equal(follower.rt.tab.pending.size, 0, "the follower keeps nothing to hand over");

  leader.win.dispatch("offline");
  follower.rt.sendEphemeral({ type: "typing", booking_id: 42 });
  await settle();
  leader.win.dispatch("online");
  env.ws.welcome();
  await settle();
  assert.deepEqual(env.ws.frames.filter((f) => f.type === "typing"), []);
});

// --- refusals ----------------------------------------------------------------------------------

test("an error naming a client_msg_id removes that message from the outbox for good and reaches onControl", () => {
  const clock = new FakeClock();
  const WS = makeWebSocketClass();
  const storage = new MemoryStorage();
  const socket = new RealtimeSocket({ WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: () => 0, storage, warn: () => {} });
  const controls = [];
  socket.addEventListener("control", (event) => controls.push(event.detail));
  socket.start();
  WS.instances.at(-1).welcome();
  const refused = socket.sendMessage({ type: "send_message", booking_id: 42, body: "x", client_msg_id: "m-1" });
  const kept = socket.sendMessage({ type: "send_message", booking_id: 42, body: "y", client_msg_id: "m-2" });
  const error = { type: "error", id: null, code: "message_too_long", message: "A message is at most 4,000 characters.", client_msg_id: refused };
  WS.instances.at(-1).deliver(error);
  assert.deepEqual(socket.outbox.pending().map((m) => m.client_msg_id), [kept]);
  assert.ok(!storage.getItem("rt-outbox").includes("m-1"), "gone from storage too");
  assert.deepEqual(controls.at(-1), error);

  // Reconnecting resends only the one still waiting for its ack.
  WS.instances.at(-1).serverClose(1006);
  clock.advance(1000);
  const next = WS.instances.at(-1);
  next.welcome();
  clock.advance(1000);
  assert.deepEqual(next.frames.map((f) => f.client_msg_id), ["m-2"]);
});

test("a refusal of a follower's message clears it there too: the next leader does not send it again", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  const id = c.rt.sendMessage({ type: "send_message", booking_id: 42, body: "x" });
  await settle();
  env.ws.deliver({ type: "error", id: null, code: "conversation_closed", message: "closed", client_msg_id: id });
  await settle();
  for (const tab of [a, b, c]) assert.equal(tab.log.control.at(-1).client_msg_id, id, "every tab hears it");
  assert.equal(c.rt.tab.pending.size, 0);
  a.rt.close();
  await settle();
  env.ws.welcome();
  await settle();
  assert.equal(b.rt.isLeader, true);
  assert.deepEqual(env.ws.frames.filter((f) => f.client_msg_id === id), []);
});

test("typing and presence control frames reach onControl on every tab", async () => {
  const env = makeEnv();
  const tabs = await openTabs(env, 3);
  env.ws.welcome();
  env.ws.deliver({ type: "typing", id: null, booking_id: 42, user_id: 5, name: "Pat" });
  env.ws.deliver({ type: "presence", id: null, user_id: 5, online: false, last_seen: "2026-12-04T09:55:00Z" });
  await settle();
  for (const tab of tabs) {
    assert.deepEqual(tab.log.control.map((f) => f.type), ["welcome", "typing", "presence"]);
    assert.deepEqual(tab.log.message, []);
  }
});

// --- views -------------------------------------------------------------------------------------

test("views: the leader sends the union of the visible tabs' conversations, on change and after every welcome", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  a.rt.setViewing([42]); // before the socket is up: sent after the welcome
  await settle();
  assert.deepEqual(viewsSent(env.ws), []);
  env.ws.welcome();
  assert.deepEqual(viewsSent(env.ws), [[42]]);

  b.rt.setViewing([43]);
  c.rt.setViewing([42]); // already in the union
  await settle();
  assert.deepEqual(viewsSent(env.ws), [[42], [42, 43]]);

  b.win.document.setVisibility("hidden"); // b's thread is not being looked at
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [42]);
  b.win.document.setVisibility("visible");
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [42, 43]);

  b.rt.close(); // a closed tab's views go
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [42]);

  a.rt.setViewing([]);
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [42], "c still shows 42");
  c.rt.setViewing([]);
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [], "nobody looks: an empty set clears the server's");
  const count = viewsSent(env.ws).length;
  c.rt.setViewing([]);
  await settle();
  assert.equal(viewsSent(env.ws).length, count, "no change, no frame");

  // A new socket starts with no views: the welcome brings them back.
  c.rt.setViewing([44]);
  await settle();
  env.ws.serverClose(1006);
  env.clock.advance(1000);
  env.ws.welcome();
  await settle();
  assert.deepEqual(viewsSent(env.ws), [[44]]);
});

test("views: a new leader learns the other tabs' views; never more than ten ids; junk dropped", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  c.rt.setViewing([50]);
  await settle();
  a.rt.close();
  await settle();
  assert.equal(b.rt.isLeader, true);
  env.ws.welcome();
  await settle();
  assert.deepEqual(viewsSent(env.ws).at(-1), [50]);

  b.rt.setViewing([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "x", -1, 0, 2.5, 3]);
  await settle();
  const sent = env.ws.frames.filter((f) => f.type === "view").at(-1).booking_ids;
  assert.equal(sent.length, MAX_VIEWS);
  assert.deepEqual(sent, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "this tab's own first");
});

test("views: a hidden tab shows nothing, whatever its page says", async () => {
  const env = makeEnv();
  const [a] = await openTabs(env, 1, { visibilityState: "hidden" });
  env.ws.welcome();
  a.rt.setViewing([42]);
  await settle();
  assert.deepEqual(viewsSent(env.ws), []);
  a.win.document.setVisibility("visible");
  assert.deepEqual(viewsSent(env.ws), [[42]]);
});

// --- the header --------------------------------------------------------------------------------

function setupHeader({ visibilityState = "visible", allHidden = false } = {}) {
  const clock = new FakeClock();
  const page = headerPage({ visibilityState });
  const bookings = page.doc.build(["a", { href: "/bookings" }, "Bookings ", ["span", { class: "badge", "data-unread-messages": true, hidden: true }, "0"]]);
  page.doc.body.append(bookings);
  const win = new FakeEventTarget();
  win.setTimeout = clock.setTimeout;
  win.clearTimeout = clock.clearTimeout;
  const desktop = [];
  win.isSecureContext = true;
  win.Notification = class {
    static permission = "granted";
    constructor(title, options) { desktop.push({ title, ...options }); }
  };
  const header = new LiveHeader(page.root, { doc: page.doc, win });
  header.attach({ sendMessage: () => "id", isLeader: true, tab: { allTabsHidden: () => allHidden, viewUnion: () => [] } });
  return { header, desktop, ...page, messagesBadge: bookings.querySelector("[data-unread-messages]") };
}

const newMessage = (id, extra = {}) => ({
  id, type: "notification", key: "conversation:42", unread: id,
  data: { type: "new_message", booking_id: 42, service_name: "House Cleaning", sender_name: "Pat", preview: "hi", muted: false,
    message: "Pat sent you a message about House Cleaning", ...extra },
  created_at: "2026-12-04T10:00:00Z",
});
const toastIds = (region) => region.querySelectorAll(".toast[data-notification-id]").map((t) => t.dataset.notificationId);

test("header: welcome and message frames set the unread-messages badge; message frames never reach the dropdown", () => {
  const env = setupHeader();
  env.header.onControl({ type: "welcome", id: null, user_id: 7, unread: 0, unread_messages: 3, last_id: 0 });
  assert.equal(env.messagesBadge.hidden, false);
  assert.equal(env.messagesBadge.textContent, "3 unread messages");
  env.header.onMessage(messageFrame(20, 1, 1, { unread: 2 }));
  assert.equal(env.messagesBadge.textContent, "4 unread messages");
  assert.equal(env.root.querySelector("[data-rt-badge]").textContent, "2", "the frame's notification count");
  assert.equal(env.root.querySelectorAll("[data-rt-list] li").length, 0);
  assert.equal(env.toasts.children.length, 0);
  env.header.onMessage({ ...messageFrame(21, 2, 2), data: { type: "message_read", booking_id: 42, reader_id: 7, read_seq: 1, unread: 0, unread_messages: 0 } });
  assert.equal(env.messagesBadge.hidden, true);
});

test("header: a new_message pops up unless muted or its conversation is on screen here", () => {
  const env = setupHeader();
  env.header.onFrame(newMessage(1, { muted: true }));
  assert.deepEqual(toastIds(env.toasts), [], "muted: no toast");
  env.header.showConversation(42);
  env.header.onFrame(newMessage(2));
  assert.deepEqual(toastIds(env.toasts), [], "reading it right now");
  env.header.onFrame(newMessage(3, { booking_id: 43 }));
  assert.deepEqual(toastIds(env.toasts), ["3"], "another conversation");
  assert.equal(env.toasts.querySelector("strong").textContent, "New message");
  assert.equal(env.root.querySelectorAll("[data-rt-list] li").length, 3, "all three in the dropdown");

  const hidden = setupHeader({ visibilityState: "hidden", allHidden: true });
  hidden.header.showConversation(42);
  hidden.header.onFrame(newMessage(4)); // shown in a hidden tab: not on screen
  hidden.header.onFrame(newMessage(5, { muted: true }));
  assert.deepEqual(hidden.desktop.map((n) => n.body), ["Pat sent you a message about House Cleaning"]);
  assert.equal(hidden.desktop[0].tag, "conversation:42");
});
