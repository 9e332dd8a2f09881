// "Enable push on this device" (the bell's dropdown): Web Push through the service worker
// /sw.js. Registering the worker asks nothing; the browser's permission is asked for only in
// the click on the button. Subscribing goes to the browser's push service with the site's
// VAPID public key (GET /account/push), and the subscription to the site (POST /account/push),
// which keeps it for this session: logging out of the session ends it there.
//
// A subscription belongs to the browser, not to a person: it is sent again on load (so a new
// session of the same person has it) only when the person signed in is the one who turned it
// on here, kept in localStorage. Someone else signing in on this browser starts "off".

export const PUSH_TEXT = {
  enable: "Enable push on this device",
  disable: "Turn off push on this device",
  on: "Push is on for this device.",
  off: "Push is off for this device.",
  blocked: "Push is blocked in this browser's settings.",
  turningOn: "Turning push on…",
  turningOff: "Turning push off…",
  notGranted: "Push stays off: the browser did not get permission to show notifications.",
};
export const OWNER_KEY = "marketplace:push-owner";
const READY_TIMEOUT_MS = 10_000;

class PushError extends Error {}

// Web Push needs a service worker, the Push API and notifications (and a secure context,
// without which the browser hides the first two).
export function pushSupported(win = globalThis.window) {
  return Boolean(
    win && win.navigator && "serviceWorker" in win.navigator && "PushManager" in win && "Notification" in win,
  );
}

export function b64urlToBytes(text) {
  const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  if (!a || !b) return true; // unknown: assume it is the site's key
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

// The form fields POST /account/push takes, from a PushSubscription.
export function subscriptionFields(subscription) {
  const keys = subscription.toJSON?.().keys ?? {};
  return { endpoint: subscription.endpoint, p256dh: keys.p256dh ?? "", auth: keys.auth ?? "" };
}

// Why something failed, in words for the note.
function reasonOf(error) {
  if (error instanceof PushError) return error.message;
  if (error?.name === "NotAllowedError") return "the browser refused (check its notification settings)";
  if (error?.name === "AbortError" || error?.name === "NotSupportedError" || error?.name === "InvalidStateError") {
    return "the browser's push service did not answer; try again later";
  }
  if (error instanceof TypeError) return "the site could not be reached";
  return "something went wrong; try again";
}

function askPermission(Notification) {
  // Older browsers take a callback instead of returning a promise.
  return new Promise((resolve, reject) => {
    const answer = Notification.requestPermission(resolve);
    if (answer && typeof answer.then === "function") answer.then(resolve, reject);
  });
}

export class PushControl {
  // `root` holds [data-push-enable] and [data-push-note]. Options: userId, onPermission (called
  // with the answer after the browser was asked: the same permission covers desktop
  // notifications); for tests win, fetchImpl, storage, readyTimeoutMs.
  constructor(root, {
    win = globalThis.window, fetchImpl, storage, userId, onPermission = () => {}, readyTimeoutMs = READY_TIMEOUT_MS,
  } = {}) {
    this.win = win;
    this.button = root.querySelector("[data-push-enable]");
    this.note = root.querySelector("[data-push-note]");
    this.fetch = fetchImpl ?? ((...args) => win.fetch(...args));
    this.storage = storage === undefined ? (win?.localStorage ?? null) : storage;
    this.userId = String(userId ?? win?.document?.body?.dataset?.userId ?? "");
    this.readyTimeoutMs = readyTimeoutMs;
    this.onPermission = onPermission;
    this.registration = null;
    this.state = "unsupported";
    this.busy = false;
  }

  get navigator() {
    return this.win.navigator;
  }

  get Notification() {
    return this.win.Notification;
  }

  // Registers the worker and shows where this device stands. Never asks for permission.
  async start() {
    if (!this.button || !this.note || !pushSupported(this.win)) {
      this.render("unsupported");
      return this.state;
    }
    this.button.addEventListener("click", () => this.onClick());
    try {
      this.registration = await this.navigator.serviceWorker.register("/sw.js", { scope: "/" });
    } catch {
      this.render("unsupported", "Push is unavailable: the browser did not start the site's service worker.");
      return this.state;
    }
    if (this.Notification.permission === "denied") {
      this.render("blocked");
      return this.state;
    }
    let subscription = null;
    try {
      subscription = await this.registration.pushManager.getSubscription();
    } catch {
      subscription = null;
    }
    if (!subscription || this.Notification.permission !== "granted" || !this.ownedHere()) {
      this.render("off");
      return this.state;
    }
    // Already on in this browser for this person: make sure this session has it.
    this.busy = true;
    try {
      await this.subscribe();
      this.render("on");
    } catch (error) {
      this.render("off", `Push could not be turned on: ${reasonOf(error)}.`);
    } finally {
      this.busy = false;
    }
    return this.state;
  }

  onClick() {
    if (this.busy) return null;
    this.busy = true;
    const work = this.state === "on" ? this.turnOff() : this.turnOn();
    return work.finally(() => {
      this.busy = false;
    });
  }

  // The click: the permission first (while the click still counts as the person's gesture),
  // then the key, the push service, the site.
  async turnOn() {
    const granted = this.Notification.permission === "granted";
    const asked = granted ? Promise.resolve("granted") : askPermission(this.Notification);
    this.render("working", PUSH_TEXT.turningOn);
    let permission;
    try {
      permission = await asked;
    } catch {
      permission = "default";
    }
    if (!granted) this.onPermission(permission);
    if (permission === "denied") return this.render("blocked");
    if (permission !== "granted") return this.render("off", PUSH_TEXT.notGranted);
    try {
      await this.subscribe();
    } catch (error) {
      if (error?.name === "NotAllowedError" && this.Notification.permission === "denied") return this.render("blocked");
      return this.render("off", `Push could not be turned on: ${reasonOf(error)}.`);
    }
    this.setOwner(this.userId);
    return this.render("on");
  }

  async turnOff() {
    this.render("working", PUSH_TEXT.turningOff);
    let unsubscribed = false;
    try {
      const subscription = await this.registration.pushManager.getSubscription();
      if (subscription) {
        const { csrf_token: csrfToken } = await this.siteKey();
        const endpoint = subscription.endpoint;
        unsubscribed = await subscription.unsubscribe();
        await this.post("/account/push/remove", { csrf_token: csrfToken, endpoint });
      }
    } catch (error) {
      // Unsubscribed in the browser, the device gets nothing more (the site drops the endpoint
      // when the push service answers that it is gone); otherwise it is still on.
      if (!unsubscribed) return this.render("on", `Push could not be turned off: ${reasonOf(error)}.`);
    }
    this.setOwner(null);
    return this.render("off", PUSH_TEXT.off);
  }

  // This browser's subscription with the site's current key (made when missing, or made again
  // when it was for an older key), stored by the site for this session.
  async subscribe() {
    const { public_key: publicKey, csrf_token: csrfToken } = await this.siteKey();
    const key = b64urlToBytes(publicKey);
    const registration = await this.ready();
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameBytes(subscription.options?.applicationServerKey, key)) {
      await subscription.unsubscribe().catch(() => false);
      await this.post("/account/push/remove", { csrf_token: csrfToken, endpoint: subscription.endpoint }).catch(() => null);
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    await this.post("/account/push", { csrf_token: csrfToken, ...subscriptionFields(subscription) });
    return subscription;
  }

  // The worker active (subscribing needs one), within a bound.
  ready() {
    return new Promise((resolve, reject) => {
      const timer = this.win.setTimeout(
        () => reject(new PushError("the site's service worker did not start")),
        this.readyTimeoutMs,
      );
      this.navigator.serviceWorker.ready.then(
        (registration) => {
          this.win.clearTimeout(timer);
          resolve(registration);
        },
        (error) => {
          this.win.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async siteKey() {
    const response = await this.fetch("/account/push", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    await this.check(response);
    const body = await response.json();
    if (typeof body?.public_key !== "string" || typeof body?.csrf_token !== "string") {
      throw new PushError("the site did not send its push key");
    }
    return body;
  }

  async post(path, fields) {
    const response = await this.fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(fields),
    });
    await this.check(response);
    return response;
  }

  async check(response) {
    if (response.ok) return;
    if (response.status === 401) throw new PushError("you are signed out; log in again");
    if (response.status === 403) throw new PushError("the page is out of date; reload it");
    let message = null;
    try {
      message = (await response.json())?.error;
    } catch {
      message = null;
    }
    throw new PushError(typeof message === "string" && message ? `the site said: ${message}` : `the site answered ${response.status}`);
  }

  ownedHere() {
    try {
      return this.storage?.getItem(OWNER_KEY) === this.userId && this.userId !== "";
    } catch {
      return false;
    }
  }

  setOwner(userId) {
    try {
      if (userId) this.storage?.setItem(OWNER_KEY, userId);
      else this.storage?.removeItem(OWNER_KEY);
    } catch {
      // storage off (private mode): the on state is then not carried over to new sessions
    }
  }

  // state: unsupported | off | working | on | blocked. `message` replaces the note's usual text.
  render(state, message = null) {
    this.state = state;
    if (!this.button || !this.note) return state;
    this.button.dataset.state = state;
    this.button.hidden = state === "unsupported" || state === "blocked";
    this.button.disabled = state === "working";
    if (state === "on") this.button.textContent = PUSH_TEXT.disable;
    else if (state !== "working") this.button.textContent = PUSH_TEXT.enable;
    const usual = { on: PUSH_TEXT.on, blocked: PUSH_TEXT.blocked }[state] ?? "";
    this.note.textContent = message ?? usual;
    return state;
  }
}

// app.js: the control in the live header, started once the page's script runs.
export function startPush(root, options = {}) {
  const control = new PushControl(root, options);
  control.start().catch(() => control.render("unsupported"));
  return control;
}
