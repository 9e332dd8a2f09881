import test from "node:test";
import assert from "node:assert/strict";

import { backoffDelay, serverDelay, BACKOFF_DEFAULTS } from "../../static/js/backoff.js";
import { sequence } from "./fakes.mjs";

const JUST_UNDER_ONE = 0.999999;

test("the defaults are a 500 ms first cap and a 10 s largest cap (a page is never stale long after a restart)", () => {
  assert.equal(BACKOFF_DEFAULTS.minReconnectionDelay, 500);
  assert.equal(BACKOFF_DEFAULTS.maxReconnectionDelay, 10000);
});

test("the bound of each attempt's draw doubles from minReconnectionDelay and stops at maxReconnectionDelay", () => {
  const options = { minReconnectionDelay: 500, maxReconnectionDelay: 30000 };
  const draws = [];
  for (let attempt = 0; attempt < 12; attempt += 1) draws.push(backoffDelay(attempt, options, () => JUST_UNDER_ONE));
  // random() just under 1 draws just under the bound: bound - 1 after flooring.
  assert.deepEqual(draws, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999, 29999, 29999]);
});

test("the default options give the same doubling bounds", () => {
  const bounds = [0, 1, 2, 3, 4, 5, 6, 40].map((attempt) => backoffDelay(attempt, {}, () => JUST_UNDER_ONE) + 1);
  assert.deepEqual(bounds, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
});

test("no draw ever reaches or exceeds its bound, whatever random() returns in [0, 1)", () => {
  const options = { minReconnectionDelay: 300, maxReconnectionDelay: 10000 };
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const bound = Math.min(10000, 300 * 2 ** attempt);
    for (const r of [0, 0.25, 0.5, 0.75, 0.999, JUST_UNDER_ONE, 1 - Number.EPSILON]) {
      const delay = backoffDelay(attempt, options, () => r);
      assert.ok(Number.isInteger(delay), `attempt ${attempt}: ${delay} is an integer`);
      assert.ok(delay >= 0 && delay < bound, `attempt ${attempt}, random ${r}: ${delay} < ${bound}`);
    }
  }
});

test("random() = 0 gives a zero delay on every attempt (full jitter, no floor)", () => {
  for (const attempt of [0, 1, 5, 30]) assert.equal(backoffDelay(attempt, {}, () => 0), 0);
});

test("random() close to 1 gives a delay just under the cap", () => {
  const delay = backoffDelay(20, { minReconnectionDelay: 500, maxReconnectionDelay: 30000 }, () => 0.999);
  assert.equal(delay, 29970);
  assert.ok(delay < 30000);
});

test("a huge attempt number stays at the cap instead of overflowing", () => {
  assert.equal(backoffDelay(5000, {}, () => 0.5), 5000);
  assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, {}, () => 0.5), 5000);
});

test("a negative attempt is treated as the first one", () => {
  assert.equal(backoffDelay(-3, {}, () => JUST_UNDER_ONE), 499);
});

test("the jitter is drawn anew for every attempt, not once", () => {
  const random = sequence(0.1, 0.9, 0.4);
  const first = backoffDelay(0, {}, random);
  const second = backoffDelay(0, {}, random);
  const third = backoffDelay(0, {}, random);
  assert.equal(random.calls(), 3, "one random() call per delay");
  assert.deepEqual([first, second, third], [50, 450, 200]);
});

test("serverDelay reads the delay from the server's shutdown close reason", () => {
  assert.equal(serverDelay("reconnect in 1200 ms"), 1200);
  assert.equal(serverDelay("reconnect in 0 ms"), 0);
  assert.equal(serverDelay("server shutting down, reconnect in 45000 ms"), 45000);
});

test("serverDelay rejects reasons that do not name a delay", () => {
  for (const junk of [undefined, null, "", "going away", "reconnect in ms", "reconnect in -5 ms",
    "reconnect in 1.5 ms", "reconnect in 12 s", "RECONNECT soon", "reconnect in abc ms"]) {
    assert.equal(serverDelay(junk), null, `${JSON.stringify(junk)} names no delay`);
  }
});
