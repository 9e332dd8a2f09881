// One WebSocket to /ws that stays up: reconnects with backoff, resumes from the last
// notification it processed (its per-user seq, or its id when no seq is known yet; kept in
// storage, so a reload resumes too), drops duplicates by seq,
// answers heartbeats and notices a dead link by their absence, and keeps user messages in an
// outbox until the server acknowledges them. Stops for good on close code 4401.
//
// Everything it touches from the platform is injectable (WebSocket, timers, random, storage,
// clock), so `node --test` drives it with a fake socket and a fake clock.
//
// Events (it is an EventTarget):
//   "status"  detail: {status, retryIn}   status: connecting | open | reconnecting | offline |
//                                          signed-out | closed
//   "frame"   detail: a notification frame (id not null), each seq (or, from a server that
//                     sends no seq, each id) once, in order
//   "control" detail: any other server frame (welcome, notification_read, replay_done,
//                     replay_truncated, error, typing, presence, ...)
//
// Ephemeral frames (typing, view) go through sendEphemeral: written only on an open socket,
// never kept in the outbox, never resent (a "typing" an hour late is a lie).
//
// Everything it writes goes through one paced queue: a token bucket (maxMessagesPerSecond,
// bursts of maxMessageBurst) well under the server's limit (20 frames/s, bursts of 40), so an
// outbox flush after a reconnect, a burst of acks or many mark_seen never get refused as a
// flood. Frames over the budget wait for a timer and go out in order; a pong goes first.

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
  maxMessagesPerSecond: 10, // client frames a second on average (the server allows 20)
  maxMessageBurst: 20, // client frames at once after a quiet spell (the server allows 40)
  maxFrameBytes: 65536, // the server closes the socket (1009) on a bigger frame
  maxIdsPerMessage: 500, // the server refuses mark_seen / mark_read with more ids
});

// Messages of these types only add marks: several waiting ones can become one.
const MERGEABLE = new Set(["mark_seen"]);

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
    // The position: the last notification processed, by id and by the user's seq (0: not
    // known). Resume after the newer of the stored one and `lastId` (the newest id the page was
    // rendered with). A page rendered with a newer id than the stored one shows notifications
    // the stored seq does not cover: then it resumes by that id, and the stored seq is dropped.
    const stored = this.readPosition();
    const rendered = Number.isSafeInteger(o.lastId) && o.lastId > 0 ? o.lastId : 0;
    this.lastId = stored.id;
    this.lastSeq = stored.seq;
    if (rendered > stored.id) {
      this.lastId = rendered;
      this.lastSeq = 0;
    }
    this.status = "idle";
    this.ws = null;
    this.attempt = 0;
    this.heartbeat = o.defaultHeartbeat;
    this.timers = {};
    this.pendingAck = 0;
    this.stopped = false;
    // Pacing: the token bucket, and what waits for it on the current socket.
    this.tokens = o.maxMessageBurst;
    this.tokensAt = this.now();
    this.queue = []; // {frame} | {msgId} | {ack: true}, in sending order
    this.queuedMessages = new Map(); // client_msg_id -> its queue entry
    this.ackQueued = false;
    this.sentOnSocket = new Set(); // outbox ids written to the current socket
    this.aliases = new Map(); // outbox id -> client_msg_ids merged into it (acked with it)
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
    // The last delivery ack goes out now, ahead of whatever still waits: the socket is closing.
    if (this.pendingAck && this.writeFrame({ type: "ack", id: this.pendingAck })) this.pendingAck = 0;
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

  // Queues a user message (it gets a client_msg_id); sent when open (paced), else on
  // reconnect. A mark_seen may be merged into one that waits unsent: one frame for both.
  // Returns the client_msg_id, or null for a message too big to ever be accepted.
  sendMessage(message) {
    const o = this.options;
    const size = byteLength(JSON.stringify({ ...message, client_msg_id: message.client_msg_id || "x".repeat(64) }));
    if (size > o.maxFrameBytes) {
      (o.warn ?? ((...args) => console.warn(...args)))("realtime: message too big to send, dropped", message);
      return null;
    }
    const id = message.client_msg_id;
    if (id && this.isAlias(id)) return id; // merged into a waiting message already
    if (id && this.outbox.pending().some((m) => m.client_msg_id === id)) {
      if (this.isConnected) this.enqueueMessage(id); // the same message again (a tab relays it)
      return id;
    }
    const merged = this.merge(message);
    if (merged) return merged;
    const stored = this.outbox.push(message);
    if (this.isConnected) this.enqueueMessage(stored.client_msg_id);
    return stored.client_msg_id;
  }

  // Folds a mark_seen into one still waiting unsent (in the outbox, not yet written to this
  // socket), under a fresh client_msg_id (the server may have applied the older one already,
  // on a socket that dropped before its ack), at most maxIdsPerMessage ids. Returns the
  // message's client_msg_id when merged, else null.
  merge(message) {
    if (!MERGEABLE.has(message.type) || !Array.isArray(message.ids)) return null;
    if (Object.keys(message).some((k) => k !== "type" && k !== "ids" && k !== "client_msg_id")) return null;
    const target = this.outbox.pending().reverse().find((m) => m.type === message.type
      && Array.isArray(m.ids) && !this.sentOnSocket.has(m.client_msg_id)
      && Object.keys(m).every((k) => k === "type" || k === "ids" || k === "client_msg_id"));
    if (!target) return null;
    const ids = [...new Set([...target.ids, ...message.ids])];
    if (ids.length > this.options.maxIdsPerMessage) return null;
    const replacement = this.outbox.replace(target.client_msg_id, { type: target.type, ids });
    if (!replacement) return null;
    const newId = replacement.client_msg_id;
    // The ids the page and other tabs hold: the target's own, unless a merge made it.
    const aliases = [...(this.aliases.get(target.client_msg_id) ?? [target.client_msg_id])];
    if (message.client_msg_id) aliases.push(message.client_msg_id);
    this.aliases.delete(target.client_msg_id);
    this.aliases.set(newId, aliases);
    const entry = this.queuedMessages.get(target.client_msg_id);
    if (entry) {
      this.queuedMessages.delete(target.client_msg_id);
      entry.msgId = newId;
      this.queuedMessages.set(newId, entry);
    }
    return message.client_msg_id || newId;
  }

  isAlias(clientMsgId) {
    for (const list of this.aliases.values()) if (list.includes(clientMsgId)) return true;
    return false;
  }

  // A frame that only means something now: sent (paced) when the socket is open and welcomed,
  // silently dropped otherwise. Returns whether it was queued for the wire.
  sendEphemeral(frame) {
    if (!this.isConnected) return false;
    return this.send(frame);
  }

  // Queues a frame for the current socket (dropped if none); `first` puts it ahead of the
  // queue (pongs: a late pong gets the socket closed as dead).
  send(frame, { first = false } = {}) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    const entry = { frame };
    if (first) this.queue.unshift(entry);
    else this.queue.push(entry);
    this.pump();
    return true;
  }

  enqueueMessage(msgId) {
    if (this.queuedMessages.has(msgId) || this.sentOnSocket.has(msgId)) return;
    if (!this.ws || this.ws.readyState !== 1) return;
    const entry = { msgId };
    this.queuedMessages.set(msgId, entry);
    this.queue.push(entry);
    this.pump();
  }

  flushOutbox() {
    for (const message of this.outbox.pending()) this.enqueueMessage(message.client_msg_id);
  }

  // Writes what the token bucket allows now; arms a timer for the rest.
  pump() {
    this.clearTimer("pace");
    const rate = this.options.maxMessagesPerSecond;
    while (this.queue.length) {
      if (!this.ws || this.ws.readyState !== 1) return;
      this.refill();
      if (this.tokens < 1) {
        const wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / rate));
        this.armTimer("pace", wait, () => this.pump());
        return;
      }
      const entry = this.queue.shift();
      const frame = this.frameOf(entry);
      if (frame === null) continue; // acked or merged away meanwhile: costs nothing
      if (!this.writeFrame(frame)) return;
      if (entry.msgId) this.sentOnSocket.add(entry.msgId);
      if (entry.ack && this.pendingAck === frame.id) this.pendingAck = 0;
    }
  }

  frameOf(entry) {
    if (entry.frame) return entry.frame;
    if (entry.ack) {
      this.ackQueued = false;
      return this.pendingAck ? { type: "ack", id: this.pendingAck } : null;
    }
    this.queuedMessages.delete(entry.msgId);
    return this.outbox.pending().find((m) => m.client_msg_id === entry.msgId) ?? null;
  }

  // The one place a frame reaches the wire; it always takes a token.
  writeFrame(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      return false;
    }
    this.refill();
    this.tokens -= 1;
    return true;
  }

  refill() {
    const o = this.options;
    const now = this.now();
    this.tokens = Math.min(o.maxMessageBurst, this.tokens + ((now - this.tokensAt) * o.maxMessagesPerSecond) / 1000);
    this.tokensAt = now;
  }

  // What waited for the old socket is not sent on the next one: the outbox is flushed anew
  // after the welcome, and an unsent delivery ack is still in pendingAck.
  resetQueue() {
    this.clearTimer("pace");
    this.queue = [];
    this.queuedMessages.clear();
    this.ackQueued = false;
    this.sentOnSocket.clear();
  }

  // The server refused frames as too many (it should not happen at our pace: another tab of
  // an old version, a proxy...). Wait for the bucket to fill up again, and send once more
  // the messages written to this socket that have no ack yet (the server applies each id once).
  onRateLimited() {
    this.refill();
    this.tokens = Math.min(this.tokens, 0);
    const resend = this.outbox.pending()
      .filter((m) => this.sentOnSocket.has(m.client_msg_id) && !this.queuedMessages.has(m.client_msg_id))
      .map((m) => ({ msgId: m.client_msg_id }));
    for (const entry of resend) {
      this.sentOnSocket.delete(entry.msgId);
      this.queuedMessages.set(entry.msgId, entry);
    }
    const firstMessage = this.queue.findIndex((e) => e.msgId);
    const at = firstMessage === -1 ? this.queue.length : firstMessage;
    this.queue.splice(at, 0, ...resend);
    this.pump();
  }

  // --- connecting ------------------------------------------------------------------

  connect() {
    this.clearAllTimers();
    this.dropSocket(4000, "reconnecting");
    this.setStatus("connecting");
    const separator = this.url.includes("?") ? "&" : "?";
    let ws;
    try {
      ws = new this.WebSocketImpl(`${this.url}${separator}${this.resumeQuery()}`);
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

  // By seq when one is known (the server's order), else by id (a fresh page, old storage, or a
  // server that sends no seq).
  resumeQuery() {
    return this.lastSeq > 0 ? `last_seq=${this.lastSeq}` : `last_id=${this.lastId}`;
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
        // Nothing newer than what we hold (by id: we asked by id): the welcome's seq is ours.
        if (!this.lastSeq && isPosition(frame.last_id) && frame.last_id <= this.lastId) this.adoptSeq(frame);
        this.armDeadLinkTimer(ws);
        this.setStatus("open");
        this.armTimer("stable", this.options.stableAfter, () => { this.attempt = 0; });
        this.flushOutbox();
        if (this.pendingAck) this.flushAck();
        break;
      case "ping":
        this.send({ type: "pong" }, { first: true });
        break;
      case "ack":
        if (typeof frame.client_msg_id === "string") {
          this.onAck(frame);
          return;
        }
        break;
      case "error":
        // Naming a client_msg_id, the server refused that message for good (too long, closed
        // conversation, too many messages...): resending would only be refused again. Without
        // one, rate_limited is about our frame rate, and the outbox is resent after a pause.
        if (typeof frame.client_msg_id === "string") this.onRefused(frame.client_msg_id);
        else if (frame.code === "rate_limited") this.onRateLimited();
        break;
      case "replay_done":
        // Everything up to its last_seq has been sent on this socket, before it.
        this.adoptSeq(frame);
        break;
      default:
        // replay_truncated, notification_read, ...: for the page to show.
        break;
    }
    this.dispatchEvent(new CustomEvent("control", { detail: frame }));
  }

  // The server applied a message: it leaves the outbox, and so do the ones merged into it.
  onAck(frame) {
    const id = frame.client_msg_id;
    this.outbox.ack(id);
    this.sentOnSocket.delete(id);
    const aliases = this.aliases.get(id) ?? [];
    this.aliases.delete(id);
    this.dispatchEvent(new CustomEvent("control", { detail: frame }));
    for (const alias of aliases) {
      this.dispatchEvent(new CustomEvent("control", { detail: { type: "ack", id: null, client_msg_id: alias } }));
    }
  }

  // The server will never apply this message: it leaves the outbox (the page, told by the
  // control event that follows, marks it as not sent).
  onRefused(clientMsgId) {
    this.outbox.ack(clientMsgId);
    this.sentOnSocket.delete(clientMsgId);
    this.aliases.delete(clientMsgId);
  }

  onNotification(frame) {
    if (typeof frame.id !== "number") return;
    if (isPosition(frame.seq)) {
      // The seq orders (per user); the id only when no seq is known yet.
      if (this.lastSeq ? frame.seq <= this.lastSeq : frame.id <= this.lastId) return; // a duplicate
      this.lastSeq = frame.seq;
      this.lastId = Math.max(this.lastId, frame.id);
    } else {
      // A server that sends no seq: ids order, and a seq we hold no longer says where we are.
      if (frame.id <= this.lastId) return; // a duplicate
      this.lastId = frame.id;
      this.lastSeq = 0;
    }
    this.writePosition();
    this.pendingAck = frame.id;
    if (!this.timers.ack) this.armTimer("ack", this.options.ackDelay, () => this.flushAck());
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  // The highest processed id goes out in one ack frame (paced: it carries the highest id at
  // the moment it is written).
  flushAck() {
    this.clearTimer("ack");
    if (!this.pendingAck || this.ackQueued || !this.ws || this.ws.readyState !== 1) return;
    this.ackQueued = true;
    this.queue.push({ ack: true });
    this.pump();
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.resetQueue();
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
    this.resetQueue();
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

  // The server's (last_id, last_seq) from a welcome or replay_done, when its seq is newer.
  adoptSeq(frame) {
    if (!isPosition(frame.last_seq) || frame.last_seq <= this.lastSeq) return;
    this.lastSeq = frame.last_seq;
    if (isPosition(frame.last_id)) this.lastId = Math.max(this.lastId, frame.last_id);
    this.writePosition();
  }

  // Stored as "<id>:<seq>", or "<id>" alone when no seq is known (what older versions stored,
  // and still read: parseInt takes the id). Anything else counts as nothing stored.
  readPosition() {
    const raw = this.storage?.getItem(this.lastIdKey);
    const match = /^(\d+)(?::(\d+))?$/.exec(raw ?? "");
    if (!match) return { id: 0, seq: 0 };
    const id = Number(match[1]);
    const seq = match[2] === undefined ? 0 : Number(match[2]);
    if (!Number.isSafeInteger(id)) return { id: 0, seq: 0 };
    return { id, seq: Number.isSafeInteger(seq) ? seq : 0 };
  }

  writePosition() {
    try {
      this.storage?.setItem(this.lastIdKey, this.lastSeq ? `${this.lastId}:${this.lastSeq}` : String(this.lastId));
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

// A notification id or seq: a whole number, 0 or more.
function isPosition(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}
