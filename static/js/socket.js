// One WebSocket to /ws that stays up: reconnects with backoff, resumes from the last
// notification id it processed (kept in storage, so a reload resumes too), drops duplicates,
// answers heartbeats and notices a dead link by their absence, and keeps user messages in an
// outbox until the server acknowledges them. Stops for good on close code 4401.
//
// Everything it touches from the platform is injectable (WebSocket, timers, random, storage,
// clock), so `node --test` drives it with a fake socket and a fake clock.
//
// Events (it is an EventTarget):
//   "status"  detail: {status, retryIn}   status: connecting | open | reconnecting | offline |
//                                          signed-out | closed
//   "frame"   detail: a notification frame (id not null), each id once, in order
//   "control" detail: any other server frame (welcome, notification_read, replay_done, ...)

import { backoffDelay, serverDelay, BACKOFF_DEFAULTS } from "./backoff.js";
import { Outbox } from "./outbox.js";

export const SOCKET_DEFAULTS = Object.freeze({
  ...BACKOFF_DEFAULTS,
  stableAfter: 10000, // ms open before the backoff attempt counter resets
  heartbeatMargin: 10000, // ms of silence allowed beyond the server's heartbeat interval
  defaultHeartbeat: 25, // s, until the welcome frame says otherwise
  connectTimeout: 10000, // ms for the handshake and the welcome
  ackDelay: 200, // ms: delivery acks are batched, the highest id per batch
  maxEnqueuedMessages: 100,
});

export const SESSION_ENDED = 4401;

export class RealtimeSocket extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { ...SOCKET_DEFAULTS, ...options };
    const o = this.options;
    this.url = o.url ?? "/ws";
    this.WebSocketImpl = o.WebSocket ?? globalThis.WebSocket;
    this.setTimeout = o.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = o.clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    this.random = o.random ?? Math.random;
    this.now = o.now ?? (() => Date.now());
    this.storage = o.storage ?? null;
    this.lastIdKey = o.lastIdKey ?? "rt-last-id";
    this.outbox = o.outbox ?? new Outbox({ storage: this.storage, key: o.outboxKey ?? "rt-outbox",
      maxEnqueuedMessages: o.maxEnqueuedMessages, warn: o.warn, random: this.random });
    // Resume after the newer of the stored id and `lastId` (what the page was rendered with).
    this.lastId = Math.max(this.readLastId(), Number.isSafeInteger(o.lastId) ? o.lastId : 0);
    this.status = "idle";
    this.ws = null;
    this.attempt = 0;
    this.heartbeat = o.defaultHeartbeat;
    this.timers = {};
    this.pendingAck = 0;
    this.stopped = false;
  }

  // --- lifecycle ---------------------------------------------------------------------

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  close() {
    this.stopped = true;
    this.clearAllTimers();
    this.flushAck();
    this.dropSocket(1000, "client closed");
    this.setStatus("closed");
  }

  get isConnected() {
    return this.status === "open";
  }

  // The browser says the network is back, or the page became visible again: skip the wait.
  wake() {
    if (this.stopped || this.status === "signed-out") return;
    if (this.status === "reconnecting" || this.status === "offline") {
      this.clearTimer("retry");
      this.connect();
    }
  }

  // The browser says the network is gone.
  offline() {
    if (this.stopped || this.status === "signed-out") return;
    this.clearAllTimers(); // the retry, and the dead-link, stable and ack timers of the dropped socket
    this.dropSocket(4000, "offline");
    this.setStatus("offline");
  }

  // --- sending ---------------------------------------------------------------------

  // Queues a user message (it gets a client_msg_id); sent now when open, else on reconnect.
  sendMessage(message) {
    const stored = this.outbox.push(message);
    if (this.isConnected) this.sendRaw(stored);
    return stored.client_msg_id;
  }

  sendRaw(frame) {
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  flushOutbox() {
    for (const message of this.outbox.pending()) {
      if (!this.sendRaw(message)) return;
    }
  }

  // --- connecting ------------------------------------------------------------------

  connect() {
    this.clearAllTimers();
    this.dropSocket(4000, "reconnecting");
    this.setStatus("connecting");
    const separator = this.url.includes("?") ? "&" : "?";
    let ws;
    try {
      ws = new this.WebSocketImpl(`${this.url}${separator}last_id=${this.lastId}`);
    } catch {
      this.scheduleReconnect(null);
      return;
    }
    this.ws = ws;
    ws.onmessage = (event) => this.onMessage(ws, event);
    ws.onclose = (event) => this.onClose(ws, event);
    ws.onerror = () => {}; // a close event always follows
    // No welcome in time: treat as a dead link.
    this.armTimer("dead", this.options.connectTimeout, () => this.deadLink(ws));
  }

  onMessage(ws, event) {
    if (ws !== this.ws) return;
    this.armDeadLinkTimer(ws);
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.id !== null && frame.id !== undefined) {
      this.onNotification(frame);
      return;
    }
    switch (frame.type) {
      case "welcome":
        if (typeof frame.heartbeat === "number" && frame.heartbeat > 0) this.heartbeat = frame.heartbeat;
        this.armDeadLinkTimer(ws);
        this.setStatus("open");
        this.armTimer("stable", this.options.stableAfter, () => { this.attempt = 0; });
        this.flushOutbox();
        if (this.pendingAck) this.flushAck();
        break;
      case "ping":
        this.sendRaw({ type: "pong" });
        break;
      case "ack":
        if (frame.client_msg_id) this.outbox.ack(frame.client_msg_id);
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent("control", { detail: frame }));
  }

  onNotification(frame) {
    if (typeof frame.id !== "number" || frame.id <= this.lastId) return; // a duplicate
    this.lastId = frame.id;
    this.writeLastId();
    this.pendingAck = frame.id;
    if (!this.timers.ack) this.armTimer("ack", this.options.ackDelay, () => this.flushAck());
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  flushAck() {
    this.clearTimer("ack");
    if (this.pendingAck && this.sendRaw({ type: "ack", id: this.pendingAck })) this.pendingAck = 0;
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearAllTimers();
    if (this.stopped) return;
    if (event.code === SESSION_ENDED) {
      this.stopped = true;
      this.setStatus("signed-out");
      return;
    }
    if (this.status === "offline") return;
    this.scheduleReconnect(serverDelay(event.reason));
  }

  deadLink(ws) {
    if (ws !== this.ws) return;
    this.dropSocket(4000, "no heartbeat");
    this.ws = null;
    this.clearAllTimers();
    if (!this.stopped) this.scheduleReconnect(null);
  }

  scheduleReconnect(told) {
    const delay = told !== null
      ? told + Math.floor(this.random() * this.options.minReconnectionDelay)
      : backoffDelay(this.attempt++, this.options, this.random);
    this.setStatus("reconnecting", Math.ceil(delay / 1000));
    this.armTimer("retry", delay, () => this.connect());
  }

  dropSocket(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  armDeadLinkTimer(ws) {
    const limit = this.heartbeat * 1000 + this.options.heartbeatMargin;
    this.armTimer("dead", limit, () => this.deadLink(ws));
  }

  // --- bookkeeping -----------------------------------------------------------------

  setStatus(status, retryIn = null) {
    if (status === this.status && retryIn === null) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, retryIn } }));
  }

  readLastId() {
    const raw = this.storage?.getItem(this.lastIdKey);
    const value = Number.parseInt(raw ?? "0", 10);
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  }

  writeLastId() {
    try {
      this.storage?.setItem(this.lastIdKey, String(this.lastId));
    } catch {
      // storage full: resume from memory this session
    }
  }

  armTimer(name, ms, fn) {
    this.clearTimer(name);
    this.timers[name] = this.setTimeout(() => {
      delete this.timers[name];
      fn();
    }, ms);
  }

  clearTimer(name) {
    if (this.timers[name] !== undefined) {
      this.clearTimeout(this.timers[name]);
      delete this.timers[name];
    }
  }

  clearAllTimers() {
    for (const name of Object.keys(this.timers)) this.clearTimer(name);
  }
}
