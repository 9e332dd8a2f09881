import test from "node:test";
import assert from "node:assert/strict";

import { Outbox, newMessageId, OUTBOX_DEFAULTS } from "../../static/js/outbox.js";
import { MemoryStorage } from "./fakes.mjs";

const ids = (outbox) => outbox.pending().map((m) => m.client_msg_id);

test("the outbox holds 100 messages by default", () => {
  assert.equal(OUTBOX_DEFAULTS.maxEnqueuedMessages, 100);
  const warnings = [];
  const outbox = new Outbox({ warn: (...args) => warnings.push(args) });
  for (let i = 0; i < 101; i += 1) outbox.push({ type: "mark_read", client_msg_id: `m${i}` });
  assert.equal(outbox.size, 100);
  assert.equal(ids(outbox)[0], "m1");
  assert.equal(warnings.length, 1);
});

test("pushing beyond maxEnqueuedMessages drops the oldest with a warning and keeps the order", () => {
  const warnings = [];
  const outbox = new Outbox({ maxEnqueuedMessages: 3, warn: (...args) => warnings.push(args) });
  for (const id of ["a", "b", "c", "d", "e"]) outbox.push({ type: "mark_read", ids: [1], client_msg_id: id });
  assert.deepEqual(ids(outbox), ["c", "d", "e"]);
  assert.equal(warnings.length, 2, "one warning per dropped message");
  assert.match(String(warnings[0][0]), /outbox full/);
  assert.equal(warnings[0][1].client_msg_id, "a", "the warning names the dropped message");
  assert.equal(warnings[1][1].client_msg_id, "b");
});

test("no warning while the outbox has room", () => {
  const warnings = [];
  const outbox = new Outbox({ maxEnqueuedMessages: 3, warn: (...args) => warnings.push(args) });
  for (const id of ["a", "b", "c"]) outbox.push({ type: "ping", client_msg_id: id });
  assert.deepEqual(warnings, []);
});

test("messages are persisted and a new outbox on the same storage reloads them in order", () => {
  const storage = new MemoryStorage();
  const first = new Outbox({ storage, key: "box" });
  first.push({ type: "mark_read", ids: [3], client_msg_id: "one" });
  first.push({ type: "mark_seen", ids: [4], client_msg_id: "two" });
  assert.ok(storage.getItem("box"), "written to storage");

  const reloaded = new Outbox({ storage, key: "box" });
  assert.deepEqual(reloaded.pending(), [
    { type: "mark_read", ids: [3], client_msg_id: "one" },
    { type: "mark_seen", ids: [4], client_msg_id: "two" },
  ]);
  assert.equal(new Outbox({ storage, key: "another-key" }).size, 0, "keys do not mix");
});

test("ack removes only the acknowledged message, in memory and in storage", () => {
  const storage = new MemoryStorage();
  const outbox = new Outbox({ storage, key: "box" });
  for (const id of ["a", "b", "c"]) outbox.push({ type: "mark_read", client_msg_id: id });
  assert.equal(outbox.ack("b"), true);
  assert.deepEqual(ids(outbox), ["a", "c"]);
  assert.deepEqual(ids(new Outbox({ storage, key: "box" })), ["a", "c"]);
  assert.equal(outbox.ack("unknown"), false);
  assert.equal(outbox.ack("b"), false, "a second ack of the same id changes nothing");
  assert.deepEqual(ids(outbox), ["a", "c"]);
});

test("a client_msg_id already queued is not added twice", () => {
  const storage = new MemoryStorage();
  const outbox = new Outbox({ storage, key: "box" });
  outbox.push({ type: "mark_read", ids: [1], client_msg_id: "same" });
  const again = outbox.push({ type: "mark_read", ids: [1], client_msg_id: "same" });
  assert.equal(again.client_msg_id, "same");
  assert.equal(outbox.size, 1);
  assert.equal(JSON.parse(storage.getItem("box")).length, 1);
});

test("push gives a message without a client_msg_id a fresh one and does not change the caller's object", () => {
  const outbox = new Outbox();
  const message = { type: "mark_all_read" };
  const first = outbox.push(message);
  const second = outbox.push({ type: "mark_all_read" });
  assert.equal(typeof first.client_msg_id, "string");
  assert.ok(first.client_msg_id.length > 0 && first.client_msg_id.length <= 64, "fits the server's 64-character limit");
  assert.notEqual(first.client_msg_id, second.client_msg_id);
  assert.equal(message.client_msg_id, undefined);
  assert.equal(outbox.size, 2);
});

test("pending() returns a copy that callers cannot use to change the queue", () => {
  const outbox = new Outbox();
  outbox.push({ type: "ping", client_msg_id: "x" });
  outbox.pending().pop();
  assert.equal(outbox.size, 1);
});

test("corrupt storage content is ignored", () => {
  for (const raw of ["{not json", '{"client_msg_id": "x"}', '"a string"', "42", "null"]) {
    const outbox = new Outbox({ storage: new MemoryStorage({ box: raw }), key: "box" });
    assert.deepEqual(outbox.pending(), [], `ignored: ${raw}`);
  }
  const mixed = JSON.stringify([1, null, "x", { client_msg_id: 5 }, { type: "ping" }, { type: "ping", client_msg_id: "ok" }]);
  const outbox = new Outbox({ storage: new MemoryStorage({ box: mixed }), key: "box" });
  assert.deepEqual(outbox.pending(), [{ type: "ping", client_msg_id: "ok" }], "only well-formed entries survive");
  outbox.push({ type: "ping", client_msg_id: "next" });
  assert.deepEqual(ids(outbox), ["ok", "next"], "and the outbox keeps working");
});

test("a storage that refuses writes leaves a working in-memory queue", () => {
  const storage = new MemoryStorage();
  storage.setItem = () => {
    throw new Error("QuotaExceededError");
  };
  const outbox = new Outbox({ storage, key: "box" });
  outbox.push({ type: "ping", client_msg_id: "a" });
  outbox.push({ type: "ping", client_msg_id: "b" });
  assert.equal(outbox.ack("a"), true);
  assert.deepEqual(ids(outbox), ["b"]);
});

test("newMessageId returns distinct non-empty strings", () => {
  const seen = new Set();
  for (let i = 0; i < 200; i += 1) seen.add(newMessageId());
  assert.equal(seen.size, 200);
  for (const id of seen) assert.ok(typeof id === "string" && id.length > 0 && id.length <= 64);
});
