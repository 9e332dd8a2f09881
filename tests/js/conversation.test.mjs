// Conversations in the browser: the typing throttle and indicator, debounced read receipts,
// safe rendering of message text, and the page module on a fake DOM (order, dedupe, pending
// messages, refusals, "Seen", presence, receipts only while on screen).
import test from "node:test";
import assert from "node:assert/strict";

import { TypingIndicator, TypingThrottle } from "../../static/js/conversation/typing.js";
import { ReceiptSender } from "../../static/js/conversation/receipts.js";
import { linkify, messageItem, timeAgo } from "../../static/js/conversation/render.js";
import { setConversationUnread, setUnreadMessages } from "../../static/js/conversation/unread.js";
import { ConversationPage } from "../../static/js/pages/conversation.js";
import { FakeClock } from "./fakes.mjs";
import { FakeDom } from "./dom.mjs";

// --- typing: the throttle --------------------------------------------------------------------

test("typing: the first keystroke sends at once, then at most one per 3 s while typing goes on", () => {
  const clock = new FakeClock();
  const throttle = new TypingThrottle({ now: clock.now });
  const sentAt = [];
  // A keystroke every 100 ms for 10 s.
  for (let t = 0; t <= 10000; t += 100) {
    clock.advance(t - clock.t);
    if (throttle.input("h".repeat(t / 100 + 1))) sentAt.push(clock.t);
  }
  assert.deepEqual(sentAt, [0, 3000, 6000, 9000]);
});

test("typing: nothing is sent for an empty textarea, and a sent message starts a new burst", () => {
  const clock = new FakeClock();
  const throttle = new TypingThrottle({ now: clock.now });
  assert.equal(throttle.input(""), false, "cleared: not typing");
  assert.equal(throttle.input("   \n"), false, "whitespace only");
  assert.equal(throttle.input("H"), true);
  clock.advance(500);
  assert.equal(throttle.input("He"), false);
  clock.advance(2000);
  throttle.reset(); // the message went (2.5 s after our last typing frame)
  assert.equal(throttle.input("N"), true, "typing the next message says so at once");
  clock.advance(2999);
  assert.equal(throttle.input("Ne"), false);
  clock.advance(1);
  assert.equal(throttle.input("New"), true);
});

test("typing: after a quick message, the next burst waits only for the server's 2 s window", () => {
  const clock = new FakeClock();
  const throttle = new TypingThrottle({ now: clock.now });
  assert.equal(throttle.input("ok"), true);
  clock.advance(500);
  throttle.reset(); // "ok" sent half a second after its typing frame
  assert.equal(throttle.input("S"), false, "the server would drop it: within 2 s of the last");
  clock.advance(1499);
  assert.equal(throttle.input("Su"), false);
  clock.advance(1);
  assert.equal(throttle.input("Sur"), true, "2 s after the last: passed on, not 3 s");
  clock.advance(2000);
  assert.equal(throttle.input("Sure"), false, "then the usual 3 s again");
});

// --- typing: the indicator -------------------------------------------------------------------

function indicator() {
  const clock = new FakeClock();
  const changes = [];
  const typing = new TypingIndicator({ onChange: (name) => changes.push(name), setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  return { clock, changes, typing };
}

test("typing: the indicator shows the name and hides 6 s after the last typing frame", () => {
  const { clock, changes, typing } = indicator();
  typing.show("Pat");
  assert.deepEqual(changes, ["Pat"]);
  clock.advance(4000);
  typing.show("Pat"); // still typing: no new change, the 6 s start again
  clock.advance(5999);
  assert.deepEqual(changes, ["Pat"]);
  assert.equal(typing.showing, true);
  clock.advance(1);
  assert.deepEqual(changes, ["Pat", null]);
  assert.equal(typing.showing, false);
  assert.equal(clock.pending, 0);
});

test("typing: a message from them hides the indicator at once", () => {
  const { clock, changes, typing } = indicator();
  typing.show("Pat");
  clock.advance(1000);
  typing.hide();
  assert.deepEqual(changes, ["Pat", null]);
  assert.equal(clock.pending, 0, "no hide timer left behind");
  typing.hide();
  assert.deepEqual(changes, ["Pat", null], "hiding twice says nothing more");
});

// --- read receipts -----------------------------------------------------------------------------

function receipts({ readSeq = 0 } = {}) {
  const clock = new FakeClock();
  const sent = [];
  let visible = true;
  const sender = new ReceiptSender({
    readSeq, send: (seq) => sent.push(seq), canSend: () => visible,
    setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
  });
  return { clock, sent, sender, setVisible: (v) => { visible = v; } };
}

test("receipts: debounced, one receipt carrying the highest seq 500 ms after the last offer", () => {
  const { clock, sent, sender } = receipts({ readSeq: 3 });
  sender.offer(4);
  clock.advance(300);
  sender.offer(6);
  clock.advance(300);
  sender.offer(5); // an older one offered late does not lower it
  clock.advance(499);
  assert.deepEqual(sent, []);
  clock.advance(1);
  assert.deepEqual(sent, [6]);
  clock.advance(5000);
  assert.deepEqual(sent, [6], "once");
});

test("receipts: never a seq at or below the watermark, ours or one another device moved", () => {
  const { clock, sent, sender } = receipts({ readSeq: 7 });
  sender.offer(7);
  sender.offer(2);
  clock.advance(1000);
  assert.deepEqual(sent, [], "nothing new");
  sender.offer(9);
  sender.observeRead(10); // read on the phone meanwhile
  clock.advance(1000);
  assert.deepEqual(sent, [], "the phone's receipt covers it");
  sender.offer(11);
  clock.advance(500);
  sender.offer(11);
  sender.offer(10);
  clock.advance(1000);
  assert.deepEqual(sent, [11]);
});

test("receipts: none while the thread is hidden; offered again once it shows, it goes", () => {
  const { clock, sent, sender, setVisible } = receipts();
  sender.offer(2);
  setVisible(false);
  clock.advance(10000);
  assert.deepEqual(sent, [], "hidden when the debounce ran out");
  setVisible(true);
  sender.offer(2);
  clock.advance(500);
  assert.deepEqual(sent, [2]);
});

// --- rendering ---------------------------------------------------------------------------------

const texts = (nodes) => nodes.map((n) => (typeof n === "string" ? n : { a: n.textContent, href: n.href }));

test("message text is never markup: tags and entities stay text, built without innerHTML", () => {
  const doc = new FakeDom();
  const item = messageItem(doc, {
    seq: 3, sender_id: 5, sender_name: "<b>Pat</b>", body: "<img src=x onerror=alert(1)> &amp; <script>x</script>",
    created_at: "2026-12-04T10:00:00Z",
  }, { selfId: 6 });
  const body = item.querySelector(".message-body");
  assert.equal(body.textContent, "<img src=x onerror=alert(1)> &amp; <script>x</script>");
  assert.equal(item.querySelector("img"), null);
  assert.equal(item.querySelector("script"), null);
  assert.equal(item.querySelector("strong").textContent, "<b>Pat</b>");
  assert.equal(item.querySelector("b"), null);
  assert.equal(item.className, "message theirs");
  assert.equal(item.dataset.seq, "3");
  assert.equal(item.id, "m-3");
  assert.equal(item.querySelector("time").getAttribute("datetime"), "2026-12-04T10:00:00Z");
});

test("http and https URLs become links with rel=nofollow noopener noreferrer ugc and a new tab", () => {
  const doc = new FakeDom();
  const nodes = linkify(doc, "See https://example.com/a?b=1&c=<2> and http://x.org/p_(q), then (https://y.org/z).");
  assert.deepEqual(texts(nodes), [
    "See ",
    { a: "https://example.com/a?b=1&c=", href: "https://example.com/a?b=1&c=" },
    "<2> and ",
    { a: "http://x.org/p_(q)", href: "http://x.org/p_(q)" },
    ", then (",
    { a: "https://y.org/z", href: "https://y.org/z" },
    ").",
  ]);
  for (const link of nodes.filter((n) => typeof n !== "string")) {
    assert.equal(link.rel, "nofollow noopener noreferrer ugc");
    assert.equal(link.target, "_blank");
  }
});

test("javascript:, data: and other schemes stay text; only the http(s) part of a disguised one links", () => {
  const doc = new FakeDom();
  for (const text of ["javascript:alert(1)", "JavaScript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox", "ftp://files.example.com", "www.example.com", "https://", "xhttps://evil.example"]) {
    assert.deepEqual(texts(linkify(doc, text)), [text], text);
  }
  const nodes = linkify(doc, "javascript:alert(1)//https://evil.example/");
  assert.deepEqual(texts(nodes), ["javascript:alert(1)//", { a: "https://evil.example/", href: "https://evil.example/" }]);
});

test("timeAgo words", () => {
  assert.equal(timeAgo(20 * 1000), "just now");
  assert.equal(timeAgo(5 * 60 * 1000), "5 min ago");
  assert.equal(timeAgo(61 * 60 * 1000), "1 hour ago");
  assert.equal(timeAgo(5 * 3600 * 1000), "5 hours ago");
  assert.equal(timeAgo(50 * 3600 * 1000), "2 days ago");
});

// --- unread badges -----------------------------------------------------------------------------

test("unread-message badges: the header's count in words, the bookings list's per booking, hidden at 0", () => {
  const doc = new FakeDom();
  const header = doc.build(["span", { class: "badge", "data-unread-messages": true }, "9"]);
  const row42 = doc.build(["span", { class: "badge", "data-conversation-unread": "42" }]);
  const row43 = doc.build(["span", { class: "badge", "data-conversation-unread": "43" }, "1 unread message"]);
  doc.body.append(header, row42, row43);
  setUnreadMessages(doc, 4);
  assert.equal(header.textContent, "4 unread messages");
  assert.equal(header.querySelector(".visually-hidden").textContent, " unread messages");
  assert.equal(header.hidden, false);
  setUnreadMessages(doc, 0);
  assert.equal(header.hidden, true);
  setUnreadMessages(doc, undefined);
  assert.equal(header.textContent, "0 unread messages", "no count: unchanged");
  setConversationUnread(doc, 42, 2);
  assert.equal(row42.textContent, "2 unread messages");
  assert.equal(row42.hidden, false);
  assert.equal(row43.textContent, "1 unread message", "another booking's untouched");
  setConversationUnread(doc, 43, 0);
  assert.equal(row43.hidden, true);
});

// --- the page ------------------------------------------------------------------------------------

const SELF = 6;
const OTHER = 5;
const BOOKING = 42;

// A message as it arrives in a message frame's data.
const msg = (seq, senderId = OTHER, extra = {}) => ({
  id: 300 + seq, seq, sender_id: senderId, sender_name: senderId === OTHER ? "Pat" : "Sam",
  body: `message ${seq}`, created_at: "2026-12-04T10:00:00Z", client_msg_id: null, ...extra,
});
const messageData = (message, extra = {}) => ({ type: "message", booking_id: BOOKING, message, unread: 1, unread_messages: 1, ...extra });
const readData = (readerId, readSeq) => ({ type: "message_read", booking_id: BOOKING, reader_id: readerId, read_seq: readSeq, unread: 0, unread_messages: 0 });

// A fake IntersectionObserver the test drives: `intersect(target, bool)`.
function makeObserverClass() {
  const observers = [];
  class FakeIO {
    constructor(callback) {
      this.callback = callback;
      this.targets = new Set();
      observers.push(this);
    }

    observe(target) { this.targets.add(target); }

    unobserve(target) { this.targets.delete(target); }

    static intersect(target, isIntersecting) {
      for (const io of observers) if (io.targets.has(target)) io.callback([{ target, isIntersecting }]);
    }

    static watched() {
      return observers.flatMap((io) => [...io.targets]);
    }
  }
  return FakeIO;
}

// The page's markup (docs/conversations.md), rendered with messages 1..3 (3 mine, read by Pat
// up to 2) and the page wired to a recording stand-in for connectRealtime's object.
function conversationPage({ rendered = [[1, OTHER], [2, SELF], [3, OTHER]], readSeq = 3, otherReadSeq = 2,
  visibilityState = "visible", IntersectionObserver, extra = {} } = {}) {
  const doc = new FakeDom({ visibilityState });
  const clock = new FakeClock(Date.parse("2026-12-04T10:10:00Z"));
  const items = rendered.map(([seq, sender]) => ["li", { class: `message ${sender === SELF ? "mine" : "theirs"}`, "data-seq": String(seq), "data-sender-id": String(sender) },
    ["p", { class: "message-meta" }, ["strong", {}, sender === SELF ? "Sam" : "Pat"]],
    ["div", { class: "message-body" }, `message ${seq}`]]);
  const section = doc.build(["section", {
    class: "conversation", "data-conversation": true, "data-booking-id": String(BOOKING), "data-self-id": String(SELF),
    "data-other-id": String(OTHER), "data-other-name": "Pat", "data-read-seq": String(readSeq),
    "data-other-read-seq": String(otherReadSeq), "data-last-seq": String(rendered.length ? rendered.at(-1)[0] : 0),
    ...extra,
  },
  ["h2", {}, "Messages with Pat"],
  ["p", { class: "presence", "data-presence": true }, "Pat was last seen ", ["time", { datetime: "2026-12-04T10:05:00Z" }, "Dec 4, 2026, 10:05"]],
  ["ol", { class: "messages", "data-messages": true }, ...items],
  ["p", { class: "typing", "data-typing": true, hidden: true }],
  ["form", { method: "post", action: `/bookings/${BOOKING}/messages`, "data-message-form": true },
    ["textarea", { id: "message-body", name: "body", maxlength: "4000", required: true }],
    ["p", { class: "error", id: "message-error", "data-message-error": true, hidden: true, role: "alert" }],
    ["button", { type: "submit" }, "Send"]]]);
  doc.body.append(section);
  const sent = [];
  const ephemeral = [];
  const views = [];
  const rt = {
    sendMessage: (message) => { sent.push(message); return message.client_msg_id ?? `id-${sent.length}`; },
    sendEphemeral: (frame) => { ephemeral.push(frame); return true; },
    setViewing: (ids) => views.push(ids),
  };
  const intervals = [];
  const page = new ConversationPage(section, {
    doc, win: {}, now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    setInterval: (fn, ms) => intervals.push({ fn, ms }), IntersectionObserver, fetchImpl: null,
  });
  page.attach(rt);
  const textarea = section.querySelector("textarea");
  const list = section.querySelector("[data-messages]");
  return {
    doc, clock, section, page, rt, sent, ephemeral, views, intervals, textarea, list,
    seqs: () => list.querySelectorAll("li").map((li) => li.dataset.seq ?? `pending:${li.className}`),
    seenUnder: () => list.querySelectorAll("[data-seen]").map((mark) => mark.parentNode.dataset.seq),
    typingLine: section.querySelector("[data-typing]"),
    presence: section.querySelector("[data-presence]"),
    type(text) {
      textarea.value = text;
      textarea.dispatch("input");
    },
  };
}

test("page: live messages go in seq order, each seq once, whatever order they arrive in", () => {
  const env = conversationPage();
  env.page.onMessage(messageData(msg(5)));
  env.page.onMessage(messageData(msg(4)));
  env.page.onMessage(messageData(msg(3))); // server-rendered already
  env.page.onMessage(messageData(msg(5))); // a replay
  env.page.onMessage({ ...messageData(msg(6)), booking_id: 99 }); // another conversation
  assert.deepEqual(env.seqs(), ["1", "2", "3", "4", "5"]);
  assert.equal(env.list.querySelector('li[data-seq="4"] .message-body').textContent, "message 4");
});

test("page: a sent message shows at once as pending, then becomes the stored one when its frame comes", () => {
  const env = conversationPage();
  env.type("  Hello, I am at https://example.com/door  ");
  env.textarea.dispatch("keydown", { key: "Enter", shiftKey: false });
  assert.equal(env.sent.length, 1);
  const [message] = env.sent;
  assert.deepEqual({ ...message, client_msg_id: "x" }, { type: "send_message", booking_id: BOOKING, body: "Hello, I am at https://example.com/door", client_msg_id: "x" });
  assert.equal(typeof message.client_msg_id, "string");
  assert.equal(env.textarea.value, "", "cleared");
  const pending = env.list.querySelector("li.pending");
  assert.ok(pending);
  assert.equal(pending.querySelector(".message-status").textContent, "Sending…");
  assert.equal(pending.querySelector("a").href, "https://example.com/door");

  // Someone else's message lands while ours is on its way: it goes above ours.
  env.page.onMessage(messageData(msg(4)));
  assert.deepEqual(env.seqs(), ["1", "2", "3", "4", "pending:message mine pending"]);

  env.page.onMessage(messageData(msg(5, SELF, { body: message.body, client_msg_id: message.client_msg_id })));
  assert.deepEqual(env.seqs(), ["1", "2", "3", "4", "5"]);
  assert.equal(env.list.querySelector("li.pending"), null);
  assert.equal(env.list.querySelector('li[data-seq="5"]').className, "message mine");
  assert.equal(env.list.querySelector('li[data-seq="5"] strong').textContent, "You", "as the server names ours");
  assert.equal(env.section.dataset.readSeq, "5", "sending moves our own watermark");
});

test("page: Shift+Enter is a new line; empty or over-long text shows an error and sends nothing", () => {
  const env = conversationPage();
  env.type("line one");
  env.textarea.dispatch("keydown", { key: "Enter", shiftKey: true });
  assert.deepEqual(env.sent, []);

  env.type("   \n  ");
  env.section.querySelector("form").dispatch("submit");
  const error = env.section.querySelector("[data-message-error]");
  assert.equal(error.textContent, "Write a message first.");
  assert.equal(error.hidden, false);
  assert.equal(env.textarea.getAttribute("aria-invalid"), "true");
  assert.equal(env.textarea.getAttribute("aria-describedby"), "message-error");
  assert.equal(env.section.querySelectorAll("[data-message-error]").length, 1, "the template's line, not a second one");

  env.type("x".repeat(4001));
  env.section.querySelector("form").dispatch("submit");
  assert.match(error.textContent, /at most 4,000 characters \(this one has 4,001\)/);
  assert.deepEqual(env.sent, [], "nothing sent");
  assert.equal(env.list.querySelector("li.pending"), null, "nothing shown");

  env.type("😀".repeat(4000)); // 4,000 characters, 8,000 UTF-16 units
  env.section.querySelector("form").dispatch("submit");
  assert.equal(env.sent.length, 1);
  assert.equal(error.hidden, true);
  assert.equal(env.textarea.getAttribute("aria-invalid"), null);
});

test("page: a refusal naming our client_msg_id marks that message 'Not sent: <why>'", () => {
  const env = conversationPage();
  env.type("first");
  env.page.submit();
  env.type("second");
  env.page.submit();
  const [first, second] = env.sent;
  env.page.onControl({ type: "error", id: null, code: "conversation_closed", message: "This conversation is closed.", client_msg_id: second.client_msg_id });
  env.page.onControl({ type: "error", id: null, code: "bad_frame", message: "nope", client_msg_id: "someone-elses" });
  const items = env.list.querySelectorAll("li[data-client-msg-id]");
  assert.equal(items[0].className, "message mine pending");
  assert.equal(items[0].dataset.clientMsgId, first.client_msg_id);
  assert.equal(items[1].className, "message mine failed");
  assert.equal(items[1].querySelector(".message-status").textContent, "Not sent: This conversation is closed.");
});

test("page: typing sends throttled ephemeral frames and never while the box is empty", () => {
  const env = conversationPage();
  env.type("H");
  env.clock.advance(1000);
  env.type("He");
  env.clock.advance(2000);
  env.type("Hel");
  env.type("");
  assert.deepEqual(env.ephemeral, [{ type: "typing", booking_id: BOOKING }, { type: "typing", booking_id: BOOKING }]);
  assert.deepEqual(env.sent, [], "typing never goes through the outbox");
});

test("page: the other party's typing shows their name, goes 6 s later or when their message comes", () => {
  const env = conversationPage();
  const typing = (userId, bookingId = BOOKING) => env.page.onControl({ type: "typing", id: null, booking_id: bookingId, user_id: userId, name: "Pat" });
  typing(SELF); // my other device
  typing(OTHER, 99); // another conversation
  assert.equal(env.typingLine.hidden, true);
  typing(OTHER);
  assert.equal(env.typingLine.hidden, false);
  assert.equal(env.typingLine.textContent, "Pat is typing…");
  env.clock.advance(6000);
  assert.equal(env.typingLine.hidden, true);
  typing(OTHER);
  env.clock.advance(1000);
  env.page.onMessage(messageData(msg(4)));
  assert.equal(env.typingLine.hidden, true, "their message is here");
  assert.equal(env.section.querySelector("[data-conversation-announcer]").textContent, "Pat: message 4");
  assert.equal(env.section.querySelector("[data-conversation-announcer]").getAttribute("aria-live"), "polite");
});

test("page: exactly one 'Seen', under my last message the other party read; it moves live", () => {
  const env = conversationPage({ rendered: [[1, SELF], [2, SELF], [3, OTHER], [4, SELF]], readSeq: 3, otherReadSeq: 3 });
  assert.deepEqual(env.seenUnder(), ["2"]);
  env.page.onMessage(readData(OTHER, 4));
  assert.deepEqual(env.seenUnder(), ["4"]);
  assert.equal(env.section.dataset.otherReadSeq, "4");
  env.page.onMessage(messageData(msg(5, SELF)));
  assert.deepEqual(env.seenUnder(), ["4"], "not read yet");
  env.page.onMessage(readData(OTHER, 3)); // late and older: ignored
  assert.deepEqual(env.seenUnder(), ["4"]);
  env.page.onMessage(readData(SELF, 5)); // my own receipt from another device: not "Seen"
  assert.deepEqual(env.seenUnder(), ["4"]);
  assert.equal(env.section.dataset.readSeq, "5");
  env.page.onMessage(readData(OTHER, 5));
  assert.deepEqual(env.seenUnder(), ["5"]);
  assert.equal(env.list.querySelectorAll("[data-seen]")[0].textContent, "Seen");
});

test("page: a reply means they saw what came before it: 'Seen' moves without a receipt", () => {
  const env = conversationPage({ rendered: [[1, SELF], [2, OTHER]], readSeq: 2, otherReadSeq: 2 });
  assert.deepEqual(env.seenUnder(), ["1"]);
  env.page.onMessage(messageData(msg(3, SELF)));
  env.page.onMessage(messageData(msg(4)));
  assert.deepEqual(env.seenUnder(), ["3"]);
  assert.equal(env.section.dataset.otherReadSeq, "4");
});

test("page: a receipt for the newest incoming message, debounced, once it is on screen and the page visible", () => {
  const IO = makeObserverClass();
  const env = conversationPage({ readSeq: 2, IntersectionObserver: IO });
  const third = env.list.querySelector('li[data-seq="3"]');
  assert.deepEqual(IO.watched(), [third]);
  env.clock.advance(1000);
  assert.deepEqual(env.sent, [], "not on screen yet");
  IO.intersect(third, true);
  env.page.onMessage(messageData(msg(4)));
  const fourth = env.list.querySelector('li[data-seq="4"]');
  assert.deepEqual(IO.watched(), [fourth], "follows the newest");
  IO.intersect(fourth, true);
  env.clock.advance(500);
  assert.deepEqual(env.sent, [{ type: "read", booking_id: BOOKING, seq: 4 }], "one receipt, the highest");
  assert.equal(env.section.dataset.readSeq, "4");

  // Hidden: nothing, even with the message on screen; shown again: it goes.
  env.doc.setVisibility("hidden");
  env.page.onMessage(messageData(msg(5)));
  IO.intersect(env.list.querySelector('li[data-seq="5"]'), true);
  env.clock.advance(5000);
  assert.equal(env.sent.length, 1);
  env.doc.setVisibility("visible");
  env.clock.advance(500);
  assert.deepEqual(env.sent.at(-1), { type: "read", booking_id: BOOKING, seq: 5 });

  // Read on another device: no receipt of ours for it.
  env.page.onMessage(messageData(msg(6)));
  IO.intersect(env.list.querySelector('li[data-seq="6"]'), true);
  env.page.onMessage(readData(SELF, 6));
  env.clock.advance(1000);
  assert.equal(env.sent.length, 2);
});

test("page: without IntersectionObserver a visible page is enough for a receipt", () => {
  const env = conversationPage({ readSeq: 2 });
  env.clock.advance(500);
  assert.deepEqual(env.sent, [{ type: "read", booking_id: BOOKING, seq: 3 }]);
});

test("page: views follow the page's visibility", () => {
  const env = conversationPage();
  env.doc.setVisibility("hidden");
  env.doc.setVisibility("visible");
  assert.deepEqual(env.views, [[BOOKING], [], [BOOKING]]);
});

test("page: presence of the other party only, online or last seen (relative, refreshed), or not seen yet", () => {
  const env = conversationPage();
  assert.equal(env.presence.textContent, "Pat was last seen 5 min ago", "the rendered time, made relative");
  assert.equal(env.presence.querySelector("time").getAttribute("datetime"), "2026-12-04T10:05:00.000Z");
  env.page.onControl({ type: "presence", id: null, user_id: 77, online: true, last_seen: null });
  assert.equal(env.presence.textContent, "Pat was last seen 5 min ago", "someone else's presence");
  env.page.onControl({ type: "presence", id: null, user_id: OTHER, online: true, last_seen: null });
  assert.equal(env.presence.textContent, "Pat is online");
  assert.equal(env.presence.dataset.online, "true");
  assert.equal(env.presence.querySelector(".presence-dot").className, "presence-dot online");
  assert.equal(env.presence.querySelector(".presence-dot").getAttribute("aria-hidden"), "true");
  env.page.onControl({ type: "presence", id: null, user_id: OTHER, online: false, last_seen: "2026-12-04T10:09:50Z" });
  assert.equal(env.presence.textContent, "Pat was last seen just now");
  assert.equal(env.presence.dataset.online, "false");
  const [refresh] = env.intervals;
  assert.equal(refresh.ms, 30000);
  env.clock.advance(3 * 60 * 1000);
  refresh.fn();
  assert.equal(env.presence.textContent, "Pat was last seen 3 min ago");
  env.page.onControl({ type: "presence", id: null, user_id: OTHER, online: false, last_seen: null });
  assert.equal(env.presence.textContent, "Pat has not been online yet");
});

test("page: an older page of the thread, or a closed one, takes no live messages and posts its form as is", () => {
  const paged = conversationPage({ extra: { "data-paged": true } });
  paged.page.onMessage(messageData(msg(4)));
  assert.deepEqual(paged.seqs(), ["1", "2", "3"], "message 4 belongs on the newest page");
  paged.type("hello");
  paged.textarea.dispatch("keydown", { key: "Enter" });
  assert.deepEqual(paged.sent.filter((m) => m.type === "send_message"), [], "the form is not taken over");
  assert.equal(paged.section.querySelector("form").noValidate, undefined);

  const closed = conversationPage({ extra: { "data-closed": true } });
  closed.type("hello");
  closed.textarea.dispatch("keydown", { key: "Enter" });
  assert.deepEqual(closed.sent.filter((m) => m.type === "send_message"), []);
  assert.deepEqual(closed.ephemeral, [], "no typing either");
});
