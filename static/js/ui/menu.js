// The phone header's Menu button (templates/_header.html). Loaded on every page, signed in or
// out. The nav is visible in the HTML and the button is hidden, so without this script the
// links stay reachable; here the header is marked .menu-ready (the CSS then folds the links
// behind the button on narrow screens) and the button is shown. The button is the one source
// of truth: aria-expanded says whether the menu is open, and .menu-open on the header shows it.
// Escape closes and gives the focus back to the button; focus moving elsewhere in the page or
// a click outside closes it too.

import { closeWhenFocusLeaves } from "./disclosure.js";

export class SiteMenu {
  constructor(header, { doc = document } = {}) {
    this.header = header;
    this.doc = doc;
    this.button = header.querySelector("[data-menu-button]");
    this.menu = this.button && doc.getElementById(this.button.getAttribute("aria-controls"));
  }

  // Returns false when the header has no menu to drive (nothing is changed then).
  start() {
    if (!this.button || !this.menu) return false;
    this.button.hidden = false;
    this.header.classList.add("menu-ready");
    this.button.addEventListener("click", () => this.toggle());
    // Listened to on the button and the menu only: Escape in the bell's dropdown is its own.
    for (const part of [this.button, this.menu]) {
      part.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && this.isOpen()) {
          this.toggle(false);
          this.button.focus();
        }
      });
    }
    closeWhenFocusLeaves([this.button, this.menu], () => this.isOpen(), () => this.toggle(false));
    this.doc.addEventListener("click", (event) => {
      if (this.isOpen() && !this.inside(event.target)) this.toggle(false);
    });
    return true;
  }

  isOpen() {
    return this.button.getAttribute("aria-expanded") === "true";
  }

  inside(node) {
    return Boolean(node) && (this.button.contains(node) || this.menu.contains(node));
  }

  toggle(open = !this.isOpen()) {
    this.button.setAttribute("aria-expanded", String(open));
    this.header.classList.toggle("menu-open", open);
  }
}

const button = typeof document === "undefined" ? null : document.querySelector("[data-menu-button]");
const header = button?.closest(".site-header");
if (header) new SiteMenu(header).start();
