// The conversation on a booking's page (`section[data-conversation]`, see docs/conversations.md):
// sending through the outbox with the message shown at once, live messages in the thread's seq
// order, typing both ways, read receipts, the "Seen" mark, and the other party's presence.
//
// Without JavaScript the form posts and the page shows what the server rendered; this module
// only adds to that markup. Everything from the platform is injectable, so node tests drive it
// on a fake DOM and a fake clock.

import { newMessageId } from "../outbox.js";
import { TypingIndicator, TypingThrottle } from "../conversation/typing.js";
import { ReceiptSender } from "../conversation/receipts.js";
import { markFailed, messageItem, pendingItem, renderPresence } from "../conversation/render.js";

export const MAX_MESSAGE_CHARS = 4000;
const PRESENCE_REFRESH_MS = 30000; // "last seen 5 min ago" stays roughly true
const BOTTOM_SLACK_PX = 48; // this close to the end of the list counts as "at the bottom"

const toSeq = (value) => {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
};

export class ConversationPage {
  constructor(section, options = {}) {
    const {
      doc = globalThis.document,
      win = globalThis.window,
      now = () => Date.now(),
      setTimeout = (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout = (id) => globalThis.clearTimeout(id),
      setInterval = (fn, ms) => globalThis.setInterval(fn, ms),
      IntersectionObserver = globalThis.IntersectionObserver,
      fetchImpl = globalThis.fetch ? (...args) => globalThis.fetch(...args) : null,
    } = options;
    Object.assign(this, { section, doc, win, now, setInterval, fetchImpl });
    this.IntersectionObserver = IntersectionObserver;
    const data = section.dataset;
    this.bookingId = toSeq(data.bookingId);
    this.selfId = toSeq(data.selfId);
    this.otherId = toSeq(data.otherId);
    this.otherName = data.otherName || "The other party";
    this.readSeq = toSeq(data.readSeq);
    this.otherReadSeq = toSeq(data.otherReadSeq);
    // An older page of the thread (?before=...): new messages belong on the newest page, not
    // after these; the form posts as without the script (the server shows the newest page).
    this.paged = section.hasAttribute("data-paged");
    this.list = section.querySelector("[data-messages]");
    this.typingLine = section.querySelector("[data-typing]");
    this.presenceLine = section.querySelector("[data-presence]");
    this.form = section.querySelector("form[data-message-form]");
    this.textarea = this.form?.querySelector("textarea") ?? null;
    this.lastSeq = Math.max(toSeq(data.lastSeq), ...this.seqs());
    this.pending = new Map(); // client_msg_id -> its item, until its message frame comes
    this.rt = null;
    this.presence = null; // {online, lastSeen}
    this.newestOnScreen = false; // the newest incoming message, per the IntersectionObserver
    this.observed = null;
    this.typing = new TypingThrottle({ now });
    this.indicator = new TypingIndicator({ setTimeout, clearTimeout, onChange: (name) => this.showTyping(name) });
    this.receipts = new ReceiptSender({
      readSeq: this.readSeq,
      canSend: () => this.threadOnScreen(),
      send: (seq) => {
        this.setReadSeq(seq);
        this.rt?.sendMessage({ type: "read", booking_id: this.bookingId, seq });
      },
      setTimeout,
      clearTimeout,
    });
  }

  // Wires the page to the connection (what connectRealtime returned). Frames come in through
  // onMessage and onControl, which app.js calls.
  attach(rt) {
    this.rt = rt;
    this.section.classList.add("live"); // the list becomes a scroll box: see site.css
    if (this.list) {
      this.list.tabIndex = 0; // a scroll box the keyboard can scroll
      if (!this.list.hasAttribute("aria-label")) this.list.setAttribute("aria-label", "Messages");
    }
    this.announcer = this.doc.createElement("p");
    this.announcer.className = "visually-hidden";
    this.announcer.setAttribute("aria-live", "polite");
    this.announcer.dataset.conversationAnnouncer = "";
    this.section.append(this.announcer);
    this.enhanceForm();
    this.readRenderedPresence();
    this.setInterval(() => this.renderPresence(), PRESENCE_REFRESH_MS);
    this.doc.addEventListener("visibilitychange", () => this.onVisibility());
    this.watchNewest();
    this.renderSeen();
    this.scrollToBottom();
    this.onVisibility();
  }

  // --- frames ------------------------------------------------------------------------------

  onMessage(data) {
    if (!data || data.booking_id !== this.bookingId) return;
    if (data.type === "message" && data.message) this.receive(data.message);
    else if (data.type === "message_read") this.onRead(data);
  }

  onControl(frame) {
    if (frame.type === "error" && typeof frame.client_msg_id === "string") {
      const item = this.pending.get(frame.client_msg_id);
      if (!item) return;
      this.pending.delete(frame.client_msg_id);
      markFailed(item, frame.message || frame.code);
    } else if (frame.type === "typing") {
      if (frame.booking_id === this.bookingId && frame.user_id === this.otherId) {
        this.indicator.show(typeof frame.name === "string" && frame.name ? frame.name : this.otherName);
      }
    } else if (frame.type === "presence") {
      if (frame.user_id !== this.otherId) return;
      this.presence = { online: frame.online === true, lastSeen: frame.last_seen ?? null };
      this.renderPresence();
    }
  }

  receive(message) {
    const seq = toSeq(message.seq);
    if (!seq || !this.list || this.paged) return;
    const mine = message.sender_id === this.selfId;
    const ours = mine && typeof message.client_msg_id === "string" ? this.pending.get(message.client_msg_id) : null;
    if (ours) this.pending.delete(message.client_msg_id);
    if (this.itemAt(seq)) { // on the page already (server-rendered, or a replay)
      ours?.remove();
      return;
    }
    const follow = Boolean(ours) || this.atBottom();
    ours?.remove();
    this.insert(messageItem(this.doc, message, { selfId: this.selfId }));
    if (seq > this.lastSeq + 1) this.fillGap(); // something came before this tab listened
    this.lastSeq = Math.max(this.lastSeq, seq);
    for (const empty of this.section.querySelectorAll("[data-messages-empty]")) empty.hidden = true;
    if (mine) {
      this.setReadSeq(seq); // sending moves our own watermark (the server does the same)
    } else {
      // Sending moved their watermark to it (docs/conversations.md): they have seen ours before.
      this.setOtherReadSeq(seq);
      this.indicator.hide();
      this.announcer.textContent = `${message.sender_name || this.otherName}: ${String(message.body ?? "").slice(0, 300)}`;
      this.watchNewest();
    }
    this.renderSeen();
    if (follow) this.scrollToBottom();
    this.checkRead();
  }

  onRead(data) {
    const seq = toSeq(data.read_seq);
    if (data.reader_id === this.otherId) {
      this.setOtherReadSeq(seq);
      this.renderSeen();
    } else if (data.reader_id === this.selfId) {
      this.setReadSeq(seq); // read on another device (or tab)
    }
  }

  // --- the thread ----------------------------------------------------------------------------

  seqs() {
    return this.list ? [...this.list.querySelectorAll("li[data-seq]")].map((li) => toSeq(li.dataset.seq)) : [];
  }

  itemAt(seq) {
    return this.list.querySelector(`li[data-seq="${seq}"]`);
  }

  // In seq order, ahead of our messages still sending (they are newer than anything stored).
  insert(item) {
    const seq = toSeq(item.dataset.seq);
    const items = [...this.list.querySelectorAll("li[data-seq]")];
    const next = items.find((li) => toSeq(li.dataset.seq) > seq) ?? this.list.querySelector("li[data-pending]");
    this.list.insertBefore(item, next ?? null);
  }

  // A message frame skipped a seq: the page missed some (this tab joined after they were
  // relayed). The server-rendered page has them all; take the missing ones from it.
  async fillGap() {
    if (!this.fetchImpl || typeof this.win?.DOMParser !== "function" || this.filling) return;
    this.filling = true;
    try {
      const response = await this.fetchImpl(this.doc.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new this.win.DOMParser().parseFromString(await response.text(), "text/html");
      for (const item of fresh.querySelectorAll("[data-conversation] [data-messages] li[data-seq]")) {
        const seq = toSeq(item.dataset.seq);
        if (seq && !this.itemAt(seq)) this.insert(this.doc.importNode(item, true));
      }
      this.watchNewest();
      this.renderSeen();
      this.checkRead();
    } catch {
      // Offline: the next gap, or a reload, brings them.
    } finally {
      this.filling = false;
    }
  }

  // One "Seen", under the last of our messages the other party has read.
  renderSeen() {
    if (!this.list) return;
    let target = null;
    for (const li of this.list.querySelectorAll("li[data-seq]")) {
      if (toSeq(li.dataset.senderId) === this.selfId && toSeq(li.dataset.seq) <= this.otherReadSeq) target = li;
    }
    for (const mark of this.list.querySelectorAll("[data-seen]")) {
      if (mark.parentNode !== target) mark.remove();
    }
    if (target && !target.querySelector("[data-seen]")) {
      const mark = this.doc.createElement("p");
      mark.className = "message-seen";
      mark.dataset.seen = "";
      mark.textContent = "Seen";
      target.append(mark);
    }
  }

  newestIncoming() {
    if (!this.list) return null;
    let newest = null;
    for (const li of this.list.querySelectorAll("li[data-seq]")) {
      if (toSeq(li.dataset.senderId) !== this.selfId) newest = li;
    }
    return newest;
  }

  atBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.list;
    if (![scrollHeight, scrollTop, clientHeight].every(Number.isFinite)) return true;
    return scrollHeight - scrollTop - clientHeight <= BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    if (this.list && Number.isFinite(this.list.scrollHeight)) this.list.scrollTop = this.list.scrollHeight;
  }

  // --- read receipts -------------------------------------------------------------------------

  // Visible page, and the newest incoming message on screen (where the browser can tell).
  threadOnScreen() {
    if (this.doc.visibilityState !== "visible") return false;
    return this.observer ? this.newestOnScreen : true;
  }

  checkRead() {
    const newest = this.newestIncoming();
    if (!newest) return;
    const seq = toSeq(newest.dataset.seq);
    if (seq > this.readSeq && this.threadOnScreen()) this.receipts.offer(seq);
  }

  // Follows the newest incoming message with the IntersectionObserver (the viewport, clipped
  // by the list's own scrolling).
  watchNewest() {
    if (typeof this.IntersectionObserver !== "function") return;
    this.observer ??= new this.IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.target === this.observed) this.newestOnScreen = entry.isIntersecting;
      this.checkRead();
    });
    const newest = this.newestIncoming();
    if (newest === this.observed) return;
    if (this.observed) this.observer.unobserve(this.observed);
    this.observed = newest;
    this.newestOnScreen = false; // until the observer says so
    if (newest) this.observer.observe(newest);
  }

  setOtherReadSeq(seq) {
    if (seq <= this.otherReadSeq) return;
    this.otherReadSeq = seq;
    this.section.dataset.otherReadSeq = String(seq);
  }

  setReadSeq(seq) {
    if (seq <= this.readSeq) return;
    this.readSeq = seq;
    this.section.dataset.readSeq = String(seq);
    this.receipts.observeRead(seq);
  }

  onVisibility() {
    const visible = this.doc.visibilityState === "visible";
    this.rt?.setViewing?.(visible ? [this.bookingId] : []);
    if (visible) this.checkRead();
  }

  // --- typing and presence -------------------------------------------------------------------

  showTyping(name) {
    if (!this.typingLine) return;
    this.typingLine.textContent = name === null ? "" : `${name} is typing…`;
    this.typingLine.hidden = name === null;
  }

  // The server-rendered "last seen" (an absolute time) becomes relative and stays current.
  readRenderedPresence() {
    const time = this.presenceLine?.querySelector("time[datetime]");
    if (!time) return;
    this.presence = { online: false, lastSeen: time.getAttribute("datetime") };
    this.renderPresence();
  }

  renderPresence() {
    if (!this.presenceLine || !this.presence) return;
    renderPresence(this.doc, this.presenceLine, { name: this.otherName, ...this.presence }, this.now());
  }

  // --- sending -------------------------------------------------------------------------------

  enhanceForm() {
    if (!this.form || !this.textarea || this.paged || this.section.hasAttribute("data-closed")) return;
    this.form.noValidate = true; // our own check, with words next to the box
    // The template's error line (filled when a post without the script was refused), and
    // whatever else describes the box, kept when our error goes.
    this.error = this.form.querySelector("[data-message-error]");
    const described = (this.textarea.getAttribute("aria-describedby") ?? "").split(/\s+/);
    this.describedBy = described.filter((id) => id && id !== this.error?.id).join(" ");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener("input", () => {
      if (this.textarea.value.trim()) this.clearError();
      if (this.typing.input(this.textarea.value)) this.rt?.sendEphemeral({ type: "typing", booking_id: this.bookingId });
    });
  }

  // Returns the client_msg_id sent, or null when the text was refused here.
  submit() {
    const body = this.textarea.value.trim();
    const length = [...body].length; // characters, as the server counts them
    if (length === 0) return this.showError("Write a message first.");
    if (length > MAX_MESSAGE_CHARS) {
      return this.showError(`A message is at most 4,000 characters (this one has ${length.toLocaleString("en-US")}).`);
    }
    this.clearError();
    const id = newMessageId();
    const item = pendingItem(this.doc, body, id);
    this.pending.set(id, item);
    this.list?.append(item);
    this.scrollToBottom();
    this.rt.sendMessage({ type: "send_message", booking_id: this.bookingId, body, client_msg_id: id });
    this.textarea.value = "";
    this.typing.reset();
    return id;
  }

  showError(text) {
    if (!this.error) {
      this.error = this.doc.createElement("p");
      this.error.className = "error";
      this.error.id = `message-error-${this.bookingId}`;
      this.error.dataset.messageError = "";
      this.error.setAttribute("role", "alert");
      this.textarea.after(this.error);
    }
    this.error.textContent = text;
    this.error.hidden = false;
    this.textarea.setAttribute("aria-invalid", "true");
    this.textarea.setAttribute("aria-describedby", [this.describedBy, this.error.id].filter(Boolean).join(" "));
    this.textarea.focus();
    return null;
  }

  clearError() {
    if (!this.error || (this.error.hidden && !this.textarea.hasAttribute("aria-invalid"))) return;
    this.error.hidden = true;
    this.error.textContent = "";
    this.textarea.removeAttribute("aria-invalid");
    if (this.describedBy) this.textarea.setAttribute("aria-describedby", this.describedBy);
    else this.textarea.removeAttribute("aria-describedby");
  }
}
