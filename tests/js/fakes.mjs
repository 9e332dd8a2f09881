// Small stand-ins for the browser platform, shared by the client tests. Not a test file itself
// (node --test only runs *.test.mjs here).

// A clock with a timer queue that only moves when a test says so.
export class FakeClock {
  constructor(start = 0) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms = 0) => {
      const id = this.nextId++;
      this.timers.set(id, { id, at: this.t + Math.max(0, Number(ms) || 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
    this.now = () => this.t;
  }

  // How many timers are waiting to run.
  get pending() {
    return this.timers.size;
  }

  // The remaining delay of every pending timer, shortest first.
  pendingDelays() {
    return [...this.timers.values()].map((timer) => timer.at - this.t).sort((a, b) => a - b);
  }

  // Moves time forward by ms, running every timer that falls due, in order of due time (then of
  // creation), including timers those timers set.
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const timer of this.timers.values()) {
        if (timer.at > end) continue;
        if (!next || timer.at < next.at || (timer.at === next.at && timer.id < next.id)) next = timer;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

// localStorage / sessionStorage: strings in, strings out.
export class MemoryStorage {
  constructor(entries = {}) {
    this.map = new Map(Object.entries(entries));
  }

  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }

  setItem(key, value) {
    this.map.set(key, String(value));
  }

  removeItem(key) {
    this.map.delete(key);
  }

  get length() {
    return this.map.size;
  }
}

// A WebSocket class whose instances the test drives from the server's side. Each call returns a
// fresh class, so instances are counted per test.
export function makeWebSocketClass() {
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = FakeWebSocket.CONNECTING;
      this.sent = [];
      this.closeCalls = [];
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      FakeWebSocket.instances.push(this);
    }

    // --- what the client calls ---

    send(data) {
      if (this.readyState !== FakeWebSocket.OPEN) throw new Error("InvalidStateError: not open");
      this.sent.push(data);
    }

    // Like a browser: only 1000 or 3000-4999, reason at most 123 bytes.
    close(code, reason = "") {
      this.closeCalls.push({ code, reason });
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new Error(`InvalidAccessError: close code ${code}`);
      }
      if (new TextEncoder().encode(reason).length > 123) throw new Error("SyntaxError: reason too long");
      this.readyState = FakeWebSocket.CLOSED;
    }

    // --- what the test (the server) does ---

    open() {
      this.readyState = FakeWebSocket.OPEN;
      this.onopen?.({ type: "open" });
      return this;
    }

    deliver(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
      return this;
    }

    welcome(extra = {}) {
      if (this.readyState === FakeWebSocket.CONNECTING) this.open();
      return this.deliver({ type: "welcome", id: null, user_id: 7, heartbeat: 25, unread: 0, last_id: 0, last_seq: 0, ...extra });
    }

    serverClose(code = 1006, reason = "") {
      this.readyState = FakeWebSocket.CLOSED;
      this.onclose?.({ type: "close", code, reason, wasClean: code !== 1006 });
      return this;
    }

    // The frames the client sent, parsed.
    get frames() {
      return this.sent.map((data) => JSON.parse(data));
    }

    get isClosed() {
      return this.readyState === FakeWebSocket.CLOSED;
    }
  }
  return FakeWebSocket;
}

// Web Locks: per name, a queue; the head holds the lock until the promise its callback returned
// settles, then the next waiter's callback runs. Callbacks run asynchronously, as in a browser.
export class FakeLocks {
  constructor() {
    this.queues = new Map();
  }

  request(name, callback) {
    return new Promise((resolve, reject) => {
      if (!this.queues.has(name)) this.queues.set(name, []);
      const queue = this.queues.get(name);
      queue.push({ callback, resolve, reject });
      if (queue.length === 1) this.grant(name);
    });
  }

  grant(name) {
    const queue = this.queues.get(name);
    if (!queue?.length) return;
    const head = queue[0];
    queueMicrotask(async () => {
      try {
        head.resolve(await head.callback({ name, mode: "exclusive" }));
      } catch (error) {
        head.reject(error);
      }
      queue.shift();
      this.grant(name);
    });
  }

  waiting(name) {
    return this.queues.get(name)?.length ?? 0;
  }
}

// BroadcastChannel: a message goes to every OTHER open channel of the same name in the same
// "origin" (one class per test), asynchronously and structured-cloned.
export function makeBroadcastChannelClass() {
  const open = new Set();
  class FakeBroadcastChannel {
    static posted = [];

    constructor(name) {
      this.name = String(name);
      this.onmessage = null;
      this.closed = false;
      open.add(this);
    }

    postMessage(data) {
      if (this.closed) throw new Error("InvalidStateError: channel closed");
      FakeBroadcastChannel.posted.push({ from: this, data: structuredClone(data) });
      for (const other of open) {
        if (other === this || other.name !== this.name) continue;
        const copy = structuredClone(data);
        queueMicrotask(() => {
          if (!other.closed) other.onmessage?.({ data: copy });
        });
      }
    }

    close() {
      this.closed = true;
      open.delete(this);
    }
  }
  return FakeBroadcastChannel;
}

// addEventListener / removeEventListener / dispatch, enough for window and document.
export class FakeEventTarget {
  constructor() {
    this.listeners = new Map();
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }

  dispatch(type, event = {}) {
    for (const fn of [...(this.listeners.get(type) ?? [])]) fn({ type, ...event });
  }

  listenerCount(type) {
    return this.listeners.get(type)?.size ?? 0;
  }
}

export class FakeDocument extends FakeEventTarget {
  constructor(visibilityState = "visible") {
    super();
    this.visibilityState = visibilityState;
  }

  setVisibility(state) {
    this.visibilityState = state;
    this.dispatch("visibilitychange");
  }
}

// One browser (origin): shared locks, channels and localStorage; each tab gets its own window.
export function makeBrowser({ locks = true, broadcastChannel = true } = {}) {
  const browser = {
    locks: new FakeLocks(),
    BroadcastChannel: makeBroadcastChannelClass(),
    localStorage: new MemoryStorage(),
    newWindow({ visibilityState = "visible" } = {}) {
      const win = new FakeEventTarget();
      win.navigator = locks ? { locks: browser.locks } : {};
      if (broadcastChannel) win.BroadcastChannel = browser.BroadcastChannel;
      win.localStorage = browser.localStorage;
      win.document = new FakeDocument(visibilityState);
      return win;
    },
  };
  return browser;
}

// Lets every queued microtask (channel messages, lock hand-overs, and what they trigger) run.
// setImmediate fires after the microtask queue is empty; a few rounds cover chains of hand-offs.
export async function settle(rounds = 5) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

// A repeatable random(): a small LCG, values in [0, 1).
export function seededRandom(seed = 1) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

// A random() that returns the given values in turn (then repeats the last one).
export function sequence(...values) {
  let i = 0;
  const fn = () => values[Math.min(i++, values.length - 1)];
  fn.calls = () => i;
  return fn;
}

// The server's rule (app/realtime/ws.py RateLimiter): 20 frames/s, bursts of 40, each frame
// over it refused. Returns how many of the frames written at `times` (ms) it would refuse.
export function serverRefusals(times, { rate = 20, burst = 40 } = {}) {
  let tokens = burst;
  let last = times[0] ?? 0;
  let refused = 0;
  for (const t of times) {
    tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000);
    last = t;
    if (tokens >= 1) tokens -= 1;
    else refused += 1;
  }
  return refused;
}
