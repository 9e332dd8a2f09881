// Messages waiting for the server: kept in storage (a reload or a crash keeps them), sent in
// order, removed only when the server acknowledges their client_msg_id. Bounded: when full, the
// oldest is dropped with a console warning.

export const OUTBOX_DEFAULTS = Object.freeze({ maxEnqueuedMessages: 100 });

export function newMessageId(random = Math.random) {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `m-${Date.now().toString(36)}-${Math.floor(random() * 1e12).toString(36)}`;
}

export class Outbox {
  constructor({ storage = null, key = "rt-outbox", maxEnqueuedMessages, warn, random } = {}) {
    this.storage = storage;
    this.key = key;
    this.max = maxEnqueuedMessages ?? OUTBOX_DEFAULTS.maxEnqueuedMessages;
    this.warn = warn ?? ((...args) => console.warn(...args));
    this.random = random ?? Math.random;
    this.items = this.load();
  }

  load() {
    if (!this.storage) return [];
    try {
      const parsed = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(parsed) ? parsed.filter((m) => m && typeof m.client_msg_id === "string") : [];
    } catch {
      return [];
    }
  }

  save() {
    if (!this.storage) return;
    try {
      this.storage.setItem(this.key, JSON.stringify(this.items));
    } catch {
      // Storage full or denied: the queue still works for this page's life.
    }
  }

  // Adds a client_msg_id when the message has none; returns the stored message.
  push(message) {
    const stored = { ...message, client_msg_id: message.client_msg_id || newMessageId(this.random) };
    if (this.items.some((m) => m.client_msg_id === stored.client_msg_id)) return stored;
    this.items.push(stored);
    while (this.items.length > this.max) {
      const dropped = this.items.shift();
      this.warn("realtime: outbox full, dropped the oldest message", dropped);
    }
    this.save();
    return stored;
  }

  ack(clientMsgId) {
    const before = this.items.length;
    this.items = this.items.filter((m) => m.client_msg_id !== clientMsgId);
    if (this.items.length !== before) this.save();
    return this.items.length !== before;
  }

  // Puts `message` (under a new client_msg_id) where the message `clientMsgId` was; returns
  // the stored message, or null when that one is gone.
  replace(clientMsgId, message) {
    const index = this.items.findIndex((m) => m.client_msg_id === clientMsgId);
    if (index === -1) return null;
    const stored = { ...message, client_msg_id: newMessageId(this.random) };
    this.items[index] = stored;
    this.save();
    return stored;
  }

  pending() {
    return [...this.items];
  }

  get size() {
    return this.items.length;
  }
}
