// Seen marks, batched: the ids the person has seen (in a toast, a summary, the dropdown) are
// collected for a short window and go out as one mark_seen per at most maxIds ids, each id
// once per page. A burst of 300 notifications is a few frames, not 300.

export const SEEN_DEFAULTS = Object.freeze({
  delay: 300, // ms to collect ids before sending them
  maxIds: 500, // ids per mark_seen frame (the server refuses more)
});

export class SeenBatcher {
  // `send(ids)` sends one mark_seen (through the outbox: rt.sendMessage).
  constructor(send, { setTimeout, clearTimeout, delay, maxIds } = {}) {
    this.send = send;
    this.setTimeout = setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    this.delay = delay ?? SEEN_DEFAULTS.delay;
    this.maxIds = maxIds ?? SEEN_DEFAULTS.maxIds;
    this.waiting = new Set();
    this.sent = new Set(); // ids this page has already marked seen
    this.timer = null;
  }

  add(ids) {
    for (const id of ids) {
      if (Number.isSafeInteger(id) && id > 0 && !this.sent.has(id)) this.waiting.add(id);
    }
    if (this.waiting.size && this.timer === null) {
      this.timer = this.setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.delay);
    }
  }

  flush() {
    if (this.timer !== null) {
      this.clearTimeout(this.timer);
      this.timer = null;
    }
    const ids = [...this.waiting].sort((a, b) => a - b);
    this.waiting.clear();
    for (let i = 0; i < ids.length; i += this.maxIds) {
      const chunk = ids.slice(i, i + this.maxIds);
      for (const id of chunk) this.sent.add(id);
      this.send(chunk);
    }
  }
}
