import test from "node:test";
import assert from "node:assert/strict";

import { dispatchFrame } from "../../static/js/realtime.js";
import { MemoryStorage, settle } from "./fakes.mjs";
import { USER, makeTabsEnv, openTabs } from "./tabs.mjs";

function makeEnv({ locks = true, broadcastChannel = true, random = () => 0 } = {}) {
  return makeTabsEnv({
    locks,
    broadcastChannel,
    random,
    callbacks: (log) => {
      Object.assign(log, { booking: [], payment: [], notification: [], status: [], control: [], leader: [], data: [] });
      return {
        onBookingUpdate: (data, frame) => { log.booking.push(frame.id); log.data.push(data); },
        onPaymentUpdate: (data, frame) => { log.payment.push(frame.id); log.data.push(data); },
        onNotification: (data, frame) => { log.notification.push(frame.id); log.data.push(data); },
        onStatusChange: (detail) => log.status.push(detail),
        onControl: (frame) => log.control.push(frame.type),
        onLeaderChange: (isLeader) => log.leader.push(isLeader),
      };
    },
  });
}

const frame = (id, type = "notification", extra = {}) => ({
  id, type, key: `${type}:${id}`, unread: id, data: { type: "new_booking", n: id }, created_at: "2026-11-25T19:31:15Z",
  ...extra,
});

// A frame as the server sends it now: its per-user seq beside its id.
const seqFrame = (id, seq, type = "notification") => frame(id, type, { seq });

const sentWithId = (ws, clientMsgId) => ws.frames.filter((m) => m.client_msg_id === clientMsgId);

// --- one socket for many tabs --------------------------------------------------------------

test("three tabs of one user open exactly one WebSocket, held by the first tab", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  assert.equal(env.sockets.length, 1);
  assert.equal(env.ws.url, "/ws?last_id=0");
  assert.equal(a.rt.isLeader, true);
  assert.equal(b.rt.isLeader, false);
  assert.equal(c.rt.isLeader, false);
  assert.deepEqual(a.log.leader, [true]);
  assert.deepEqual(b.log.leader, []);
  env.clock.advance(60 * 60 * 1000); // timers of the one socket only; no tab opens another
  assert.ok(env.sockets.every((ws) => ws.url.startsWith("/ws?last_id=")));
  assert.equal(env.leaders().length, 1);
});

test("tabs of different users do not share a socket", async () => {
  const env = makeEnv();
  env.openTab({ userId: 1 });
  env.openTab({ userId: 2 });
  await settle();
  assert.equal(env.sockets.length, 2);
});

test("a frame delivered to the leader reaches every tab once, routed by its envelope type", async () => {
  const env = makeEnv();
  const tabs = await openTabs(env, 3);
  env.ws.welcome();
  env.ws.deliver(frame(1, "booking_update"));
  env.ws.deliver(frame(2, "payment_update"));
  env.ws.deliver(frame(3, "notification"));
  env.ws.deliver(frame(2, "payment_update")); // a duplicate from the server
  await settle();
  for (const [i, tab] of tabs.entries()) {
    assert.deepEqual(tab.log.booking, [1], `tab ${i} bookings`);
    assert.deepEqual(tab.log.payment, [2], `tab ${i} payments`);
    assert.deepEqual(tab.log.notification, [3], `tab ${i} notifications`);
    assert.deepEqual(tab.log.data[0], { type: "new_booking", n: 1 }, `tab ${i} gets the frame's data`);
  }
});

test("control frames reach every tab's onControl", async () => {
  const env = makeEnv();
  const tabs = await openTabs(env, 3);
  env.ws.welcome();
  env.ws.deliver({ type: "notification_read", id: null, ids: [1], unread: 0 });
  await settle();
  for (const tab of tabs) assert.deepEqual(tab.log.control, ["welcome", "notification_read"]);
});

test("a follower's sendMessage is sent over the leader's socket with its client_msg_id", async () => {
  const env = makeEnv();
  const [leader, , follower] = await openTabs(env, 3);
  env.ws.welcome();
  const id = follower.rt.sendMessage({ type: "mark_read", ids: [12] });
  assert.equal(typeof id, "string");
  await settle();
  assert.deepEqual(env.ws.frames, [{ type: "mark_read", ids: [12], client_msg_id: id }]);
  assert.equal(leader.rt.tab.socket.outbox.size, 1, "kept by the leader until acknowledged");

  env.ws.deliver({ type: "ack", id: null, client_msg_id: id });
  await settle();
  assert.equal(leader.rt.tab.socket.outbox.size, 0);
  assert.equal(follower.rt.tab.pending.size, 0, "the follower hears about the ack");
});

test("the leader's own sendMessage goes straight to its socket", async () => {
  const env = makeEnv();
  const [leader] = await openTabs(env, 2);
  env.ws.welcome();
  const id = leader.rt.sendMessage({ type: "mark_all_read" });
  assert.deepEqual(env.ws.frames, [{ type: "mark_all_read", client_msg_id: id }]);
});

test("a message sent before the tab is elected leader is sent once it leads", async () => {
  const env = makeEnv();
  const only = env.openTab();
  const id = only.rt.sendMessage({ type: "mark_read", ids: [3] }); // the lock is not granted yet
  await settle();
  assert.equal(only.rt.isLeader, true);
  env.ws.welcome();
  assert.deepEqual(sentWithId(env.ws, id), [{ type: "mark_read", ids: [3], client_msg_id: id }]);
});

// --- hand-over -----------------------------------------------------------------------------

test("when the leader tab closes, another tab leads, resumes from the stored last seq and re-sends unacked messages", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  const first = env.ws;
  first.welcome();
  for (const id of [1, 2, 3]) first.deliver(seqFrame(id, id));
  const id = c.rt.sendMessage({ type: "mark_read", ids: [2] });
  await settle();
  assert.equal(sentWithId(first, id).length, 1, "sent over the first socket, never acknowledged");

  a.rt.close();
  await settle();
  assert.equal(first.isClosed, true, "the old leader closed its socket");
  assert.equal(b.rt.isLeader, true, "the next tab in the lock's queue leads");
  assert.equal(c.rt.isLeader, false);
  assert.deepEqual(b.log.leader, [true]);
  assert.equal(env.sockets.length, 2, "exactly one new socket");
  const second = env.ws;
  assert.equal(second.url, "/ws?last_seq=3", "resumes from the seq the old leader stored");

  second.welcome();
  await settle();
  assert.deepEqual(sentWithId(second, id), [{ type: "mark_read", ids: [2], client_msg_id: id }], "re-sent once");

  second.deliver(seqFrame(3, 3)).deliver(seqFrame(4, 4, "booking_update"));
  await settle();
  for (const tab of [b, c]) {
    assert.deepEqual(tab.log.notification, [1, 2, 3], "nothing shown twice");
    assert.deepEqual(tab.log.booking, [4]);
  }
  assert.deepEqual(a.log.booking, [], "the closed tab hears nothing more");

  second.deliver({ type: "ack", id: null, client_msg_id: id });
  await settle();
  assert.equal(c.rt.tab.pending.size, 0);
  assert.equal(b.rt.tab.socket.outbox.size, 0);
});

test("a message sent during the hand-over by the tab that becomes leader is not lost", async () => {
  const env = makeEnv();
  const [a, b] = await openTabs(env, 3);
  env.ws.welcome();
  a.rt.close();
  const id = b.rt.sendMessage({ type: "mark_seen", ids: [5] }); // no leader at this moment
  await settle();
  assert.equal(b.rt.isLeader, true);
  env.ws.welcome();
  await settle();
  assert.deepEqual(sentWithId(env.ws, id), [{ type: "mark_seen", ids: [5], client_msg_id: id }]);
});

test("a message a follower sends while no tab leads reaches the next leader", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  a.rt.close();
  const id = c.rt.sendMessage({ type: "mark_read", ids: [9] });
  await settle();
  assert.equal(b.rt.isLeader, true);
  env.ws.welcome();
  await settle();
  assert.deepEqual(sentWithId(env.ws, id), [{ type: "mark_read", ids: [9], client_msg_id: id }]);
});

test("no tab shows a frame twice when a new leader replays frames it already relayed", async () => {
  const env = makeEnv();
  env.browser.localStorage.setItem = () => {
    throw new Error("QuotaExceededError"); // the old leader cannot store its last id
  };
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  for (const id of [1, 2, 3]) env.ws.deliver(frame(id));
  await settle();
  a.rt.close();
  await settle();
  assert.equal(env.ws.url, "/ws?last_id=0", "nothing stored: the new leader replays everything");
  env.ws.welcome();
  for (const id of [1, 2, 3, 4]) env.ws.deliver(frame(id));
  await settle();
  assert.deepEqual(b.log.notification, [1, 2, 3, 4]);
  assert.deepEqual(c.log.notification, [1, 2, 3, 4]);
});

test("without a stored seq the new leader resumes by the stored id (older server, older storage)", async () => {
  const env = makeEnv();
  const [a] = await openTabs(env, 2);
  env.ws.welcome();
  for (const id of [1, 2, 3]) env.ws.deliver(frame(id));
  await settle();
  a.rt.close();
  await settle();
  assert.equal(env.ws.url, "/ws?last_id=3");
});

test("relayed frames are shown once per tab by seq: a repeated seq is dropped, a lower id with a higher seq is not", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  env.ws.deliver(seqFrame(50, 1)).deliver(seqFrame(40, 2));
  await settle();
  for (const tab of [a, b, c]) assert.deepEqual(tab.log.notification, [50, 40]);
  // The same frames relayed once more (a new leader replaying what the old one relayed).
  for (const tab of [b, c]) {
    tab.rt.tab.onChannel({ kind: "frame", frame: seqFrame(40, 2) });
    tab.rt.tab.onChannel({ kind: "frame", frame: seqFrame(60, 2) });
    tab.rt.tab.onChannel({ kind: "frame", frame: seqFrame(45, 3) });
    assert.deepEqual(tab.log.notification, [50, 40, 45]);
  }
});

test("a follower rendered with a newer id than the relayed frames skips those by id, then goes by seq", async () => {
  const env = makeEnv();
  const [leader] = await openTabs(env, 1);
  const follower = env.openTab({ lastId: 12 });
  await settle();
  env.ws.welcome();
  env.ws.deliver(seqFrame(11, 5)).deliver(seqFrame(12, 6)).deliver(seqFrame(13, 7)).deliver(seqFrame(9, 8));
  await settle();
  assert.deepEqual(leader.log.notification, [11, 12, 13, 9]);
  assert.deepEqual(follower.log.notification, [13, 9], "what its page shows is not shown again");
});

test("a tab closed before its turn never becomes leader", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  b.rt.close();
  a.rt.close();
  await settle();
  assert.equal(b.rt.isLeader, false);
  assert.equal(c.rt.isLeader, true);
  assert.equal(env.sockets.length, 2, "the first leader's and the third tab's");
  assert.equal(env.sockets.filter((ws) => !ws.isClosed).length, 1);
});

test("pagehide closes the tab and hands the socket over", async () => {
  const env = makeEnv();
  const [a, b] = await openTabs(env, 2);
  a.win.dispatch("pagehide");
  await settle();
  assert.equal(b.rt.isLeader, true);
  assert.equal(env.sockets.length, 2);
  assert.equal(env.sockets[0].isClosed, true);
  assert.equal(a.win.listenerCount("pagehide"), 0, "its listeners are gone");
  assert.equal(a.win.listenerCount("online"), 0);
  assert.equal(a.win.document.listenerCount("visibilitychange"), 0);
});

// --- status --------------------------------------------------------------------------------

test("status changes reach the followers", async () => {
  const env = makeEnv({ random: () => 0.999999 });
  const [leader, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  await settle();
  for (const tab of [leader, b, c]) {
    assert.equal(tab.statuses().at(-1), "open");
    assert.equal(tab.rt.isConnected(), true);
  }
  env.ws.serverClose(1006);
  await settle();
  for (const tab of [b, c]) {
    assert.deepEqual(tab.log.status.at(-1), { status: "reconnecting", retryIn: 1 });
    assert.equal(tab.rt.isConnected(), false);
  }
  env.clock.advance(499);
  env.ws.welcome();
  await settle();
  for (const tab of [b, c]) assert.deepEqual(tab.statuses().slice(-2), ["connecting", "open"]);
});

test("a tab opened later learns the current status from the leader", async () => {
  const env = makeEnv();
  await openTabs(env, 2);
  env.ws.welcome();
  await settle();
  const late = env.openTab();
  await settle();
  assert.equal(late.rt.isConnected(), true);
  assert.equal(late.statuses().at(-1), "open");
  assert.equal(env.sockets.length, 1);
});

test("closing the leader tab does not tell the other tabs that live updates are off", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  await settle();
  const before = c.log.status.length;
  a.rt.close();
  await settle();
  env.ws.welcome();
  await settle();
  assert.deepEqual(c.statuses().slice(before), ["connecting", "open"]);
  assert.deepEqual(b.statuses().slice(before), ["connecting", "open"]);
});

test("offline and online events on the leader's window drive its socket, and followers hear it", async () => {
  const env = makeEnv();
  const [a, b] = await openTabs(env, 2);
  env.ws.welcome();
  a.win.dispatch("offline");
  await settle();
  assert.equal(env.sockets[0].isClosed, true);
  assert.equal(b.statuses().at(-1), "offline");
  env.clock.advance(60 * 60 * 1000);
  assert.equal(env.sockets.length, 1);
  a.win.dispatch("online");
  await settle();
  assert.equal(env.sockets.length, 2);
  assert.equal(b.statuses().at(-1), "connecting");
});

// --- without sharing -----------------------------------------------------------------------

for (const [what, flags] of [["Web Locks", { locks: false }], ["BroadcastChannel", { broadcastChannel: false }]]) {
  test(`without ${what} every tab opens its own socket`, async () => {
    const env = makeEnv(flags);
    const tabs = await openTabs(env, 3);
    assert.equal(env.sockets.length, 3);
    assert.ok(tabs.every((t) => t.rt.isLeader));
    env.sockets[0].welcome().deliver(frame(1, "booking_update"));
    await settle();
    assert.deepEqual(tabs.map((t) => t.log.booking), [[1], [], []], "each tab hears its own socket only");
  });
}

test("with shareTabs: false every tab opens its own socket even when it could share", async () => {
  const env = makeEnv();
  await openTabs(env, 2, { shareTabs: false });
  assert.equal(env.sockets.length, 2);
});

test("tabs that do not share also do not share an outbox", async () => {
  const env = makeEnv({ locks: false });
  const a = env.openTab();
  const id = a.rt.sendMessage({ type: "mark_read", ids: [1] }); // queued in storage
  const b = env.openTab(); // its socket starts after a's message was queued
  await settle();
  for (const ws of env.sockets) ws.welcome();
  assert.equal(sentWithId(env.sockets[0], id).length, 1);
  assert.equal(sentWithId(env.sockets[1], id).length, 0, "the other tab does not send it too");
  assert.equal(b.rt.isLeader, true);
});

// --- visibility ----------------------------------------------------------------------------

test("allTabsHidden() is false while any tab is visible", async () => {
  const env = makeEnv();
  const [leader, b, c] = await openTabs(env, 3, { visibilityState: "hidden" });
  const hidden = () => leader.rt.tab.allTabsHidden();
  assert.equal(hidden(), true, "all three hidden");

  b.win.document.setVisibility("visible");
  await settle();
  assert.equal(hidden(), false, "a follower is visible");

  b.win.document.setVisibility("hidden");
  await settle();
  assert.equal(hidden(), true);

  leader.win.document.setVisibility("visible");
  assert.equal(hidden(), false, "the leader itself is visible");
  leader.win.document.setVisibility("hidden");

  c.win.document.setVisibility("visible");
  await settle();
  assert.equal(hidden(), false);
  c.rt.close();
  await settle();
  assert.equal(hidden(), true, "a visible tab that closes no longer counts");
});

test("a visible follower opened before the leader was elected is counted", async () => {
  const env = makeEnv();
  env.openTab({ visibilityState: "hidden" });
  env.openTab({ visibilityState: "visible" });
  await settle();
  assert.equal(env.tabs[0].rt.isLeader, true);
  assert.equal(env.tabs[0].rt.tab.allTabsHidden(), false);
});

test("a new leader learns which of the remaining tabs are visible", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3, { visibilityState: "hidden" });
  c.win.document.setVisibility("visible");
  await settle();
  a.rt.close();
  await settle();
  assert.equal(b.rt.isLeader, true);
  assert.equal(b.rt.tab.allTabsHidden(), false);
  c.win.document.setVisibility("hidden");
  await settle();
  assert.equal(b.rt.tab.allTabsHidden(), true);
});

// --- dispatchFrame -------------------------------------------------------------------------

test("dispatchFrame routes by envelope type and sends anything else to onNotification", () => {
  const calls = [];
  const callbacks = {
    onBookingUpdate: (data, f) => calls.push(["booking", data, f.id]),
    onPaymentUpdate: (data, f) => calls.push(["payment", data, f.id]),
    onNotification: (data, f) => calls.push(["notification", data, f.id]),
  };
  dispatchFrame({ id: 1, type: "booking_update", data: { a: 1 } }, callbacks);
  dispatchFrame({ id: 2, type: "payment_update", data: { b: 2 } }, callbacks);
  dispatchFrame({ id: 3, type: "notification", data: { c: 3 } }, callbacks);
  dispatchFrame({ id: 4, type: "something_new", data: null }, callbacks);
  assert.deepEqual(calls, [
    ["booking", { a: 1 }, 1],
    ["payment", { b: 2 }, 2],
    ["notification", { c: 3 }, 3],
    ["notification", null, 4],
  ]);
});

test("connectRealtime returns isConnected, sendMessage and close", async () => {
  const env = makeEnv();
  const [tab] = await openTabs(env, 1);
  assert.equal(typeof tab.rt.isConnected, "function");
  assert.equal(typeof tab.rt.sendMessage, "function");
  assert.equal(typeof tab.rt.close, "function");
  assert.equal(tab.rt.isConnected(), false);
  env.ws.welcome();
  assert.equal(tab.rt.isConnected(), true);
  tab.rt.close();
  assert.equal(tab.rt.isConnected(), false);
  assert.equal(env.clock.pending, 0, "no timers left behind");
  assert.equal(env.ws.isClosed, true);
});

test("the leader keeps the position (id:seq) and outbox under per-user keys in localStorage", async () => {
  const env = makeEnv();
  await openTabs(env, 1);
  env.ws.welcome().deliver(seqFrame(17, 4));
  assert.equal(env.browser.localStorage.getItem(`rt-last-id:${USER}`), "17:4");
  assert.ok(env.browser.localStorage instanceof MemoryStorage);
});

// --- the page's own notifications and signing out ------------------------------------------

test("a page rendered with notifications up to id N resumes after N and shows none of them again", async () => {
  const env = makeEnv();
  const [tab] = await openTabs(env, 1, { lastId: 5 });
  assert.equal(env.ws.url, "/ws?last_id=5");
  env.ws.welcome();
  env.ws.deliver(frame(5)).deliver(frame(6));
  await settle();
  assert.deepEqual(tab.log.notification, [6]);
});

test("a page rendered with a newer id than the stored position resumes by that id, not by the stored seq", async () => {
  const env = makeEnv();
  env.browser.localStorage.setItem(`rt-last-id:${USER}`, "5:2");
  const [tab] = await openTabs(env, 1, { lastId: 8 });
  assert.equal(env.ws.url, "/ws?last_id=8");
  env.ws.welcome({ last_id: 9, last_seq: 5 });
  env.ws.deliver(seqFrame(8, 4)).deliver(seqFrame(9, 5));
  env.ws.deliver({ type: "replay_done", id: null, count: 2, last_id: 9, last_seq: 5 });
  await settle();
  assert.deepEqual(tab.log.notification, [9]);
  assert.equal(env.browser.localStorage.getItem(`rt-last-id:${USER}`), "9:5");
});

test("a page rendered with an older id than the stored position resumes by the stored seq", async () => {
  const env = makeEnv();
  env.browser.localStorage.setItem(`rt-last-id:${USER}`, "20:7");
  await openTabs(env, 1, { lastId: 18 });
  assert.equal(env.ws.url, "/ws?last_seq=7");
});

test("signing out in one tab marks the other tabs signed out, and none of them takes the socket over", async () => {
  const env = makeEnv();
  const [a, b, c] = await openTabs(env, 3);
  env.ws.welcome();
  b.rt.signOut();
  await settle();
  assert.equal(b.statuses().at(-1), "signed-out");
  assert.equal(c.statuses().at(-1), "signed-out");
  assert.notEqual(a.statuses().at(-1), "signed-out", "the leader waits for the server's 4401");
  env.ws.serverClose(4401, "session ended");
  await settle();
  assert.equal(a.statuses().at(-1), "signed-out");
  const sockets = env.sockets.length;
  a.rt.close();
  await settle();
  env.clock.advance(60 * 1000);
  assert.equal(env.sockets.length, sockets, "no signed-out tab opens a socket with the ended session");
});

test("a signed-out leader hands the socket to a tab opened after a new login", async () => {
  const env = makeEnv();
  const [a] = await openTabs(env, 1);
  env.ws.welcome();
  env.ws.serverClose(4401, "session ended");
  await settle();
  assert.equal(a.statuses().at(-1), "signed-out");
  const fresh = env.openTab();
  await settle();
  assert.equal(fresh.rt.isLeader, true);
  assert.equal(a.rt.isLeader, false);
  env.ws.welcome();
  await settle();
  assert.equal(fresh.statuses().at(-1), "open");
});

test("Retry now on any tab makes the leader's socket try at once", async () => {
  const env = makeEnv();
  const [leader, follower] = await openTabs(env, 2);
  let wakes = 0;
  leader.rt.tab.socket.wake = () => { wakes += 1; };
  follower.rt.retryNow();
  await settle();
  assert.equal(wakes, 1, "relayed to the leader");
  leader.rt.retryNow();
  assert.equal(wakes, 2, "the leader's own");
});

// --- a visible follower does not wait on a hidden leader's late timer ------------------------

// The leader's retry timer as a hidden tab's can be: the browser runs it late (here: never).
function throttleRetry(tab) {
  const socket = tab.rt.tab.socket;
  const arm = socket.armTimer.bind(socket);
  socket.armTimer = (name, ms, fn) => (name === "retry" ? undefined : arm(name, ms, fn));
}

test("when a visible follower's countdown runs out, the leader tries at once even if its own timer is late", async () => {
  const env = makeEnv({ random: () => 0.9 });
  const [leader] = await openTabs(env, 1, { visibilityState: "hidden" });
  const follower = env.openTab({ visibilityState: "visible" });
  await settle();
  env.ws.welcome();
  await settle();
  throttleRetry(leader);
  env.ws.serverClose(1006);
  await settle();
  const shown = follower.log.status.at(-1);
  assert.equal(shown.status, "reconnecting");
  assert.equal(shown.retryIn, 1, "0.9 * 500 ms, shown as 1 s");
  const before = env.sockets.length;
  env.clock.advance(999);
  await settle();
  assert.equal(env.sockets.length, before, "not before the countdown ends");
  env.clock.advance(1000 + 250 - 999);
  await settle();
  assert.equal(env.sockets.length, before + 1, "the follower asked, the leader connected");
  env.ws.welcome();
  await settle();
  assert.equal(follower.statuses().at(-1), "open");
});

test("a hidden follower does not nudge, and an on-time leader is not made to connect twice", async () => {
  const env = makeEnv({ random: () => 0.9 });
  const [leader] = await openTabs(env, 1, { visibilityState: "visible" });
  const hidden = env.openTab({ visibilityState: "hidden" });
  await settle();
  env.ws.welcome();
  await settle();
  env.ws.serverClose(1006);
  await settle();
  assert.equal(hidden.statuses().at(-1), "reconnecting");
  const before = env.sockets.length;
  env.clock.advance(450); // the leader's own timer: an attempt, left hanging (connecting)
  await settle();
  assert.equal(env.sockets.length, before + 1);
  env.clock.advance(2000); // past the hidden follower's countdown
  await settle();
  assert.equal(env.sockets.length, before + 1, "no second attempt");
  assert.equal(leader.rt.tab.socket.status, "connecting");

  // Hidden: its countdown runs out with the leader's timer stuck, and it stays quiet.
  throttleRetry(leader);
  env.ws.serverClose(1006);
  await settle();
  const stuck = env.sockets.length;
  env.clock.advance(5000);
  await settle();
  assert.equal(env.sockets.length, stuck, "nobody looks: nobody nudges");
});
