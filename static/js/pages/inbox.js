// The inbox page (/notifications) made live: new notifications go on top as they arrive, read
// marks from this or any other tab or device show at once, "Mark read" and "Mark all read" work
// without a reload, and "Load more" appends the next older page in place.
//
// Without this script the page is complete as served: forms post and redirect back, "Load
// more" is a link to the older page (?before=<id>, a cursor, so items arriving at the top do
// not shift it). Items that arrive live are built with DOM calls and textContent (never HTML
// from data) into the same markup as templates/notifications/_notification.html. The pages
// "Load more" fetches are that same template, rendered and escaped by the server
// (?fragment=1), parsed into an inert document and moved over.

import { messageOf } from "../notify.js";

// "new_booking" -> "New booking", as the template's `replace("_", " ") | capitalize`.
export function eventLabel(frame) {
  const type = frame?.data?.type;
  const event = typeof type === "string" && type ? type : String(frame?.type ?? "notification");
  const words = event.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1).toLowerCase();
}

// The inbox item (li[data-notification-id]) a node is in, or null.
function itemOf(node) {
  for (let n = node; n; n = n.parentNode) if (n.dataset?.notificationId) return n;
  return null;
}

export class InboxPage {
  // `localize` shows <time> elements in local time (localtime.js, which app.js passes in);
  // `fetch` and `parse` (text -> document) are injectable for tests.
  constructor(root, { doc = document, win = window, fetch, parse, localize = () => {} } = {}) {
    this.root = root;
    this.doc = doc;
    this.win = win;
    this.fetch = fetch ?? ((...args) => win.fetch(...args));
    this.parse = parse ?? ((text) => new win.DOMParser().parseFromString(text, "text/html"));
    this.list = root.querySelector("[data-inbox-list]");
    this.empty = root.querySelector("[data-inbox-empty]");
    this.kind = root.dataset.kind || null;
    // Only the newest page takes live items: an older page (?before=) ends below them.
    this.live = !root.hasAttribute("data-older");
    this.localize = localize;
    this.rt = null;
    this.loading = false;
  }

  attach(rt) {
    this.rt = rt;
    // One listener for every item's form, including the ones added later.
    this.list.addEventListener("submit", (event) => this.onSubmit(event));
    this.readAll()?.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rt.sendMessage({ type: "mark_all_read" });
      this.markRead(null);
    });
    this.wireMore();
  }

  readAll() {
    return this.doc.querySelector("[data-inbox-read-all]");
  }

  has(id) {
    return this.list.querySelector(`[data-notification-id="${Number(id)}"]`) !== null;
  }

  // --- live -----------------------------------------------------------------------------

  // A notification frame (any envelope type but conversation messages).
  onFrame(frame) {
    if (!this.live || !Number.isSafeInteger(frame?.id) || this.has(frame.id)) return;
    if (this.kind && frame.type !== this.kind) return;
    const item = this.build(frame);
    this.list.prepend(item);
    if (this.empty) this.empty.hidden = true;
    this.localize(item);
  }

  onControl(frame) {
    if (frame?.type !== "notification_read") return;
    this.markRead(Array.isArray(frame.ids) ? frame.ids : null);
    if (frame.unread === 0) {
      const all = this.readAll();
      if (all) all.hidden = true;
    }
  }

  // Marks items read as the server has them now: `ids` null means all.
  markRead(ids) {
    const wanted = ids === null ? null : new Set(ids.map(Number));
    for (const item of this.list.querySelectorAll("[data-notification-id]")) {
      if (wanted !== null && !wanted.has(Number(item.dataset.notificationId))) continue;
      item.classList.remove("unread");
      item.querySelector(".tag")?.remove();
      item.querySelector("form")?.remove();
    }
  }

  onSubmit(event) {
    const item = itemOf(event.target);
    if (!item || !this.rt) return;
    event.preventDefault();
    const id = Number(item.dataset.notificationId);
    // Through the socket's outbox: sent now, or on reconnect; the server then tells every
    // device (this one too) with notification_read, which also moves the badge.
    this.rt.sendMessage({ type: "mark_read", ids: [id] });
    // Focus would be lost with the button: keep it on the item's link.
    item.querySelector("a")?.focus();
    this.markRead([id]);
  }

  // The markup of templates/notifications/_notification.html, from DOM calls.
  build(frame) {
    const doc = this.doc;
    const el = (tag, attrs = {}, ...children) => {
      const node = doc.createElement(tag);
      for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
      node.append(...children);
      return node;
    };
    const id = frame.id;
    const tag = el("span", { class: "tag" });
    tag.textContent = "Unread";
    const link = el("a", { href: `/notifications/${id}` });
    link.textContent = messageOf(frame);
    const time = el("time");
    if (typeof frame.created_at === "string") {
      time.setAttribute("datetime", frame.created_at);
      time.textContent = frame.created_at;
    } else {
      time.textContent = "just now";
    }
    const reached = el("span", { "data-reached-by": "" });
    reached.textContent = "Shown live";
    const item = el("li", {
      class: "card notification unread",
      "data-notification-id": String(id),
      "data-key": frame.key ?? "",
      "data-type": String(frame.type ?? ""),
    },
    el("p", {}, tag, " ", link),
    el("p", { class: "muted" }, eventLabel(frame), " · ", time, " · ", reached));
    const token = doc.querySelector(`input[name="csrf_token"]`)?.getAttribute("value");
    if (token) {
      const form = el("form", { method: "post", action: `/notifications/${id}/read`, class: "inline-form" },
        el("input", { type: "hidden", name: "csrf_token", value: token }));
      const button = el("button", { type: "submit", class: "button small" });
      button.textContent = "Mark read";
      form.append(button);
      item.append(form);
    }
    return item;
  }

  // --- load more ------------------------------------------------------------------------

  wireMore() {
    const link = this.root.querySelector("[data-inbox-more]");
    link?.addEventListener("click", (event) => {
      event.preventDefault();
      this.loadMore(link);
    });
  }

  async loadMore(link) {
    if (this.loading) return;
    this.loading = true;
    const nav = this.root.querySelector("[data-inbox-more-nav]");
    link.setAttribute("aria-busy", "true");
    try {
      const url = new URL(link.getAttribute("href"), this.win.location.href);
      url.searchParams.set("fragment", "1");
      const response = await this.fetch(url.pathname + url.search, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      // Signed out meanwhile (a redirect to the login page), or an error: follow the link.
      if (!response.ok || response.redirected) throw new Error(`load more: ${response.status}`);
      const page = this.parse(await response.text());
      const added = [];
      for (const item of page.querySelectorAll("[data-inbox-page] [data-notification-id]")) {
        if (this.has(item.dataset.notificationId)) continue;
        const node = this.doc.importNode ? this.doc.importNode(item, true) : item;
        this.list.append(node);
        added.push(node);
      }
      const nextNav = page.querySelector("[data-inbox-more-nav]");
      if (nextNav) {
        nav?.after(this.doc.importNode ? this.doc.importNode(nextNav, true) : nextNav);
        nav?.remove();
        this.wireMore();
      } else {
        nav?.remove(); // the end: no more pages
      }
      this.localize(this.list);
      // Focus the first new item, so a keyboard user reads on where they were.
      added[0]?.querySelector("a")?.focus();
    } catch {
      this.win.location.assign(link.getAttribute("href"));
    } finally {
      this.loading = false;
      link.removeAttribute("aria-busy");
    }
  }
}
