// The live inbox page (static/js/pages/inbox.js) on the fake DOM: live items on top in the
// server's markup, no duplicates, read marks from anywhere, Mark read without a reload, and
// "Load more" appending the next page fetched as a fragment.
import test from "node:test";
import assert from "node:assert/strict";

import { InboxPage, eventLabel } from "../../static/js/pages/inbox.js";
import { FakeDom } from "./dom.mjs";

const frame = (id, extra = {}) => ({
  id, seq: id, type: "notification", key: null, unread: 1,
  data: { message: `Notice <b>#${id}</b>` }, created_at: "2026-11-25T19:31:15Z", ...extra,
});

// The markup of a server-rendered item (templates/notifications/_notification.html).
const serverItem = (id, { read = false } = {}) => ["li",
  { class: `card notification${read ? "" : " unread"}`, "data-notification-id": String(id), "data-key": "" },
  ["p", {}, ...(read ? [] : [["span", { class: "tag" }, "Unread"]]), ["a", { href: `/notifications/${id}` }, `Server ${id}`]],
  ["p", { class: "muted" }, "Notification"],
  ...(read ? [] : [["form", { method: "post", action: `/notifications/${id}/read`, class: "inline-form" },
    ["input", { type: "hidden", name: "csrf_token", value: "tok" }],
    ["button", { type: "submit", class: "button small" }, "Mark read"]]]),
];

const moreNav = (before) => ["nav", { class: "pagination cluster", "data-inbox-more-nav": true },
  ["a", { class: "button", href: `/notifications?before=${before}`, "data-inbox-more": true }, "Load more"]];

function setup({ ids = [], older = false, kind = "", more = null } = {}) {
  const doc = new FakeDom();
  // Like the DOM's: the node (a copy there) now belongs to this document.
  doc.importNode = (node) => {
    const adopt = (n) => { n.ownerDocument = doc; n.childNodes.forEach(adopt); };
    node.remove();
    adopt(node);
    return node;
  };
  const readAll = doc.build(["form", { method: "post", action: "/notifications/read-all", "data-inbox-read-all": true },
    ["input", { type: "hidden", name: "csrf_token", value: "tok" }], ["button", { type: "submit" }, "Mark all read"]]);
  const attrs = { "data-inbox": true, "data-kind": kind };
  if (older) attrs["data-older"] = true;
  const root = doc.build(["section", attrs,
    ["div", { class: "empty-state", "data-inbox-empty": true, hidden: ids.length > 0 }, ["p", {}, "No notifications yet."]],
    ["ul", { "data-inbox-list": true }, ...ids.map((id) => serverItem(id))],
    ...(more ? [moreNav(more)] : []),
  ]);
  doc.body.append(readAll, root);
  const fetched = [];
  const pages = new Map();
  const assigned = [];
  const win = { location: { href: "http://site.test/notifications", assign: (url) => assigned.push(url) } };
  const inbox = new InboxPage(root, {
    doc, win,
    fetch: async (url) => {
      fetched.push(url);
      const page = pages.get(url);
      return page ? { ok: true, redirected: false, status: 200, text: async () => url } : { ok: false, status: 500, text: async () => "" };
    },
    parse: (url) => pages.get(url),
  });
  const sent = [];
  inbox.attach({ sendMessage: (message) => { sent.push(message); return "m1"; } });
  const list = root.querySelector("[data-inbox-list]");
  const idsShown = () => list.querySelectorAll("[data-notification-id]").map((el) => Number(el.dataset.notificationId));
  // A fragment as GET /notifications?before=N&fragment=1 answers it.
  const addPage = (url, itemIds, next = null) => {
    const page = new FakeDom();
    page.body.append(page.build(["ul", { "data-inbox-page": true }, ...itemIds.map((id) => serverItem(id))]));
    if (next) page.body.append(page.build(moreNav(next)));
    pages.set(url, page);
  };
  return { doc, root, list, inbox, sent, fetched, assigned, idsShown, addPage, readAll };
}

const submit = (form) => {
  let prevented = false;
  form.dispatch("submit", { target: form, preventDefault: () => { prevented = true; } });
  return prevented;
};

test("a new notification goes on top in the server's markup, its text as text", () => {
  const { list, inbox, idsShown } = setup({ ids: [5, 4] });
  inbox.onFrame(frame(9, { type: "booking_update", key: "booking:3", data: { type: "new_booking", message: "Pat <script>" } }));
  assert.deepEqual(idsShown(), [9, 5, 4]);
  const item = list.children[0];
  assert.equal(item.className, "card notification unread");
  assert.equal(item.dataset.key, "booking:3");
  assert.equal(item.querySelector(".tag").textContent, "Unread");
  const link = item.querySelector("a");
  assert.equal(link.getAttribute("href"), "/notifications/9", "opening it marks it read (the server's open route)");
  assert.equal(link.textContent, "Pat <script>");
  assert.equal(link.children.length, 0, "text, never markup");
  assert.match(item.querySelector("p.muted").textContent, /^New booking · 2026-11-25T19:31:15Z · Shown live$/);
  assert.equal(item.querySelector("time").getAttribute("datetime"), "2026-11-25T19:31:15Z");
  const form = item.querySelector("form");
  assert.equal(form.getAttribute("action"), "/notifications/9/read");
  assert.equal(form.querySelector("input").getAttribute("value"), "tok", "the page's CSRF token, for a form post");
  assert.equal(form.querySelector("button").textContent, "Mark read");
});

test("the same id twice (a replay after a live delivery) is shown once", () => {
  const { inbox, idsShown } = setup({ ids: [5] });
  inbox.onFrame(frame(6));
  inbox.onFrame(frame(6));
  inbox.onFrame(frame(5)); // rendered by the server already
  assert.deepEqual(idsShown(), [6, 5]);
});

test("the empty state goes when the first notification arrives", () => {
  const { root, inbox, idsShown } = setup({ ids: [] });
  const empty = root.querySelector("[data-inbox-empty]");
  assert.equal(empty.hidden, false);
  inbox.onFrame(frame(1));
  assert.equal(empty.hidden, true);
  assert.deepEqual(idsShown(), [1]);
});

test("an older page, and a filtered page of another kind, take no live items", () => {
  const older = setup({ ids: [3], older: true });
  older.inbox.onFrame(frame(9));
  assert.deepEqual(older.idsShown(), [3]);
  const payments = setup({ ids: [3], kind: "payment_update" });
  payments.inbox.onFrame(frame(8, { type: "booking_update" }));
  payments.inbox.onFrame(frame(9, { type: "payment_update" }));
  assert.deepEqual(payments.idsShown(), [9, 3]);
});

test("a read mark from another tab or device turns those items read; ids null means all", () => {
  const { list, inbox, readAll } = setup({ ids: [3, 2, 1] });
  const item = (id) => list.querySelector(`[data-notification-id="${id}"]`);
  inbox.onControl({ type: "notification_read", id: null, ids: [2], unread: 2 });
  assert.equal(item(2).classList.contains("unread"), false);
  assert.equal(item(2).querySelector(".tag"), null);
  assert.equal(item(2).querySelector("form"), null, "no Mark read on a read item");
  assert.equal(item(3).classList.contains("unread"), true);
  assert.equal(readAll.hidden, false);
  inbox.onControl({ type: "notification_read", id: null, ids: null, unread: 0 });
  assert.ok([1, 2, 3].every((id) => !item(id).classList.contains("unread")));
  assert.equal(readAll.hidden, true, "nothing left to mark");
});

test("Mark read sends mark_read over the socket instead of posting, and the item turns read", () => {
  const { list, inbox, sent, doc } = setup({ ids: [3, 2] });
  inbox.onFrame(frame(4)); // a live one works the same
  for (const id of [2, 4]) {
    const item = list.querySelector(`[data-notification-id="${id}"]`);
    assert.equal(submit(item.querySelector("form")), true, "no page load");
    assert.equal(item.classList.contains("unread"), false);
    assert.equal(doc.activeElement, item.querySelector("a"), "focus stays on the item");
  }
  assert.deepEqual(sent, [{ type: "mark_read", ids: [2] }, { type: "mark_read", ids: [4] }]);
});

test("Mark all read on the page sends mark_all_read and marks every item", () => {
  const { list, sent, readAll } = setup({ ids: [3, 2] });
  assert.equal(submit(readAll), true);
  assert.deepEqual(sent, [{ type: "mark_all_read" }]);
  assert.equal(list.querySelectorAll(".unread").length, 0);
});

test("Load more appends the next page, focuses its first item, and goes at the end", async () => {
  const env = setup({ ids: [30, 29], more: 29 });
  env.addPage("/notifications?before=29&fragment=1", [28, 27], 27);
  env.addPage("/notifications?before=27&fragment=1", [26]);
  const more = () => env.root.querySelector("[data-inbox-more]");
  more().click();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(env.idsShown(), [30, 29, 28, 27]);
  assert.equal(env.doc.activeElement?.getAttribute("href"), "/notifications/28");
  assert.equal(more().getAttribute("href"), "/notifications?before=27", "the next cursor");
  // Items arriving live at the top meanwhile do not change what the next page holds.
  env.inbox.onFrame(frame(31));
  more().click();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(env.idsShown(), [31, 30, 29, 28, 27, 26]);
  assert.equal(more(), null, "no more pages: no button");
  assert.deepEqual(env.fetched, ["/notifications?before=29&fragment=1", "/notifications?before=27&fragment=1"]);
  assert.deepEqual(env.assigned, []);
  // Mark read works on appended items too.
  assert.equal(submit(env.list.querySelector('[data-notification-id="26"] form')), true);
  assert.deepEqual(env.sent, [{ type: "mark_read", ids: [26] }]);
});

test("when the fragment cannot be fetched, Load more falls back to opening the older page", async () => {
  const env = setup({ ids: [30], more: 30 });
  env.root.querySelector("[data-inbox-more]").click();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(env.assigned, ["/notifications?before=30"]);
  assert.deepEqual(env.idsShown(), [30]);
});

test("event labels read like the server's", () => {
  assert.equal(eventLabel({ type: "payment_update", data: { type: "payment_received" } }), "Payment received");
  assert.equal(eventLabel({ type: "notification", data: {} }), "Notification");
  assert.equal(eventLabel({ type: "notification", data: { type: "Big_NEWS" } }), "Big news");
});
