import test from "node:test";
import assert from "node:assert/strict";

import { RealtimeSocket, SOCKET_DEFAULTS, SESSION_ENDED } from "../../static/js/socket.js";
import { FakeClock, MemoryStorage, makeWebSocketClass, seededRandom, sequence } from "./fakes.mjs";

const JUST_UNDER_ONE = 0.999999; // backoff draws bound - 1

// A RealtimeSocket on fakes, with everything it emits recorded.
function setup({ storage = new MemoryStorage(), random = () => 0.5, start = true, clock = new FakeClock(),
  WebSocket = makeWebSocketClass(), ...options } = {}) {
  const socket = new RealtimeSocket({
    WebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random,
    storage,
    warn: () => {},
    ...options,
  });
  const statuses = [];
  const frames = [];
  const controls = [];
  socket.addEventListener("status", (event) => statuses.push(event.detail));
  socket.addEventListener("frame", (event) => frames.push(event.detail));
  socket.addEventListener("control", (event) => controls.push(event.detail));
  if (start) socket.start();
  return {
    socket, clock, storage, WS: WebSocket, statuses, frames, controls,
    get ws() {
      return WebSocket.instances.at(-1);
    },
    get sockets() {
      return WebSocket.instances.length;
    },
    statusNames: () => statuses.map((s) => s.status),
  };
}

const notification = (id, extra = {}) => ({
  id, type: "notification", key: `booking:${id}`, unread: 1, data: { type: "new_booking", message: `#${id}` },
  created_at: "2026-11-25T19:31:15Z", ...extra,
});

// A notification frame as the server sends it now: its per-user seq beside its id.
const withSeq = (id, seq, extra = {}) => notification(id, { seq, ...extra });

// Closes the current socket abruptly and returns the reconnect delay the socket chose.
function dropAndReadDelay(env, code = 1006, reason = "") {
  env.ws.serverClose(code, reason);
  assert.equal(env.clock.pending, 1, "only the retry timer is left");
  return env.clock.pendingDelays()[0];
}

// --- connecting ----------------------------------------------------------------------------

test("it connects to /ws with the last seq kept in storage", () => {
  const env = setup({ storage: new MemoryStorage({ "rt-last-id": "42:7" }) });
  assert.equal(env.sockets, 1);
  assert.equal(env.ws.url, "/ws?last_seq=7");
});

test("an old plain-integer stored value (an id, no seq) resumes by last_id", () => {
  const env = setup({ storage: new MemoryStorage({ "rt-last-id": "42" }) });
  assert.equal(env.ws.url, "/ws?last_id=42");
  env.ws.welcome({ last_id: 45, last_seq: 9 });
  env.ws.deliver(withSeq(42, 6)).deliver(withSeq(43, 7));
  assert.deepEqual(env.frames.map((f) => f.id), [43], "before any seq is known, ids decide: 42 is a repeat");
  assert.equal(env.storage.getItem("rt-last-id"), "43:7", "from then on, the seq is stored beside the id");
  env.ws.deliver(withSeq(44, 8));
  assert.deepEqual(env.frames.map((f) => f.id), [43, 44]);
});

test("without a stored position it asks to resume from id 0, and junk in storage counts as nothing", () => {
  assert.equal(setup().ws.url, "/ws?last_id=0");
  for (const junk of ["abc", "-5", "", "0", "9007199254740993", "12:", ":5", "12:5:1", "12:abc", "1.5", " 12", "12:-3"]) {
    assert.equal(setup({ storage: new MemoryStorage({ "rt-last-id": junk }) }).ws.url, "/ws?last_id=0", junk);
  }
  assert.equal(setup({ storage: new MemoryStorage({ "rt-last-id": "12:9007199254740993" }) }).ws.url, "/ws?last_id=12",
    "a seq out of range is dropped, the id kept");
  assert.equal(setup({ storage: new MemoryStorage({ "rt-last-id": "12:0" }) }).ws.url, "/ws?last_id=12",
    "seq 0 is no seq (seqs start at 1)");
});

test("a url that already has a query string gets the resume point appended with &", () => {
  const byId = setup({ url: "wss://example.test/ws?v=2", storage: new MemoryStorage({ "rt-last-id": "9" }) });
  assert.equal(byId.ws.url, "wss://example.test/ws?v=2&last_id=9");
  const bySeq = setup({ url: "wss://example.test/ws?v=2", storage: new MemoryStorage({ "rt-last-id": "9:4" }) });
  assert.equal(bySeq.ws.url, "wss://example.test/ws?v=2&last_seq=4");
});

test("nothing connects until start() is called", () => {
  const env = setup({ start: false });
  assert.equal(env.sockets, 0);
  assert.equal(env.socket.status, "idle");
});

test("the status goes connecting, then open only when the welcome frame arrives", () => {
  const env = setup();
  assert.deepEqual(env.statuses, [{ status: "connecting", retryIn: null }]);
  env.ws.open();
  assert.deepEqual(env.statusNames(), ["connecting"], "the TCP/WebSocket open alone is not enough");
  assert.equal(env.socket.isConnected, false);
  env.ws.deliver({ type: "welcome", id: null, user_id: 7, heartbeat: 25, unread: 3, last_id: 120 });
  assert.deepEqual(env.statuses, [{ status: "connecting", retryIn: null }, { status: "open", retryIn: null }]);
  assert.equal(env.socket.isConnected, true);
  assert.equal(env.controls[0].type, "welcome", "the welcome frame is passed on as a control frame");
});

test("a WebSocket constructor that throws leads to a scheduled reconnect, not a crash", () => {
  const clock = new FakeClock();
  const Real = makeWebSocketClass();
  let failures = 1;
  class Flaky extends Real {
    constructor(url) {
      if (failures-- > 0) throw new Error("SecurityError");
      super(url);
    }
  }
  Flaky.instances = Real.instances;
  const env = setup({ clock, WebSocket: Flaky, random: () => JUST_UNDER_ONE });
  assert.equal(env.sockets, 0);
  assert.equal(env.socket.status, "reconnecting");
  clock.advance(499);
  assert.equal(env.sockets, 1);
});

// --- reconnecting --------------------------------------------------------------------------

test("an unexpected close schedules a reconnect within the first backoff bound and says so", () => {
  const env = setup({ random: seededRandom(7) });
  env.ws.welcome();
  const delay = dropAndReadDelay(env, 1006);
  assert.ok(delay >= 0 && delay < SOCKET_DEFAULTS.minReconnectionDelay, `${delay} within [0, 500)`);
  assert.deepEqual(env.statuses.at(-1), { status: "reconnecting", retryIn: Math.ceil(delay / 1000) });
  if (delay > 0) {
    env.clock.advance(delay - 1);
    assert.equal(env.sockets, 1, "not before the delay");
  }
  env.clock.advance(1);
  assert.equal(env.sockets, 2, "a new socket at the delay");
  assert.equal(env.socket.status, "connecting");
});

test("retryIn is the delay in whole seconds, rounded up", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  const delays = [];
  for (let i = 0; i < 4; i += 1) {
    delays.push(dropAndReadDelay(env));
    assert.equal(env.statuses.at(-1).retryIn, Math.ceil(delays.at(-1) / 1000));
    env.clock.advance(delays.at(-1));
  }
  assert.deepEqual(env.statuses.filter((s) => s.status === "reconnecting").map((s) => s.retryIn), [1, 1, 2, 4]);
});

test("successive failures grow the delay's bound up to maxReconnectionDelay", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  const delays = [];
  for (let i = 0; i < 9; i += 1) {
    const delay = dropAndReadDelay(env);
    delays.push(delay);
    env.clock.advance(delay);
    assert.equal(env.sockets, i + 2);
  }
  assert.deepEqual(delays, [499, 999, 1999, 3999, 7999, 9999, 9999, 9999, 9999]);
});

test("every reconnect draws its own jitter", () => {
  const random = sequence(0.9, 0.1, 0.5, 0.3);
  const env = setup({ random });
  const delays = [];
  for (let i = 0; i < 4; i += 1) {
    delays.push(dropAndReadDelay(env));
    env.clock.advance(delays.at(-1));
  }
  assert.deepEqual(delays, [450, 100, 1000, 1200]);
});

test("a connection that drops before stableAfter keeps growing the delay (no flapping)", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  const delays = [];
  for (let i = 0; i < 5; i += 1) {
    env.ws.welcome();
    env.clock.advance(SOCKET_DEFAULTS.stableAfter - 1);
    delays.push(dropAndReadDelay(env));
    env.clock.advance(delays.at(-1));
  }
  assert.deepEqual(delays, [499, 999, 1999, 3999, 7999]);
});

test("the attempt counter resets once a connection has stayed open for stableAfter ms", () => {
  const env = setup({ random: () => JUST_UNDER_ONE, stableAfter: 10000 });
  for (const expected of [499, 999, 1999]) {
    const delay = dropAndReadDelay(env);
    assert.equal(delay, expected);
    env.clock.advance(delay);
  }
  env.ws.welcome();
  env.clock.advance(10000);
  assert.equal(dropAndReadDelay(env), 499, "back to the first attempt's bound");
});

test("a socket that opens but never gets a welcome does not reset the attempt counter", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  env.clock.advance(dropAndReadDelay(env));
  env.ws.open();
  env.clock.advance(9999); // just before the connect timeout
  assert.equal(dropAndReadDelay(env), 999);
});

test("a 1001 close with 'reconnect in 1200 ms' waits at least 1200 ms", () => {
  const env = setup({ random: () => 0 });
  env.ws.welcome();
  const delay = dropAndReadDelay(env, 1001, "reconnect in 1200 ms");
  assert.equal(delay, 1200);
  assert.deepEqual(env.statuses.at(-1), { status: "reconnecting", retryIn: 2 });
  env.clock.advance(1199);
  assert.equal(env.sockets, 1);
  env.clock.advance(1);
  assert.equal(env.sockets, 2);
});

test("the server's delay gets a little jitter on top, never less than told", () => {
  for (const r of [0.01, 0.5, JUST_UNDER_ONE]) {
    const env = setup({ random: () => r });
    env.ws.welcome();
    const delay = dropAndReadDelay(env, 1001, "reconnect in 1200 ms");
    assert.ok(delay >= 1200 && delay < 1200 + SOCKET_DEFAULTS.minReconnectionDelay, `${delay}`);
  }
});

test("a 1001 close without a delay in its reason falls back to the backoff", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  env.ws.welcome();
  assert.equal(dropAndReadDelay(env, 1001, "heartbeat timeout"), 499);
});

test("1013 (try again later) reconnects with backoff", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  env.ws.welcome();
  assert.equal(dropAndReadDelay(env, 1013, ""), 499);
  env.clock.advance(499);
  assert.equal(env.sockets, 2);
});

test("close code 4401 means signed out: no new WebSocket, ever", () => {
  assert.equal(SESSION_ENDED, 4401);
  const env = setup();
  env.ws.welcome();
  env.ws.serverClose(4401, "session ended");
  assert.deepEqual(env.statuses.at(-1), { status: "signed-out", retryIn: null });
  assert.equal(env.clock.pending, 0, "nothing scheduled");
  env.clock.advance(24 * 60 * 60 * 1000);
  env.socket.wake();
  env.socket.offline();
  env.socket.wake();
  env.clock.advance(24 * 60 * 60 * 1000);
  assert.equal(env.sockets, 1);
  assert.equal(env.socket.status, "signed-out");
});

test("4401 before the welcome also stops for good", () => {
  const env = setup();
  env.ws.open();
  env.ws.serverClose(4401, "");
  env.clock.advance(10 * 60 * 1000);
  assert.equal(env.sockets, 1);
  assert.equal(env.socket.status, "signed-out");
});

// --- frames, resume, dedupe ----------------------------------------------------------------

test("a frame whose seq is at or below the last processed seq is dropped", () => {
  const env = setup();
  env.ws.welcome();
  for (const seq of [1, 2, 2, 1, 3, 3, 5, 4]) env.ws.deliver(withSeq(100 + seq, seq));
  assert.deepEqual(env.frames.map((f) => f.seq), [1, 2, 3, 5]);
  assert.deepEqual(env.frames[0], withSeq(101, 1), "the frame is passed on as received");
  assert.equal(env.socket.lastSeq, 5);
  assert.equal(env.socket.lastId, 105);
});

test("a frame with a lower id but a higher seq is not dropped: the seq orders, not the id", () => {
  const env = setup({ ackDelay: 200 });
  env.ws.welcome();
  env.ws.deliver(withSeq(50, 1)).deliver(withSeq(40, 2)).deliver(withSeq(50, 1)).deliver(withSeq(60, 2));
  assert.deepEqual(env.frames.map((f) => [f.id, f.seq]), [[50, 1], [40, 2]]);
  assert.equal(env.socket.lastId, 50, "the id kept is the highest one seen");
  assert.equal(env.storage.getItem("rt-last-id"), "50:2");
  env.clock.advance(200);
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 40 }], "the ack carries the notification id, as before");
});

test("frames from a server that sends no seq: an id at or below the last processed id is dropped", () => {
  const env = setup();
  env.ws.welcome();
  for (const id of [1, 2, 2, 1, 3, 3, 5, 4]) env.ws.deliver(notification(id));
  assert.deepEqual(env.frames.map((f) => f.id), [1, 2, 3, 5]);
  assert.deepEqual(env.frames[0], notification(1), "the frame is passed on as received");
});

test("the last processed id and seq are kept in storage and a new socket on the same storage resumes from the seq", () => {
  const storage = new MemoryStorage();
  const first = setup({ storage });
  first.ws.welcome();
  first.ws.deliver(withSeq(11, 3)).deliver(withSeq(12, 4));
  assert.equal(storage.getItem("rt-last-id"), "12:4");
  first.socket.close();

  const second = setup({ storage });
  assert.equal(second.ws.url, "/ws?last_seq=4");
  assert.equal(second.socket.lastId, 12);
  second.ws.welcome({ last_id: 13, last_seq: 5 });
  second.ws.deliver(withSeq(12, 4)).deliver(withSeq(13, 5));
  assert.deepEqual(second.frames.map((f) => f.id), [13], "a replayed seq 4 is not shown again");
});

test("from a server that sends no seq, the last id is stored as a plain integer and resumed from", () => {
  const storage = new MemoryStorage();
  const first = setup({ storage });
  first.ws.welcome();
  first.ws.deliver(notification(11)).deliver(notification(12));
  assert.equal(storage.getItem("rt-last-id"), "12");
  first.socket.close();

  const second = setup({ storage });
  assert.equal(second.ws.url, "/ws?last_id=12");
  second.ws.welcome();
  second.ws.deliver(notification(12)).deliver(notification(13));
  assert.deepEqual(second.frames.map((f) => f.id), [13], "a replayed 12 is not shown again");
});

test("a frame without a seq after seq-bearing ones makes the next resume go by id", () => {
  const env = setup({ random: () => 0 });
  env.ws.welcome();
  env.ws.deliver(withSeq(20, 5)).deliver(notification(21));
  assert.deepEqual(env.frames.map((f) => f.id), [20, 21]);
  assert.equal(env.storage.getItem("rt-last-id"), "21", "the seq no longer says where we are");
  env.clock.advance(dropAndReadDelay(env));
  assert.equal(env.ws.url, "/ws?last_id=21");
});

test("a reconnect resumes from the last seq processed on the previous connection", () => {
  const env = setup({ random: () => 0 });
  env.ws.welcome();
  env.ws.deliver(withSeq(30, 8)).deliver(withSeq(31, 9));
  env.clock.advance(dropAndReadDelay(env));
  assert.equal(env.ws.url, "/ws?last_seq=9");
});

test("a reconnect with no seq seen yet resumes from the last id", () => {
  const env = setup({ random: () => 0 });
  env.ws.welcome();
  env.ws.deliver(notification(30)).deliver(notification(31));
  env.clock.advance(dropAndReadDelay(env));
  assert.equal(env.ws.url, "/ws?last_id=31");
});

test("the storage key for the position can be chosen", () => {
  const storage = new MemoryStorage({ "rt-last-id:7": "5" });
  const env = setup({ storage, lastIdKey: "rt-last-id:7" });
  assert.equal(env.ws.url, "/ws?last_id=5");
  env.ws.welcome().deliver(withSeq(6, 2));
  assert.equal(storage.getItem("rt-last-id:7"), "6:2");
  assert.equal(storage.getItem("rt-last-id"), null);
});

// --- the page's rendered id ----------------------------------------------------------------

test("a page rendered with a newer id than the stored one resumes by that id, never by the stale seq", () => {
  const storage = new MemoryStorage({ "rt-last-id": "40:10" });
  const env = setup({ storage, lastId: 45 });
  assert.equal(env.ws.url, "/ws?last_id=45");
  assert.equal(env.socket.lastSeq, 0);
  env.ws.welcome({ last_id: 47, last_seq: 14 });
  env.ws.deliver(withSeq(45, 12)).deliver(withSeq(46, 13)).deliver(withSeq(47, 14));
  assert.deepEqual(env.frames.map((f) => f.id), [46, 47], "what the page shows is not shown again");
  assert.equal(storage.getItem("rt-last-id"), "47:14");
});

test("a page rendered with an id at or below the stored one resumes by the stored seq", () => {
  for (const lastId of [0, 30, 40]) {
    const env = setup({ storage: new MemoryStorage({ "rt-last-id": "40:10" }), lastId });
    assert.equal(env.ws.url, "/ws?last_seq=10", String(lastId));
    assert.equal(env.socket.lastId, 40);
  }
});

test("a page rendered with a newer id than an old plain-integer stored id resumes by the rendered id", () => {
  const env = setup({ storage: new MemoryStorage({ "rt-last-id": "40" }), lastId: 45 });
  assert.equal(env.ws.url, "/ws?last_id=45");
});

// --- the server's position -----------------------------------------------------------------

test("replay_done's last_seq is adopted when newer, with its last_id", () => {
  const storage = new MemoryStorage();
  const env = setup({ storage, lastId: 45, random: () => 0 });
  assert.equal(env.ws.url, "/ws?last_id=45");
  env.ws.welcome({ last_id: 45, last_seq: 0 });
  env.ws.deliver({ type: "replay_done", id: null, count: 0, last_id: 45, last_seq: 12 });
  assert.equal(env.socket.lastSeq, 12);
  assert.equal(storage.getItem("rt-last-id"), "45:12");
  assert.equal(env.controls.at(-1).type, "replay_done", "still passed on to the page");
  env.ws.deliver(withSeq(44, 12)).deliver(withSeq(46, 13));
  assert.deepEqual(env.frames.map((f) => f.seq), [13]);
  env.clock.advance(dropAndReadDelay(env));
  assert.equal(env.ws.url, "/ws?last_seq=13");
});

test("replay_done's last_seq is not adopted when it is not newer, nor when it is missing or bad", () => {
  const storage = new MemoryStorage({ "rt-last-id": "50:20" });
  const env = setup({ storage });
  env.ws.welcome({ last_id: 50, last_seq: 20 });
  for (const last_seq of [20, 19, undefined, null, "30", -1, 1.5]) {
    env.ws.deliver({ type: "replay_done", id: null, count: 0, last_id: 60, last_seq });
    assert.equal(env.socket.lastSeq, 20, String(last_seq));
    assert.equal(env.socket.lastId, 50, String(last_seq));
  }
  assert.equal(storage.getItem("rt-last-id"), "50:20");
});

test("after a replay, replay_done's last_seq covers what the replay sent", () => {
  const storage = new MemoryStorage({ "rt-last-id": "100" });
  const env = setup({ storage });
  env.ws.welcome({ last_id: 103, last_seq: 33 });
  assert.equal(env.socket.lastSeq, 0, "a replay follows: the welcome's seq is not ours yet");
  for (const [id, seq] of [[101, 31], [102, 32], [103, 33]]) env.ws.deliver(withSeq(id, seq));
  env.ws.deliver({ type: "replay_done", id: null, count: 3, last_id: 103, last_seq: 33 });
  assert.deepEqual(env.frames.map((f) => f.id), [101, 102, 103], "no replayed frame dropped");
  assert.equal(storage.getItem("rt-last-id"), "103:33");
});

test("a welcome with nothing newer than the id asked for gives its seq; one with newer ones does not", () => {
  const uptoDate = setup({ storage: new MemoryStorage({ "rt-last-id": "70" }) });
  uptoDate.ws.welcome({ last_id: 70, last_seq: 25 });
  assert.equal(uptoDate.socket.lastSeq, 25);
  assert.equal(uptoDate.storage.getItem("rt-last-id"), "70:25");

  const behind = setup({ storage: new MemoryStorage({ "rt-last-id": "70" }) });
  behind.ws.welcome({ last_id: 72, last_seq: 27 });
  assert.equal(behind.socket.lastSeq, 0);
  behind.ws.deliver(withSeq(71, 26)).deliver(withSeq(72, 27));
  assert.deepEqual(behind.frames.map((f) => f.seq), [26, 27], "the replay is not dropped");

  const bySeq = setup({ storage: new MemoryStorage({ "rt-last-id": "70:25" }) });
  bySeq.ws.welcome({ last_id: 72, last_seq: 27 });
  assert.equal(bySeq.socket.lastSeq, 25, "a known seq only moves with frames and replay_done");
});

test("control frames pass through as control events, not as notification frames", () => {
  const env = setup();
  env.ws.welcome();
  env.ws.deliver({ type: "notification_read", id: null, ids: [4], unread: 2 });
  env.ws.deliver({ type: "replay_done", id: null, count: 0, last_id: 0 });
  assert.deepEqual(env.frames, []);
  assert.deepEqual(env.controls.map((f) => f.type), ["welcome", "notification_read", "replay_done"]);
});

test("frames that are not JSON objects are ignored", () => {
  const env = setup();
  env.ws.welcome();
  env.ws.deliver("not json").deliver("42").deliver("null").deliver('"text"');
  env.ws.deliver(notification(1));
  assert.deepEqual(env.frames.map((f) => f.id), [1]);
  assert.equal(env.socket.status, "open");
});

test("a ping frame is answered with a pong", () => {
  const env = setup();
  env.ws.welcome();
  env.ws.deliver({ type: "ping", id: null });
  assert.deepEqual(env.ws.frames, [{ type: "pong" }]);
});

// --- heartbeat -----------------------------------------------------------------------------

test("silence for heartbeat*1000 + heartbeatMargin ms closes the socket and opens a new one", () => {
  const env = setup({ random: () => JUST_UNDER_ONE, heartbeatMargin: 10000 });
  const first = env.ws;
  first.welcome({ heartbeat: 25 });
  env.clock.advance(34999);
  assert.equal(first.isClosed, false, "still alive just before the deadline");
  assert.equal(env.socket.status, "open");
  env.clock.advance(1);
  assert.equal(first.isClosed, true, "the dead link is closed");
  assert.equal(first.closeCalls.at(-1).code, 4000);
  assert.equal(env.socket.status, "reconnecting");
  assert.equal(env.sockets, 1);
  env.clock.advance(499);
  assert.equal(env.sockets, 2, "and a new socket is opened after the backoff");
  first.deliver(notification(1));
  assert.deepEqual(env.frames, [], "the dead socket's late frames are ignored");
});

test("regular frames keep the link alive", () => {
  const env = setup({ heartbeatMargin: 10000 });
  env.ws.welcome({ heartbeat: 25 });
  for (let i = 1; i <= 10; i += 1) {
    env.clock.advance(30000);
    env.ws.deliver(i % 2 ? { type: "ping", id: null } : notification(i));
  }
  assert.equal(env.sockets, 1);
  assert.equal(env.ws.isClosed, false);
  assert.equal(env.socket.status, "open");
});

test("the welcome's heartbeat value sets the dead-link deadline", () => {
  const short = setup({ random: () => 0, heartbeatMargin: 10000 });
  short.ws.welcome({ heartbeat: 5 });
  short.clock.advance(14999);
  assert.equal(short.ws.isClosed, false);
  short.clock.advance(1);
  assert.equal(short.WS.instances[0].isClosed, true, "dead after 5 s + margin");

  const long = setup({ random: () => 0, heartbeatMargin: 10000 });
  long.ws.welcome({ heartbeat: 60 });
  long.clock.advance(69999);
  assert.equal(long.ws.isClosed, false, "the default 25 s would have closed it long ago");
  assert.equal(long.sockets, 1);
  long.clock.advance(1);
  assert.equal(long.WS.instances[0].isClosed, true);
});

test("a welcome with a missing or bad heartbeat keeps the default one", () => {
  for (const heartbeat of [undefined, 0, -3, "25"]) {
    const env = setup({ heartbeatMargin: 10000 });
    env.ws.welcome({ heartbeat });
    env.clock.advance(SOCKET_DEFAULTS.defaultHeartbeat * 1000 + 10000 - 1);
    assert.equal(env.ws.isClosed, false, String(heartbeat));
    env.clock.advance(1);
    assert.equal(env.WS.instances[0].isClosed, true, String(heartbeat));
  }
});

test("no welcome within connectTimeout counts as a dead link", () => {
  const env = setup({ random: () => 0, connectTimeout: 10000 });
  env.ws.open();
  env.clock.advance(9999);
  assert.equal(env.ws.isClosed, false);
  env.clock.advance(1);
  assert.equal(env.WS.instances[0].isClosed, true);
  env.clock.advance(0);
  assert.equal(env.sockets, 2);
});

// --- acks ----------------------------------------------------------------------------------

test("frames 5, 6, 7 within ackDelay are acknowledged with one ack for 7", () => {
  const env = setup({ ackDelay: 200 });
  env.ws.welcome();
  env.ws.deliver(notification(5));
  env.clock.advance(50);
  env.ws.deliver(notification(6));
  env.clock.advance(50);
  env.ws.deliver(notification(7));
  env.clock.advance(99);
  assert.deepEqual(env.ws.frames, [], "nothing before ackDelay");
  env.clock.advance(1);
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 7 }]);
  env.clock.advance(5000);
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 7 }], "exactly one ack");
  env.ws.deliver(notification(8));
  env.clock.advance(200);
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 7 }, { type: "ack", id: 8 }], "the next batch gets its own");
});

test("duplicates do not trigger acks", () => {
  const env = setup({ ackDelay: 200 });
  env.ws.welcome();
  env.ws.deliver(notification(3));
  env.clock.advance(200);
  env.ws.deliver(notification(3)).deliver(notification(2));
  env.clock.advance(1000);
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 3 }]);
});

test("an ack that could not be sent goes out after the next welcome", () => {
  const env = setup({ ackDelay: 200, random: () => 0 });
  env.ws.welcome();
  env.ws.deliver(notification(9));
  env.clock.advance(dropAndReadDelay(env));
  env.ws.welcome();
  assert.deepEqual(env.ws.frames, [{ type: "ack", id: 9 }]);
});

// --- outbox --------------------------------------------------------------------------------

test("sendMessage while disconnected queues in storage and flushes in order after the next welcome", () => {
  const storage = new MemoryStorage();
  const env = setup({ storage, random: () => 0 });
  const a = env.socket.sendMessage({ type: "mark_read", ids: [1] });
  const b = env.socket.sendMessage({ type: "mark_seen", ids: [2] });
  const c = env.socket.sendMessage({ type: "mark_all_read", client_msg_id: "mine" });
  assert.equal(c, "mine", "a given client_msg_id is kept");
  assert.notEqual(a, b);
  assert.deepEqual(env.ws.sent, [], "nothing sent while connecting");
  assert.deepEqual(JSON.parse(storage.getItem("rt-outbox")).map((m) => m.client_msg_id), [a, b, c]);

  env.ws.open();
  assert.deepEqual(env.ws.sent, [], "not before the welcome");
  env.ws.welcome();
  assert.deepEqual(env.ws.frames, [
    { type: "mark_read", ids: [1], client_msg_id: a },
    { type: "mark_seen", ids: [2], client_msg_id: b },
    { type: "mark_all_read", client_msg_id: "mine" },
  ]);
});

test("a message stays in the outbox until the server acks its client_msg_id; a reconnect re-sends it", () => {
  const storage = new MemoryStorage();
  const env = setup({ storage, random: () => 0 });
  env.ws.welcome();
  const a = env.socket.sendMessage({ type: "mark_read", ids: [1] });
  const b = env.socket.sendMessage({ type: "mark_read", ids: [2] });
  assert.deepEqual(env.ws.frames.map((m) => m.client_msg_id), [a, b], "sent at once while open");

  env.clock.advance(dropAndReadDelay(env));
  env.ws.welcome();
  assert.deepEqual(env.ws.frames.map((m) => m.client_msg_id), [a, b], "re-sent after the reconnect");

  env.ws.deliver({ type: "ack", id: null, client_msg_id: a });
  assert.deepEqual(env.socket.outbox.pending().map((m) => m.client_msg_id), [b]);
  assert.deepEqual(JSON.parse(storage.getItem("rt-outbox")).map((m) => m.client_msg_id), [b]);

  env.clock.advance(dropAndReadDelay(env));
  env.ws.welcome();
  assert.deepEqual(env.ws.frames.map((m) => m.client_msg_id), [b], "only the unacknowledged one again");

  env.ws.deliver({ type: "ack", id: null, client_msg_id: b });
  env.clock.advance(dropAndReadDelay(env));
  env.ws.welcome();
  assert.deepEqual(env.ws.sent, [], "nothing left to send");
});

test("messages queued before a reload are sent by the next page's socket", () => {
  const storage = new MemoryStorage();
  const before = setup({ storage });
  const id = before.socket.sendMessage({ type: "mark_read", ids: [8] });
  before.socket.close();

  const after = setup({ storage });
  after.ws.welcome();
  assert.deepEqual(after.ws.frames, [{ type: "mark_read", ids: [8], client_msg_id: id }]);
});

test("the outbox bound passes through the socket's options", () => {
  const warnings = [];
  const env = setup({ maxEnqueuedMessages: 2, warn: (...args) => warnings.push(args) });
  for (const id of ["a", "b", "c"]) env.socket.sendMessage({ type: "ping", client_msg_id: id });
  env.ws.welcome();
  assert.deepEqual(env.ws.frames.map((m) => m.client_msg_id), ["b", "c"]);
  assert.equal(warnings.length, 1);
});

// --- wake, offline, close ------------------------------------------------------------------

test("wake() during a pending reconnect connects at once", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  for (let i = 0; i < 5; i += 1) env.clock.advance(dropAndReadDelay(env));
  const delay = dropAndReadDelay(env);
  assert.equal(delay, 9999);
  env.socket.wake();
  assert.equal(env.sockets, 7, "a new socket right away");
  assert.equal(env.socket.status, "connecting");
  env.ws.welcome();
  env.clock.advance(delay);
  assert.equal(env.sockets, 7, "the old retry timer does not fire later");
});

test("wake() while open or connecting does nothing", () => {
  const env = setup();
  env.socket.wake();
  assert.equal(env.sockets, 1);
  env.ws.welcome();
  env.socket.wake();
  assert.equal(env.sockets, 1);
  assert.equal(env.ws.isClosed, false);
});

test("offline() says offline, closes the socket, and does not reconnect until wake()", () => {
  const env = setup({ random: () => 0 });
  env.ws.welcome();
  env.socket.offline();
  assert.deepEqual(env.statuses.at(-1), { status: "offline", retryIn: null });
  assert.equal(env.ws.isClosed, true);
  env.clock.advance(60 * 60 * 1000);
  assert.equal(env.sockets, 1, "no reconnect while offline");
  env.socket.wake();
  assert.equal(env.sockets, 2);
  assert.equal(env.socket.status, "connecting");
});

test("offline() during a pending reconnect cancels it", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  dropAndReadDelay(env);
  env.socket.offline();
  env.clock.advance(60 * 60 * 1000);
  assert.equal(env.sockets, 1);
  assert.equal(env.socket.status, "offline");
});

test("offline() leaves no timers running", () => {
  const env = setup({ ackDelay: 200 });
  env.ws.welcome();
  env.ws.deliver(notification(1)); // an ack is due
  env.socket.offline();
  assert.equal(env.clock.pending, 0, `pending: ${env.clock.pendingDelays()}`);
});

test("offline() does not reset the backoff of a connection that was not stable", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  for (let i = 0; i < 3; i += 1) env.clock.advance(dropAndReadDelay(env));
  env.ws.welcome();
  env.clock.advance(1000);
  env.socket.offline();
  env.clock.advance(60000); // longer than stableAfter, but not connected
  env.socket.wake();
  assert.equal(dropAndReadDelay(env), 3999, "the counter kept growing (4th attempt)");
});

test("close() leaves no timers pending and no open socket, and never reconnects", () => {
  const env = setup({ ackDelay: 200 });
  const ws = env.ws;
  ws.welcome();
  ws.deliver(notification(4));
  env.socket.sendMessage({ type: "mark_read", ids: [4] });
  assert.ok(env.clock.pending > 0);
  env.socket.close();
  assert.equal(env.clock.pending, 0);
  assert.equal(ws.isClosed, true);
  assert.equal(ws.closeCalls.at(-1).code, 1000);
  assert.deepEqual(ws.frames.at(-1), { type: "ack", id: 4 }, "the pending ack is flushed first");
  assert.deepEqual(env.statuses.at(-1), { status: "closed", retryIn: null });
  env.clock.advance(60 * 60 * 1000);
  env.socket.wake();
  assert.equal(env.sockets, 1);
});

test("close() during a pending reconnect cancels it", () => {
  const env = setup({ random: () => JUST_UNDER_ONE });
  dropAndReadDelay(env);
  env.socket.close();
  assert.equal(env.clock.pending, 0);
  env.clock.advance(60 * 60 * 1000);
  assert.equal(env.sockets, 1);
  assert.equal(env.socket.status, "closed");
});

test("close() while connecting closes that socket", () => {
  const env = setup();
  env.socket.close();
  assert.equal(env.ws.isClosed, true);
  assert.equal(env.clock.pending, 0);
});

test("events from a socket that was replaced are ignored", () => {
  const env = setup({ random: () => 0 });
  const old = env.ws;
  old.welcome();
  env.socket.offline();
  env.socket.wake();
  old.deliver(notification(50));
  old.serverClose(1006);
  assert.deepEqual(env.frames, []);
  assert.equal(env.sockets, 2);
  assert.equal(env.socket.status, "connecting");
});
