// The live header (the seed's <RealtimeNotifications />): connection status in words, the bell
// with its unread badge, a keyboard-friendly dropdown of the latest notifications, toasts, and
// desktop notifications. Text from notifications is user input: textContent only, never HTML.
//
// Conversations: message frames (envelope "message") never reach the bell or the dropdown;
// they only move the unread-messages badge. A new_message notification pops up (toast,
// desktop) only when its conversation is not muted and not on screen in a visible tab.
//
// A burst (a replay after a night offline, a bulk publish) stays calm: at most three toasts and
// one "and 117 more"; what was shown is marked seen in batches (ui/seen.js), a few frames in
// all, never one per notification.

import { askDesktopPermission, desktopUnavailableReason, desktopEnabled, messageOf, showDesktop, titleFor } from "../notify.js";
import { closeWhenFocusLeaves } from "./disclosure.js";
import { SeenBatcher } from "./seen.js";
import { ToastStack, formatCount } from "./toasts.js";
import { setUnreadMessages } from "../conversation/unread.js";

const STATUS_TEXT = {
  idle: "Connecting…",
  connecting: "Connecting…",
  open: "Live",
  offline: "Offline: waiting for the network",
  "signed-out": "Signed out",
  closed: "Live updates off",
};
const MAX_ITEMS = 8;
const CRITICAL = new Set(["payment_failed", "booking_cancelled"]);

function readPrefs(body) {
  try {
    return JSON.parse(body.dataset.notificationPrefs || "{}");
  } catch {
    return {};
  }
}

export class LiveHeader {
  // Options: `toasts` (ToastStack options: max, duration...), `seenDelay` (ms).
  constructor(root, { doc = document, win = window, toasts = {}, seenDelay, now = () => Date.now() } = {}) {
    this.root = root;
    this.doc = doc;
    this.win = win;
    this.now = now;
    this.countdown = null; // the timer that moves "Reconnecting in Ns…" on each second
    this.retryButton = null;
    this.prefs = readPrefs(doc.body);
    this.status = root.querySelector("[data-rt-status]");
    this.bell = root.querySelector("[data-rt-bell]");
    this.badge = root.querySelector("[data-rt-badge]");
    this.dropdown = root.querySelector("[data-rt-dropdown]");
    this.list = root.querySelector("[data-rt-list]");
    this.empty = root.querySelector("[data-rt-empty]");
    this.markAll = root.querySelector("[data-rt-mark-all]");
    this.enableDesktop = root.querySelector("[data-rt-enable-desktop]");
    this.desktopNote = root.querySelector("[data-rt-desktop-note]");
    this.toasts = new ToastStack(doc.querySelector("[data-rt-toasts]"), { doc, win, ...toasts });
    this.seen = new SeenBatcher((ids) => this.rt?.sendMessage({ type: "mark_seen", ids }), {
      setTimeout: (fn, ms) => win.setTimeout(fn, ms),
      clearTimeout: (id) => win.clearTimeout(id),
      delay: seenDelay,
    });
    // Seen marks still collecting go into the outbox (kept in storage) before the page goes:
    // registered here, before connectRealtime's own pagehide closes the connection.
    win.addEventListener?.("pagehide", () => this.seen.flush());
    this.rt = null;
    this.shownConversations = new Set(); // booking ids this page shows a conversation of
  }

  // The conversation page says which thread it shows (its new_message pop-ups are noise there).
  showConversation(bookingId) {
    if (Number.isSafeInteger(bookingId)) this.shownConversations.add(bookingId);
  }

  // On screen right now: in this tab while visible, or (known to the leader) in another one.
  conversationOnScreen(bookingId) {
    if (this.doc.visibilityState === "visible" && this.shownConversations.has(bookingId)) return true;
    return Boolean(this.rt?.isLeader && this.rt.tab?.viewUnion?.().includes(bookingId));
  }

  // `rt` is what connectRealtime returned: sendMessage, isLeader, tab.
  attach(rt) {
    this.rt = rt;
    this.root.hidden = false;
    for (const link of this.doc.querySelectorAll("[data-rt-fallback]")) link.hidden = true;
    this.bell.addEventListener("click", () => this.toggle());
    this.dropdown.addEventListener("keydown", (event) => this.onKey(event));
    this.bell.addEventListener("keydown", (event) => this.onKey(event));
    this.doc.addEventListener("click", (event) => {
      if (!this.dropdown.hidden && !this.root.contains(event.target)) this.toggle(false);
    });
    // Tab past the last item or Shift+Tab before the bell closes it too.
    closeWhenFocusLeaves([this.bell, this.dropdown], () => !this.dropdown.hidden, () => this.toggle(false));
    this.markAll?.addEventListener("click", () => this.rt.sendMessage({ type: "mark_all_read" }));
    this.enableDesktop?.addEventListener("click", async () => {
      await askDesktopPermission(this.win);
      this.renderDesktopControl();
    });
    this.renderDesktopControl();
  }

  // --- what the socket tells -----------------------------------------------------------

  setStatus({ status, retryIn }) {
    if (this.countdown !== null) this.win.clearTimeout(this.countdown);
    this.countdown = null;
    this.status.dataset.state = status;
    if (status === "reconnecting" && retryIn) {
      this.tick(this.now() + retryIn * 1000);
    } else {
      this.status.textContent = status === "reconnecting" ? "Reconnecting…" : (STATUS_TEXT[status] ?? status);
    }
    this.showRetry(status === "reconnecting" || status === "offline");
    if (status === "signed-out") {
      const link = this.doc.createElement("a");
      link.href = "/login";
      link.textContent = "Log in again";
      this.status.append(" · ", link);
      // The page no longer belongs to anyone: it stops showing whose it was.
      for (const item of this.doc.querySelectorAll("[data-rt-account]")) item.hidden = true;
    }
  }

  // "Reconnecting in 4s…", counting down each second until the attempt.
  tick(deadline) {
    const left = Math.ceil((deadline - this.now()) / 1000);
    this.status.textContent = left > 0 ? `Reconnecting in ${left}s…` : "Reconnecting…";
    if (left > 0) this.countdown = this.win.setTimeout(() => this.tick(deadline), 1000);
  }

  // "Retry now" while the page waits to reconnect: tries at once.
  showRetry(visible) {
    if (!this.retryButton && visible) {
      this.retryButton = this.doc.createElement("button");
      this.retryButton.type = "button";
      this.retryButton.className = "link-button rt-retry";
      this.retryButton.textContent = "Retry now";
      this.retryButton.dataset.rtRetry = "";
      this.retryButton.addEventListener("click", () => this.rt?.retryNow?.());
      this.status.after(this.retryButton);
    }
    if (this.retryButton) this.retryButton.hidden = !visible;
  }

  onFrame(frame) {
    this.setUnread(frame.unread);
    this.addItem(frame);
    const event = frame.data?.type ?? frame.type;
    // Events published with a type of their own count as general notices.
    const pref = this.prefs[event] ?? this.prefs.notification ?? {};
    const critical = CRITICAL.has(event);
    const visible = this.doc.visibilityState === "visible";
    if (event === "new_message") {
      const data = frame.data ?? {};
      if (data.muted === true || this.conversationOnScreen(data.booking_id)) return; // in the dropdown only
    }
    if (visible && (critical || pref.in_app !== false) && this.toasts.show(frame)) {
      this.seen.add([frame.id]); // shown in a toast or counted in the summary
    }
    if (this.rt.isLeader && this.rt.tab?.allTabsHidden() && (critical || pref.desktop !== false)) {
      showDesktop(frame, this.win);
    }
  }

  // A conversation frame (message or receipt): counts only, never an item or a pop-up.
  onMessage(frame) {
    this.setUnread(frame.unread);
    setUnreadMessages(this.doc, frame.data?.unread_messages);
  }

  onControl(frame) {
    if (frame.type === "welcome") setUnreadMessages(this.doc, frame.unread_messages);
    if (frame.type === "replay_truncated") this.onReplayTruncated(frame);
    if (frame.type === "welcome" || frame.type === "notification_read") this.setUnread(frame.unread);
    if (frame.type === "notification_read") {
      const ids = frame.ids === null ? null : new Set(frame.ids);
      for (const item of this.list.querySelectorAll("[data-notification-id]")) {
        if (ids === null || ids.has(Number(item.dataset.notificationId))) item.classList.remove("unread");
      }
    }
  }

  // The server skips what is older than its replay limit: one calm notice, no toast per item.
  onReplayTruncated(frame) {
    if (this.doc.visibilityState !== "visible") return;
    const skipped = Number.isSafeInteger(frame.skipped) && frame.skipped > 0 ? frame.skipped : null;
    let text = "Older notifications are in your inbox";
    if (skipped === 1) text = "1 older notification is in your inbox";
    else if (skipped) text = `${formatCount(skipped)} older notifications are in your inbox`;
    this.toasts.notice(text, "/notifications", "replay-truncated");
  }

  setUnread(count) {
    if (typeof count !== "number") return;
    this.badge.textContent = String(count);
    this.badge.hidden = count === 0;
    this.bell.setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
    for (const fallback of this.doc.querySelectorAll("[data-unread-badge]")) fallback.textContent = String(count);
  }

  addItem(frame) {
    const item = this.doc.createElement("li");
    item.className = "rt-item unread";
    item.dataset.notificationId = String(frame.id);
    if (frame.key) item.dataset.key = frame.key;
    const link = this.doc.createElement("a");
    link.href = `/notifications/${frame.id}`;
    link.textContent = messageOf(frame);
    const meta = this.doc.createElement("span");
    meta.className = "muted rt-meta";
    meta.textContent = `${titleFor(frame)} · just now`;
    item.append(link, meta);
    this.list.prepend(item);
    while (this.list.children.length > MAX_ITEMS) this.list.lastElementChild.remove();
    if (this.empty) this.empty.hidden = true;
  }

  // --- the dropdown ------------------------------------------------------------------

  toggle(open = this.dropdown.hidden) {
    this.dropdown.hidden = !open;
    this.bell.setAttribute("aria-expanded", String(open));
    if (open) {
      const unseen = [...this.list.querySelectorAll(".rt-item.unread")].map((el) => Number(el.dataset.notificationId));
      this.seen.add(unseen);
      this.items()[0]?.focus();
    }
  }

  items() {
    // A hidden control (a desktop or push button not offered here) cannot take focus: skip it.
    return [...this.dropdown.querySelectorAll("a, button")].filter((el) => !el.hidden);
  }

  onKey(event) {
    if (event.key === "Escape" && !this.dropdown.hidden) {
      event.preventDefault();
      this.toggle(false);
      this.bell.focus();
      return;
    }
    if (this.dropdown.hidden || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    event.preventDefault();
    const items = this.items();
    const index = items.indexOf(this.doc.activeElement);
    const step = event.key === "ArrowDown" ? 1 : -1;
    items[(index + step + items.length) % items.length]?.focus();
  }

  renderDesktopControl() {
    if (!this.enableDesktop || !this.desktopNote) return;
    const reason = desktopUnavailableReason(this.win);
    const granted = reason === null && desktopEnabled(this.win);
    this.enableDesktop.hidden = reason !== null || granted;
    this.desktopNote.textContent = reason ?? (granted ? "Desktop notifications are on for this browser." : "");
  }
}
