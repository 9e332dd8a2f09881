// The toasts in the page's aria-live="polite" region: at most `max` notification toasts at
// once; what arrives while they are full goes into one summary toast, "and 117 more", linking
// to the inbox, its count updating, until it goes. Notices (like "19,000 older notifications
// are in your inbox") are toasts of their own. Text is set with textContent only.

import { messageOf, titleFor } from "../notify.js";

export const TOAST_DEFAULTS = Object.freeze({
  max: 3, // notification toasts shown at once
  duration: 6000, // ms before a toast goes by itself (the summary: after its last update)
  noticeDuration: 12000, // ms for a notice
  inbox: "/notifications",
});

export function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

export class ToastStack {
  constructor(region, { doc = globalThis.document, win = globalThis.window, ...options } = {}) {
    this.region = region;
    this.doc = doc;
    this.win = win;
    this.options = { ...TOAST_DEFAULTS, ...options };
    this.visible = new Set(); // the notification toasts on screen
    this.summary = null; // {element, link, count, timer}
    this.gone = new Map(); // toast on screen -> what to do when it goes
    this.notices = new Map(); // key -> {element, link} of a notice on screen
  }

  // Shows a notification: "toast" when it got its own, "summary" when it was counted in the
  // summary, null without a region.
  show(frame) {
    if (!this.region) return null;
    if (this.summary || this.visible.size >= this.options.max) {
      this.count(1);
      return "summary";
    }
    const toast = this.element("toast");
    toast.dataset.notificationId = String(frame.id);
    const title = this.doc.createElement("strong");
    title.textContent = titleFor(frame);
    const link = this.doc.createElement("a");
    link.href = `/notifications/${frame.id}`;
    link.textContent = messageOf(frame);
    this.visible.add(toast);
    this.finish(toast, [title, link], this.options.duration, () => this.visible.delete(toast));
    return "toast";
  }

  // A calm notice with a link (not counted against `max`). A notice with the same `key` still
  // on screen gets the new text instead of a second toast.
  notice(text, href = this.options.inbox, key = null) {
    if (!this.region) return null;
    const current = key === null ? null : this.notices.get(key);
    if (current && this.gone.has(current.element)) {
      current.link.textContent = text;
      current.link.href = href;
      return current.element;
    }
    const toast = this.element("toast toast-notice");
    toast.dataset.rtNotice = key ?? "";
    const link = this.doc.createElement("a");
    link.href = href;
    link.textContent = text;
    if (key !== null) this.notices.set(key, { element: toast, link });
    this.finish(toast, [link], this.options.noticeDuration, () => {
      if (key !== null && this.notices.get(key)?.element === toast) this.notices.delete(key);
    });
    return toast;
  }

  // --- the summary ---------------------------------------------------------------------

  count(n) {
    if (!this.summary) {
      const toast = this.element("toast toast-summary");
      toast.dataset.rtSummary = "";
      const link = this.doc.createElement("a");
      link.href = this.options.inbox;
      const summary = { element: toast, link, count: 0, timer: null };
      this.summary = summary;
      this.finish(toast, [link], null, () => {
        if (summary.timer !== null) this.win.clearTimeout(summary.timer);
        if (this.summary === summary) this.summary = null;
      });
    }
    const summary = this.summary;
    summary.count += n;
    summary.element.dataset.count = String(summary.count);
    summary.link.textContent = `and ${formatCount(summary.count)} more`;
    // It stays while more keep coming.
    if (summary.timer !== null) this.win.clearTimeout(summary.timer);
    summary.timer = this.win.setTimeout(() => this.dismiss(summary.element), this.options.duration);
  }

  // --- helpers ---------------------------------------------------------------------------

  element(className) {
    const toast = this.doc.createElement("div");
    toast.className = className;
    return toast;
  }

  // Adds the dismiss button, puts the toast in the region, and arranges its going.
  finish(toast, parts, duration, onGone) {
    const dismiss = this.doc.createElement("button");
    dismiss.type = "button";
    dismiss.className = "toast-close";
    dismiss.setAttribute("aria-label", "Dismiss");
    dismiss.textContent = "×";
    dismiss.addEventListener("click", () => this.dismiss(toast));
    this.gone.set(toast, onGone);
    toast.append(...parts, dismiss);
    this.region.append(toast);
    if (duration !== null) this.win.setTimeout(() => this.dismiss(toast), duration);
  }

  dismiss(toast) {
    const onGone = this.gone.get(toast);
    this.gone.delete(toast);
    onGone?.();
    toast.remove();
  }
}
