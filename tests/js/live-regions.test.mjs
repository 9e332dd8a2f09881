import test from "node:test";
import assert from "node:assert/strict";

import { LiveRegions } from "../../static/js/pages/live-regions.js";
import { settle } from "./fakes.mjs";

// Just enough DOM: regions are objects with a name and innerHTML; the "fetched page" is JSON
// {name: html}, parsed by a stand-in DOMParser.
class Region {
  constructor(doc, name, html) {
    this.doc = doc;
    this.dataset = { liveRegion: name };
    this.innerHTML = html;
    this.focused = false;
  }

  replaceWith(node) {
    const i = this.doc.regions.indexOf(this);
    this.doc.regions[i] = node;
    node.doc = this.doc;
  }

  contains(element) {
    return element === this;
  }

  focus() {
    this.focused = true;
    this.doc.activeElement = this;
  }
}

function fakeDocument(regions) {
  const doc = {
    regions: [],
    activeElement: null,
    location: { href: "https://example.test/bookings/42" },
    querySelector(selector) {
      if (selector === "[data-live-region]") return doc.regions[0] ?? null;
      const match = /^\[data-live-region="(.*)"\]$/.exec(selector);
      return match ? doc.regions.find((r) => r.dataset.liveRegion === match[1]) ?? null : null;
    },
    querySelectorAll(selector) {
      return selector === "[data-live-region]" ? [...doc.regions] : [];
    },
    importNode(node) {
      return new Region(doc, node.dataset.liveRegion, node.innerHTML);
    },
  };
  for (const [name, html] of Object.entries(regions)) doc.regions.push(new Region(doc, name, html));
  return doc;
}

function withDomGlobals(t) {
  const saved = { DOMParser: globalThis.DOMParser, CSS: globalThis.CSS };
  globalThis.DOMParser = class {
    parseFromString(text) {
      const fresh = fakeDocument(JSON.parse(text));
      return fresh;
    }
  };
  globalThis.CSS = { escape: (s) => String(s).replace(/["\\]/g, "\\$&") };
  t.after(() => {
    globalThis.DOMParser = saved.DOMParser;
    globalThis.CSS = saved.CSS;
  });
}

function fakeFetch(pages) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    const page = typeof pages === "function" ? pages(calls.length) : pages;
    if (page instanceof Error) throw page;
    return { ok: page.ok ?? true, text: async () => JSON.stringify(page.body ?? page) };
  };
  fetchImpl.calls = calls;
  return fetchImpl;
}

test("an update on a page without live regions fetches nothing", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const fetchImpl = fakeFetch({});
  const regions = new LiveRegions({ doc: fakeDocument({}), fetchImpl });
  regions.changed();
  t.mock.timers.tick(1000);
  await settle();
  assert.equal(fetchImpl.calls.length, 0);
});

test("a burst of updates is coalesced into one fetch of the current page, 150 ms after the last", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  withDomGlobals(t);
  const fetchImpl = fakeFetch({ status: "<b>Accepted</b>" });
  const doc = fakeDocument({ status: "Pending" });
  const regions = new LiveRegions({ doc, fetchImpl });
  regions.changed();
  t.mock.timers.tick(100);
  regions.changed();
  t.mock.timers.tick(100);
  regions.changed();
  t.mock.timers.tick(149);
  assert.equal(fetchImpl.calls.length, 0);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(fetchImpl.calls.length, 1);
  assert.equal(fetchImpl.calls[0].url, "https://example.test/bookings/42");
  assert.equal(fetchImpl.calls[0].init.credentials, "same-origin");
});

test("refresh replaces the regions that changed, keeps the others, and calls onUpdated", async (t) => {
  withDomGlobals(t);
  const doc = fakeDocument({ status: "Pending", actions: "<button>Cancel</button>" });
  const keep = doc.regions[1];
  let updated = 0;
  const regions = new LiveRegions({
    doc,
    fetchImpl: fakeFetch({ status: "Accepted", actions: "<button>Cancel</button>" }),
    onUpdated: () => { updated += 1; },
  });
  await regions.refresh();
  assert.equal(doc.regions[0].innerHTML, "Accepted");
  assert.equal(doc.regions[1], keep, "an unchanged region is left alone");
  assert.equal(updated, 1);
});

test("a replaced region that had the focus gets it back", async (t) => {
  withDomGlobals(t);
  const doc = fakeDocument({ actions: "<button>Accept</button>" });
  doc.activeElement = doc.regions[0];
  const regions = new LiveRegions({ doc, fetchImpl: fakeFetch({ actions: "<button>Complete</button>" }) });
  await regions.refresh();
  assert.equal(doc.regions[0].innerHTML, "<button>Complete</button>");
  assert.equal(doc.regions[0].focused, true);
});

test("a failed response or a network error changes nothing", async (t) => {
  withDomGlobals(t);
  for (const page of [{ ok: false, body: { status: "Error page" } }, new Error("offline")]) {
    const doc = fakeDocument({ status: "Pending" });
    let updated = 0;
    const regions = new LiveRegions({ doc, fetchImpl: fakeFetch(page), onUpdated: () => { updated += 1; } });
    await regions.refresh();
    assert.equal(doc.regions[0].innerHTML, "Pending");
    assert.equal(updated, 0);
    assert.equal(regions.running, false, "ready for the next update");
  }
});

test("an update during a refresh triggers another refresh afterwards", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  withDomGlobals(t);
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const calls = [];
  const fetchImpl = async () => {
    calls.push(1);
    if (calls.length === 1) await gate;
    return { ok: true, text: async () => JSON.stringify({ status: `v${calls.length}` }) };
  };
  const doc = fakeDocument({ status: "v0" });
  const regions = new LiveRegions({ doc, fetchImpl });
  const first = regions.refresh();
  await regions.refresh(); // while the first is running: remembered, not run in parallel
  assert.equal(calls.length, 1);
  release();
  await first;
  t.mock.timers.tick(150);
  await settle();
  assert.equal(calls.length, 2);
  assert.equal(doc.regions[0].innerHTML, "v2");
});
