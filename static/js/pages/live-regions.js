// Pages that show bookings or payments keep them current without a reload: when an update
// arrives, the page is fetched again and every element marked `data-live-region` is replaced
// by its fresh version (server-rendered, so statuses, buttons and CSRF tokens stay right).

const DEBOUNCE_MS = 150;

export class LiveRegions {
  constructor({ doc = document, fetchImpl = (...args) => globalThis.fetch(...args), onUpdated = () => {} } = {}) {
    this.doc = doc;
    this.fetch = fetchImpl;
    this.onUpdated = onUpdated;
    this.timer = null;
    this.running = false;
    this.again = false;
  }

  get active() {
    return this.doc.querySelector("[data-live-region]") !== null;
  }

  // Called for every booking or payment update; coalesces bursts into one fetch.
  changed() {
    if (!this.active) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
  }

  async refresh() {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const response = await this.fetch(this.doc.location.href, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of this.doc.querySelectorAll("[data-live-region]")) {
        const name = region.dataset.liveRegion;
        const replacement = fresh.querySelector(`[data-live-region="${CSS.escape(name)}"]`);
        if (replacement && replacement.innerHTML !== region.innerHTML) {
          const hadFocus = region.contains(this.doc.activeElement);
          region.replaceWith(this.doc.importNode(replacement, true));
          if (hadFocus) this.doc.querySelector(`[data-live-region="${CSS.escape(name)}"]`)?.focus?.();
        }
      }
      this.onUpdated();
    } catch {
      // Offline or the server is restarting: the next update or a reload brings the page up to date.
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.changed();
      }
    }
  }
}
