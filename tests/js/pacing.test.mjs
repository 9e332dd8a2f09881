// The socket's own traffic stays under the server's limits: a token bucket paces every frame
// it writes (outbox flushes, acks, pongs, marks), waiting mark_seen messages merge into one,
// and a `rate_limited` error makes it wait and send again what may have been refused.
import test from "node:test";
import assert from "node:assert/strict";

import { RealtimeSocket, SOCKET_DEFAULTS } from "../../static/js/socket.js";
import { FakeClock, MemoryStorage, makeWebSocketClass, serverRefusals } from "./fakes.mjs";

// The most frames written in any window of `ms` milliseconds.
function busiestWindow(times, ms = 1000) {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i += 1) {
    while (times[i] - times[j] >= ms) j += 1;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

// A fake WebSocket class that also records when (fake clock) each frame was written.
function timedWebSocketClass(clock) {
  const Base = makeWebSocketClass();
  class Timed extends Base {
    send(data) {
      super.send(data);
      (this.sentAt ??= []).push(clock.now());
    }
  }
  return Timed;
}

function setup({ storage = new MemoryStorage(), clock = new FakeClock(1_000_000), ...options } = {}) {
  const WS = timedWebSocketClass(clock);
  const socket = new RealtimeSocket({
    WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now,
    random: () => 0, storage, warn: () => {}, ...options,
  });
  const controls = [];
  socket.addEventListener("control", (event) => controls.push(event.detail));
  socket.start();
  return {
    socket, clock, storage, WS, controls,
    get ws() {
      return WS.instances.at(-1);
    },
  };
}

const notification = (id, extra = {}) => ({
  id, type: "notification", key: null, unread: id, data: { message: `#${id}` }, created_at: "2026-11-25T19:31:15Z",
  ...extra,
});

// Runs the fake clock in small steps until `done()` or `limit` ms have passed.
function runUntil(clock, done, limit = 60_000, step = 10) {
  for (let t = 0; t < limit && !done(); t += step) clock.advance(step);
  assert.ok(done(), `not done within ${limit} ms`);
}

function storedOutbox(count) {
  const items = Array.from({ length: count }, (_, i) => ({ type: "mark_read", ids: [i + 1], client_msg_id: `m${i}` }));
  return new MemoryStorage({ "rt-outbox": JSON.stringify(items) });
}

test("the pacing options have defaults comfortably under the server's 20 frames/s, bursts of 40", () => {
  assert.equal(SOCKET_DEFAULTS.maxMessagesPerSecond, 10);
  assert.equal(SOCKET_DEFAULTS.maxMessageBurst, 20);
  assert.equal(SOCKET_DEFAULTS.maxIdsPerMessage, 500);
  assert.equal(SOCKET_DEFAULTS.maxFrameBytes, 64 * 1024);
});

test("flushing a 100-message outbox after a reconnect never exceeds the budget in any 1-s window", () => {
  const env = setup({ storage: storedOutbox(100) });
  env.ws.welcome();
  const ws = env.ws;
  assert.equal(ws.sent.length, SOCKET_DEFAULTS.maxMessageBurst, "a burst at once, the rest waits");
  runUntil(env.clock, () => ws.sent.length === 100);
  assert.deepEqual(ws.frames.map((m) => m.client_msg_id), Array.from({ length: 100 }, (_, i) => `m${i}`), "in order");
  const budget = SOCKET_DEFAULTS.maxMessageBurst + SOCKET_DEFAULTS.maxMessagesPerSecond;
  assert.ok(busiestWindow(ws.sentAt) <= budget, `${busiestWindow(ws.sentAt)} frames in one second`);
  assert.equal(serverRefusals(ws.sentAt), 0, "the server refuses none of them");
  assert.equal(env.clock.pending > 0, true, "the dead-link timer is still there");
  assert.deepEqual(env.clock.pendingDelays().filter((d) => d < 1000), [], "and no pacing timer is left");
});

test("the same flush on a socket allowed 2 frames/s, bursts of 3, keeps to that", () => {
  const env = setup({ storage: storedOutbox(12), maxMessagesPerSecond: 2, maxMessageBurst: 3 });
  env.ws.welcome();
  runUntil(env.clock, () => env.ws.sent.length === 12);
  assert.ok(busiestWindow(env.ws.sentAt) <= 5, `${busiestWindow(env.ws.sentAt)}`);
  assert.ok(env.ws.sentAt.at(-1) - env.ws.sentAt[0] >= 4000, "9 frames after the burst take 4.5 s at 2/s");
});

test("a flush interrupted by a drop is not doubled: the next socket sends what is left, paced", () => {
  const env = setup({ storage: storedOutbox(60) });
  env.ws.welcome();
  const first = env.ws;
  env.clock.advance(500); // 5 more after the burst of 20
  for (const message of first.frames) env.ws.deliver({ type: "ack", id: null, client_msg_id: message.client_msg_id });
  const acked = first.sent.length;
  first.serverClose(1006);
  runUntil(env.clock, () => env.WS.instances.length === 2);
  const second = env.ws;
  second.welcome();
  runUntil(env.clock, () => second.sent.length === 60 - acked);
  assert.equal(first.sent.length, acked, "the old socket got nothing after its drop");
  assert.deepEqual(second.frames.map((m) => m.client_msg_id),
    Array.from({ length: 60 - acked }, (_, i) => `m${i + acked}`));
  assert.equal(serverRefusals(second.sentAt), 0);
});

test("a pong jumps the queue and still counts against the budget", () => {
  const env = setup({ storage: storedOutbox(40) });
  env.ws.welcome();
  assert.equal(env.ws.sent.length, 20);
  env.ws.deliver({ type: "ping", id: null });
  assert.equal(env.ws.sent.length, 20, "no token left: the pong waits too");
  env.clock.advance(100);
  assert.deepEqual(env.ws.frames.at(-1), { type: "pong" }, "but it is the next frame out");
  assert.equal(env.ws.sent.length, 21);
  runUntil(env.clock, () => env.ws.sent.length === 41);
  assert.equal(serverRefusals(env.ws.sentAt), 0);
});

test("300 notifications in one second cost a handful of delivery acks, each with the highest id", () => {
  const env = setup({ ackDelay: 200 });
  env.ws.welcome();
  for (let id = 1; id <= 300; id += 1) {
    env.ws.deliver(notification(id));
    env.clock.advance(3);
  }
  env.clock.advance(1000);
  const acks = env.ws.frames.filter((f) => f.type === "ack");
  assert.ok(acks.length <= 6, `${acks.length} acks`);
  assert.equal(acks.at(-1).id, 300);
  assert.equal(serverRefusals(env.ws.sentAt), 0);
});

test("a delivery ack waiting for a token carries the highest id when it goes", () => {
  const env = setup({ storage: storedOutbox(40), ackDelay: 200 });
  env.ws.welcome(); // the burst is spent on the outbox, 20 more wait
  env.ws.deliver(notification(1));
  env.clock.advance(200); // the ack is queued behind the outbox... and more frames arrive
  env.ws.deliver(notification(2)).deliver(notification(3));
  runUntil(env.clock, () => env.ws.frames.some((f) => f.type === "ack"));
  env.clock.advance(1000);
  assert.deepEqual(env.ws.frames.filter((f) => f.type === "ack"), [{ type: "ack", id: 3 }]);
  assert.equal(env.ws.frames.findIndex((f) => f.type === "ack"), 40, "after the outbox, in order");
});

// --- merging mark_seen -----------------------------------------------------------------------

test("mark_seen messages waiting unsent merge into one, under a new client_msg_id", () => {
  const env = setup();
  const a = env.socket.sendMessage({ type: "mark_seen", ids: [1, 2] });
  const b = env.socket.sendMessage({ type: "mark_seen", ids: [2, 3], client_msg_id: "from-tab-b" });
  const c = env.socket.sendMessage({ type: "mark_seen", ids: [4] });
  assert.equal(b, "from-tab-b");
  const pending = env.socket.outbox.pending();
  assert.equal(pending.length, 1);
  assert.deepEqual(pending[0].ids, [1, 2, 3, 4]);
  assert.ok(![a, b].includes(pending[0].client_msg_id), "a fresh id: the server may know the old ones");
  assert.equal(c, pending[0].client_msg_id, "a message without an id gets the merged one's");
  env.ws.welcome();
  assert.deepEqual(env.ws.frames, [{ type: "mark_seen", ids: [1, 2, 3, 4], client_msg_id: pending[0].client_msg_id }]);
  // One ack from the server acknowledges every message merged into it (tabs wait for theirs).
  env.ws.deliver({ type: "ack", id: null, client_msg_id: pending[0].client_msg_id });
  const acked = env.controls.filter((f) => f.type === "ack").map((f) => f.client_msg_id);
  assert.deepEqual(acked.sort(), [a, b, c].sort());
  assert.equal(env.socket.outbox.size, 0);
});

test("a mark_seen already written to the socket is not merged into; others are, up to 500 ids", () => {
  const env = setup({ storage: storedOutbox(20) });
  env.ws.welcome(); // the burst goes to the stored outbox
  env.socket.sendMessage({ type: "mark_seen", ids: [1] });
  env.clock.advance(100);
  assert.deepEqual(env.ws.frames.at(-1).ids, [1], "written");
  env.socket.sendMessage({ type: "mark_seen", ids: [2] });
  env.socket.sendMessage({ type: "mark_seen", ids: Array.from({ length: 499 }, (_, i) => i + 3) });
  env.socket.sendMessage({ type: "mark_seen", ids: [999_999] });
  runUntil(env.clock, () => env.ws.frames.filter((f) => f.type === "mark_seen").length === 3);
  env.clock.advance(2000);
  const seen = env.ws.frames.filter((f) => f.type === "mark_seen").map((f) => f.ids.length);
  assert.deepEqual(seen, [1, 500, 1], "[2] took 499 more (500), the next one did not fit");
});

test("mark_read and messages with other fields are never merged", () => {
  const env = setup();
  env.socket.sendMessage({ type: "mark_read", ids: [1] });
  env.socket.sendMessage({ type: "mark_read", ids: [2] });
  env.socket.sendMessage({ type: "mark_seen", ids: [3], note: "x" });
  env.socket.sendMessage({ type: "mark_seen", ids: [4] });
  assert.equal(env.socket.outbox.size, 4);
});

test("a relayed message the outbox already holds is queued once, not merged or doubled", () => {
  const env = setup();
  env.ws.welcome();
  env.clock.advance(5000);
  const storage = env.storage;
  env.socket.sendMessage({ type: "mark_read", ids: [1], client_msg_id: "x" });
  env.socket.sendMessage({ type: "mark_read", ids: [1], client_msg_id: "x" });
  assert.equal(env.ws.sent.length, 1);
  assert.equal(JSON.parse(storage.getItem("rt-outbox")).length, 1);
});

// --- limits and refusals -----------------------------------------------------------------

test("a message over 64 KiB is refused at once (the server would close the socket with 1009)", () => {
  const warnings = [];
  const env = setup({ warn: (...args) => warnings.push(args) });
  env.ws.welcome();
  assert.equal(env.socket.sendMessage({ type: "mark_read", ids: [1], note: "x".repeat(70_000) }), null);
  assert.equal(env.socket.outbox.size, 0);
  assert.equal(env.ws.sent.length, 0);
  assert.equal(warnings.length, 1);
});

test("a rate_limited error empties the bucket and sends again the messages not yet acked", () => {
  const env = setup();
  env.ws.welcome();
  const ids = [1, 2, 3].map((n) => env.socket.sendMessage({ type: "mark_read", ids: [n] }));
  env.ws.deliver({ type: "ack", id: null, client_msg_id: ids[0] });
  env.ws.deliver({ type: "error", id: null, code: "rate_limited", message: "too many frames; slow down" });
  assert.equal(env.ws.sent.length, 3, "nothing more at once");
  assert.equal(env.socket.status, "open", "an error frame is not a reason to reconnect");
  env.clock.advance(100);
  runUntil(env.clock, () => env.ws.sent.length === 5);
  assert.deepEqual(env.ws.frames.slice(3).map((f) => f.client_msg_id), [ids[1], ids[2]]);
  assert.ok(env.controls.some((f) => f.code === "rate_limited"));
});

// --- replay_truncated ------------------------------------------------------------------------

test("replay_truncated is a control frame: no error, no reconnect, no frame, resume id unchanged", () => {
  const storage = new MemoryStorage({ "rt-last-id": "100" });
  const env = setup({ storage });
  env.ws.welcome({ last_id: 31_000 });
  const frames = [];
  env.socket.addEventListener("frame", (event) => frames.push(event.detail));
  env.ws.deliver({ type: "replay_truncated", id: null, skipped: 19_000, last_id: 30_000 });
  assert.deepEqual(env.controls.at(-1), { type: "replay_truncated", id: null, skipped: 19_000, last_id: 30_000 });
  assert.equal(env.socket.status, "open");
  assert.deepEqual(frames, []);
  assert.equal(storage.getItem("rt-last-id"), "100");
  for (let id = 30_001; id <= 30_003; id += 1) env.ws.deliver(notification(id));
  env.ws.deliver({ type: "replay_done", id: null, count: 3, last_id: 30_003 });
  assert.deepEqual(frames.map((f) => f.id), [30_001, 30_002, 30_003]);
  assert.equal(storage.getItem("rt-last-id"), "30003");
  assert.equal(env.WS.instances.length, 1);
});

test("with seqs, replay_truncated leaves the resume position alone and replay_done's last_seq becomes it", () => {
  const storage = new MemoryStorage({ "rt-last-id": "100:40" });
  const env = setup({ storage });
  assert.equal(env.ws.url, "/ws?last_seq=40");
  env.ws.welcome({ last_id: 31_000, last_seq: 20_043 });
  const frames = [];
  env.socket.addEventListener("frame", (event) => frames.push(event.detail));
  env.ws.deliver({ type: "replay_truncated", id: null, skipped: 20_000, last_id: 30_000, last_seq: 20_040 });
  assert.equal(storage.getItem("rt-last-id"), "100:40");
  for (let n = 1; n <= 3; n += 1) env.ws.deliver(notification(30_000 + n, { seq: 20_040 + n }));
  env.ws.deliver({ type: "replay_done", id: null, count: 3, last_id: 30_003, last_seq: 20_043 });
  assert.deepEqual(frames.map((f) => f.seq), [20_041, 20_042, 20_043]);
  assert.equal(storage.getItem("rt-last-id"), "30003:20043");
  assert.equal(env.socket.status, "open");
});
