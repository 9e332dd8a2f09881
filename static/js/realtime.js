// connectRealtime: the page's one entry point to live notifications (the seed's useWebSocket
// hook, without React).
//
//   const rt = connectRealtime({userId, onBookingUpdate, onPaymentUpdate, onNotification,
//                               onMessage, onStatusChange, onControl});
//   rt.isConnected(); rt.sendMessage({type: "mark_read", ids: [12]}); rt.close();
//   rt.sendEphemeral({type: "typing", booking_id: 42});  // now or never: no outbox
//   rt.setViewing([42]);  // the conversations this tab shows (while visible)
//
// Tabs of one browser share one socket: the tab holding the Web Lock "rt-leader:<user>" runs
// the RealtimeSocket and relays every frame and status over a BroadcastChannel; the others
// send their messages through it. When the leader tab goes, the next tab in the lock's queue
// takes over and resumes from the position (seq, or id) the old leader stored. Without Web
// Locks or BroadcastChannel, every tab has its own socket.
//
// Views: the server wants to know which conversations a person is looking at (no pop-up for
// a message they are reading; presence of the other party). A socket has one view set, so the
// leader sends the union of its own and every visible tab's, whenever it changes and after
// every welcome (a new socket starts with none).

import { RealtimeSocket } from "./socket.js";
import { newMessageId } from "./outbox.js";

export const MAX_VIEWS = 10; // conversations in one view frame
// ms past a follower's shown countdown before it asks the leader to try (the leader's own timer
// is due by then; the countdown is whole seconds, rounded up).
export const NUDGE_GRACE_MS = 250;

export function connectRealtime(options = {}) {
  const win = options.window ?? globalThis.window;
  const userId = String(options.userId ?? "anon");
  const callbacks = {
    onBookingUpdate: options.onBookingUpdate ?? (() => {}),
    onPaymentUpdate: options.onPaymentUpdate ?? (() => {}),
    onNotification: options.onNotification ?? (() => {}),
    onMessage: options.onMessage ?? (() => {}),
    onStatusChange: options.onStatusChange ?? (() => {}),
    onControl: options.onControl ?? (() => {}),
    onLeaderChange: options.onLeaderChange ?? (() => {}),
  };
  const canShare = Boolean(win?.navigator?.locks && win?.BroadcastChannel) && options.shareTabs !== false;
  const tab = new TabClient({ ...options, win, userId, callbacks, canShare });
  tab.start();
  return {
    isConnected: () => tab.status === "open",
    sendMessage: (message) => tab.sendMessage(message),
    retryNow: () => tab.retryNow(),
    sendEphemeral: (frame) => tab.sendEphemeral(frame),
    setViewing: (bookingIds) => tab.setViewing(bookingIds),
    close: () => tab.close(),
    signOut: () => tab.signOut(),
    get isLeader() {
      return tab.isLeader;
    },
    tab,
  };
}

// Routes a frame to the callback for its envelope type. Conversation frames ("message":
// messages and read receipts) are never notifications: they do not reach the bell.
export function dispatchFrame(frame, callbacks) {
  if (frame.type === "booking_update") callbacks.onBookingUpdate(frame.data, frame);
  else if (frame.type === "payment_update") callbacks.onPaymentUpdate(frame.data, frame);
  else if (frame.type === "message") callbacks.onMessage?.(frame.data, frame);
  else callbacks.onNotification(frame.data, frame);
}

// Booking ids as the server takes them: positive integers, each once, at most MAX_VIEWS.
function viewIds(ids) {
  if (!Array.isArray(ids)) return [];
  return [...new Set(ids.map(Number).filter((id) => Number.isSafeInteger(id) && id > 0))].slice(0, MAX_VIEWS);
}

export class TabClient {
  constructor({ win, userId, callbacks, canShare, socketOptions = {}, lastId = 0 }) {
    this.win = win;
    this.userId = userId;
    this.callbacks = callbacks;
    this.canShare = canShare;
    this.socketOptions = socketOptions;
    this.tabId = newMessageId();
    this.isLeader = false;
    this.socket = null;
    this.channel = null;
    this.status = "connecting";
    // The newest notification already on the server-rendered page: not replayed, not shown again.
    this.renderedId = Number.isSafeInteger(lastId) && lastId > 0 ? lastId : 0;
    // Per tab: frames relayed twice are shown once. By seq once one is known (the per-user
    // order), by id before (the page knows only the ids it was rendered with) and for frames
    // from a server that sends no seq.
    this.lastSeenId = this.renderedId;
    this.lastSeenSeq = 0;
    this.pending = new Map(); // follower: client_msg_id -> message, until the leader says acked
    this.visibleTabs = new Set(); // leader: the other tabs that say they are visible
    this.viewing = []; // the conversations this tab's page shows
    this.tabViews = new Map(); // leader: other tab id -> the conversations it shows while visible
    this.sentViews = ""; // leader: the view set the current socket holds (sorted ids, joined)
    this.releaseLock = null;
    this.closed = false;
    this.nudgeTimer = null; // follower: asks the leader to try when its shown countdown ends
    const o = this.socketOptions;
    this.setTimeout = o.setTimeout ?? ((fn, ms) => (win?.setTimeout ?? globalThis.setTimeout)(fn, ms));
    this.clearTimeout = o.clearTimeout ?? ((id) => (win?.clearTimeout ?? globalThis.clearTimeout)(id));
    this.onPageHide = () => this.close();
    this.onOnline = () => this.socket?.wake();
    this.onOffline = () => this.socket?.offline();
    this.onVisibility = () => this.reportVisibility();
  }

  start() {
    this.win?.addEventListener?.("pagehide", this.onPageHide);
    this.win?.addEventListener?.("online", this.onOnline);
    this.win?.addEventListener?.("offline", this.onOffline);
    this.win?.document?.addEventListener?.("visibilitychange", this.onVisibility);
    if (!this.canShare) {
      this.becomeLeader();
      return;
    }
    this.channel = new this.win.BroadcastChannel(`rt:${this.userId}`);
    this.channel.onmessage = (event) => this.onChannel(event.data);
    this.channel.postMessage({ kind: "hello", tabId: this.tabId });
    this.reportVisibility();
    this.win.navigator.locks.request(`rt-leader:${this.userId}`, () => {
      if (this.closed || this.status === "signed-out") return undefined; // a signed-out tab never leads
      this.becomeLeader();
      // Held until this tab goes: then the next tab waiting on the lock takes over.
      return new Promise((resolve) => { this.releaseLock = resolve; });
    }).catch(() => {});
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.armNudge(null);
    this.win?.removeEventListener?.("pagehide", this.onPageHide);
    this.win?.removeEventListener?.("online", this.onOnline);
    this.win?.removeEventListener?.("offline", this.onOffline);
    this.win?.document?.removeEventListener?.("visibilitychange", this.onVisibility);
    if (this.channel) {
      this.channel.postMessage({ kind: "bye", tabId: this.tabId });
      this.channel.close();
      this.channel = null;
    }
    // After the channel: this socket's "closed" is this tab's, not the other tabs' (they get
    // "connecting" from the next leader).
    this.socket?.close();
    this.socket = null;
    this.releaseLock?.();
    this.releaseLock = null;
  }

  // --- leader ------------------------------------------------------------------------

  becomeLeader() {
    this.isLeader = true;
    this.armNudge(null);
    this.callbacks.onLeaderChange(true);
    const storage = this.win?.localStorage ?? null;
    // Without tab sharing, tabs must not share one outbox in storage.
    const outboxKey = this.canShare ? `rt-outbox:${this.userId}` : `rt-outbox:${this.userId}:${this.tabId}`;
    this.socket = new RealtimeSocket({
      storage,
      lastIdKey: `rt-last-id:${this.userId}`,
      lastId: this.renderedId, // resume after what this page already shows
      outboxKey,
      ...this.socketOptions,
    });
    this.socket.addEventListener("status", (event) => {
      this.setStatus(event.detail);
      this.broadcast({ kind: "status", detail: event.detail });
    });
    this.socket.addEventListener("frame", (event) => {
      this.deliver(event.detail);
      this.broadcast({ kind: "frame", frame: event.detail });
    });
    this.socket.addEventListener("control", (event) => {
      const frame = event.detail;
      // Acknowledged or refused for good: either way the followers stop holding it (they would
      // hand it to the next leader).
      if ((frame.type === "ack" || frame.type === "error") && typeof frame.client_msg_id === "string") {
        this.broadcast({ kind: "acked", id: frame.client_msg_id });
      }
      if (frame.type === "welcome") {
        this.sentViews = ""; // a new socket: the server holds no views for it
        this.sendViews();
      }
      this.callbacks.onControl(frame);
      this.broadcast({ kind: "control", frame });
    });
    // What this tab sent before it led (before the lock came, or as a follower) is now this
    // socket's to send; the outbox skips a client_msg_id it already holds.
    for (const message of this.pending.values()) this.socket.sendMessage(message);
    this.pending.clear();
    this.socket.start();
    this.broadcast({ kind: "leader", tabId: this.tabId });
  }

  // True when no tab of this browser is visible: the leader then shows desktop notifications.
  allTabsHidden() {
    const meVisible = this.win?.document?.visibilityState === "visible";
    return !meVisible && this.visibleTabs.size === 0;
  }

  // Every conversation any visible tab shows (this one first), at most MAX_VIEWS.
  viewUnion() {
    const ids = new Set(this.ownViews());
    for (const list of this.tabViews.values()) for (const id of list) ids.add(id);
    return [...ids].slice(0, MAX_VIEWS);
  }

  // Sends the view set when it differs from what the socket holds; dropped when not connected
  // (the next welcome sends it).
  sendViews() {
    if (!this.isLeader || !this.socket) return;
    const ids = this.viewUnion();
    const key = [...ids].sort((a, b) => a - b).join(",");
    if (key === this.sentViews) return;
    if (this.socket.sendEphemeral({ type: "view", booking_ids: ids })) this.sentViews = key;
  }

  // --- every tab ---------------------------------------------------------------------

  // Typing and views: straight to the socket (the leader's), never queued. Dropped when no
  // socket is open or, for a moment during a hand-over, no tab leads.
  sendEphemeral(frame) {
    if (this.isLeader && this.socket) return this.socket.sendEphemeral(frame);
    this.broadcast({ kind: "ephemeral", frame });
    return false;
  }

  // The conversations this tab shows; counted only while its document is visible.
  setViewing(bookingIds) {
    this.viewing = viewIds(bookingIds);
    this.reportVisibility();
  }

  ownViews() {
    return this.win?.document?.visibilityState === "visible" ? this.viewing : [];
  }

  sendMessage(message) {
    const stored = { ...message, client_msg_id: message.client_msg_id || newMessageId() };
    if (this.isLeader && this.socket) {
      this.socket.sendMessage(stored);
    } else {
      this.pending.set(stored.client_msg_id, stored);
      this.broadcast({ kind: "send", message: stored });
    }
    return stored.client_msg_id;
  }

  onChannel(data) {
    if (!data || typeof data !== "object" || this.closed) return;
    // A page whose session ended stays signed out (its forms carry that session's CSRF token):
    // it takes no more frames, and a signed-out leader hands the lock to a new login's tab.
    if (this.status === "signed-out") {
      if (data.kind === "hello" && this.isLeader) this.stepDown();
      return;
    }
    switch (data.kind) {
      case "frame":
        if (!this.isLeader) this.deliver(data.frame);
        break;
      case "status":
        if (!this.isLeader) this.setStatus(data.detail);
        break;
      case "control":
        if (!this.isLeader) this.callbacks.onControl(data.frame);
        break;
      case "send":
        if (this.isLeader && this.socket) this.socket.sendMessage(data.message);
        break;
      case "ephemeral":
        if (this.isLeader && this.socket) this.socket.sendEphemeral(data.frame);
        break;
      case "acked":
        this.pending.delete(data.id);
        break;
      case "leader":
        // A new leader: hand it what still waits for an ack (the server applies each id once),
        // and tell it whether this tab is visible.
        for (const message of this.pending.values()) this.broadcast({ kind: "send", message });
        this.reportVisibility();
        break;
      case "hello":
        if (this.isLeader && this.socket) {
          this.broadcast({ kind: "status", detail: { status: this.socket.status, retryIn: null } });
          this.broadcast({ kind: "leader", tabId: this.tabId });
        } else {
          this.reportVisibility(); // so a new leader learns who is visible
        }
        break;
      case "visibility":
        if (this.isLeader) {
          if (data.visible) {
            this.visibleTabs.add(data.tabId);
            this.socket?.wake(); // someone is looking: do not sit out a long backoff
          }
          else this.visibleTabs.delete(data.tabId);
          this.tabViews.set(data.tabId, data.visible ? viewIds(data.viewing) : []);
          this.sendViews();
        }
        break;
      case "retry":
        if (this.isLeader) this.socket?.wake();
        break;
      case "bye":
        this.visibleTabs.delete(data.tabId);
        this.tabViews.delete(data.tabId);
        this.sendViews();
        break;
      case "signed-out":
        // Another tab logged out. The leader waits for the server's 4401 on its socket.
        if (!this.isLeader) this.setStatus({ status: "signed-out", retryIn: null });
        break;
      default:
        break;
    }
  }

  // This page is logging out (its logout form is being submitted). The tabs of a browser share
  // the session, so tell them now, while this page is still here: when it leads, the next tab
  // takes the lock as soon as it unloads, and a socket opened with the ended session is refused
  // (401) in a way a browser cannot tell from a network failure, so it would retry for ever.
  signOut() {
    this.broadcast({ kind: "signed-out" });
    if (!this.isLeader) this.setStatus({ status: "signed-out", retryIn: null });
  }

  // "Retry now": the socket (the leader's, wherever it is) tries at once instead of waiting.
  retryNow() {
    if (this.isLeader && this.socket) this.socket.wake();
    else this.broadcast({ kind: "retry" });
  }

  stepDown() {
    this.isLeader = false;
    this.callbacks.onLeaderChange(false);
    this.releaseLock?.();
    this.releaseLock = null;
  }

  reportVisibility() {
    const visible = this.win?.document?.visibilityState === "visible";
    if (visible) this.socket?.wake();
    this.broadcast({ kind: "visibility", tabId: this.tabId, visible, viewing: this.ownViews() });
    this.sendViews();
  }

  deliver(frame) {
    if (typeof frame?.id !== "number") return;
    if (Number.isSafeInteger(frame.seq) && frame.seq >= 0) {
      if (this.lastSeenSeq ? frame.seq <= this.lastSeenSeq : frame.id <= this.lastSeenId) return;
      this.lastSeenSeq = frame.seq;
      this.lastSeenId = Math.max(this.lastSeenId, frame.id);
    } else {
      if (frame.id <= this.lastSeenId) return;
      this.lastSeenId = frame.id;
      this.lastSeenSeq = 0;
    }
    dispatchFrame(frame, this.callbacks);
  }

  setStatus(detail) {
    this.status = detail.status;
    this.armNudge(detail);
    this.callbacks.onStatusChange(detail);
  }

  // A visible follower shows the leader's countdown; when it runs out and the page is still not
  // live, the follower asks the leader to try now. The leader may be a hidden tab, whose timers
  // the browser delays (background throttling: a retry due in 8 s can fire a minute late),
  // while a channel message wakes it at once. Harmless when the leader is on time: it is
  // connecting by then, and wake() only acts while it waits.
  armNudge(detail) {
    if (this.nudgeTimer !== null) this.clearTimeout(this.nudgeTimer);
    this.nudgeTimer = null;
    if (!detail || this.isLeader || detail.status !== "reconnecting" || !(detail.retryIn > 0)) return;
    this.nudgeTimer = this.setTimeout(() => {
      this.nudgeTimer = null;
      const visible = this.win?.document?.visibilityState === "visible";
      if (!this.closed && !this.isLeader && this.status === "reconnecting" && visible) {
        this.broadcast({ kind: "retry" });
      }
    }, detail.retryIn * 1000 + NUDGE_GRACE_MS);
  }

  broadcast(message) {
    try {
      this.channel?.postMessage(message);
    } catch {
      // channel closed
    }
  }
}
