// Typing indicators, both ways, without the DOM (node tests drive them with a fake clock).
//
// TypingThrottle (sending): the first keystroke says "typing" at once, then at most one a
// `interval` while typing goes on; the server passes on at most one per 2 s anyway, so more
// would be wasted frames. No trailing send: the other side's indicator outlives the gap.
// After a message is sent (reset) the other side's indicator is gone, so the next keystroke
// says "typing" again at once, unless that is within the server's window since our last
// frame: it would be dropped quietly, so the first keystroke after the window does it.
//
// TypingIndicator (showing): the other party's "typing" shows their name until `hideAfter`
// passes without another one (they stopped, or their frames were dropped), or until their
// message arrives.

export const TYPING_DEFAULTS = Object.freeze({
  interval: 3000, // ms between two typing frames we send
  serverWindow: 2000, // ms: the server drops a typing frame this soon after the previous one
  hideAfter: 6000, // ms an indicator stays after the last typing frame
});

export class TypingThrottle {
  constructor({ now = () => Date.now(), interval = TYPING_DEFAULTS.interval, serverWindow = TYPING_DEFAULTS.serverWindow } = {}) {
    this.now = now;
    this.interval = interval;
    this.serverWindow = serverWindow;
    this.lastSent = null;
    this.fresh = true; // a new burst: only the server's window holds it back
  }

  // The textarea's text after an input: true when a typing frame should go out now.
  input(text) {
    if (typeof text !== "string" || text.trim() === "") return false; // cleared: not typing
    const now = this.now();
    const gap = this.fresh ? this.serverWindow : this.interval;
    if (this.lastSent !== null && now - this.lastSent < gap) return false;
    this.lastSent = now;
    this.fresh = false;
    return true;
  }

  // The message went: the next keystroke starts a new burst of typing.
  reset() {
    this.fresh = true;
  }
}

export class TypingIndicator {
  // `onChange(name)`: show "<name> is typing…"; `onChange(null)`: hide it.
  constructor({ onChange, setTimeout, clearTimeout, hideAfter = TYPING_DEFAULTS.hideAfter } = {}) {
    this.onChange = onChange ?? (() => {});
    this.setTimeout = setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    this.hideAfter = hideAfter;
    this.name = null;
    this.timer = null;
  }

  get showing() {
    return this.name !== null;
  }

  show(name) {
    this.stopTimer();
    this.timer = this.setTimeout(() => {
      this.timer = null;
      this.hide();
    }, this.hideAfter);
    if (name === this.name) return;
    this.name = name;
    this.onChange(name);
  }

  hide() {
    this.stopTimer();
    if (this.name === null) return;
    this.name = null;
    this.onChange(null);
  }

  stopTimer() {
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
  }
}
