// Read receipts, debounced: the page offers the newest incoming seq it has on screen; after
// `delay` ms without a newer offer one `read` goes out carrying the highest. A receipt never
// goes backwards (the watermark only moves forward: ours, or one another device sent) and
// never while the thread is not visible: the person must actually see what they mark read.
// No DOM; node tests drive it with a fake clock.

export const RECEIPT_DEFAULTS = Object.freeze({ delay: 500 });

export class ReceiptSender {
  // `send(seq)` sends one read receipt (through the outbox); `canSend()` says whether the
  // thread is on screen right now.
  constructor({ send, canSend = () => true, readSeq = 0, setTimeout, clearTimeout, delay } = {}) {
    this.send = send;
    this.canSend = canSend;
    this.readSeq = Number.isSafeInteger(readSeq) && readSeq > 0 ? readSeq : 0;
    this.setTimeout = setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    this.delay = delay ?? RECEIPT_DEFAULTS.delay;
    this.wanted = 0;
    this.timer = null;
  }

  // The person has seen up to `seq`: a receipt follows once things calm down.
  offer(seq) {
    if (!Number.isSafeInteger(seq) || seq <= this.readSeq) return;
    this.wanted = Math.max(this.wanted, seq);
    this.stopTimer();
    this.timer = this.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.delay);
  }

  flush() {
    this.stopTimer();
    if (this.wanted <= this.readSeq) return;
    if (!this.canSend()) return; // hidden meanwhile: offered again when it shows
    this.readSeq = this.wanted;
    this.send(this.readSeq);
  }

  // The watermark moved without us (another device read, or we sent a message).
  observeRead(seq) {
    if (!Number.isSafeInteger(seq) || seq <= this.readSeq) return;
    this.readSeq = seq;
    if (this.wanted <= seq) this.stopTimer();
  }

  stopTimer() {
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
  }
}
