// The service worker (served as /sw.js, scope "/"): shows Web Push messages as system
// notifications and opens the right page of this site when one is clicked. A classic script
// on purpose (no imports, no build step): every browser with Web Push can run it.
//
// A push carries {"title", "body", "url", "tag", "id"} (app/push/sender.py): a title, the
// notification's one line of text and a path on this site, never message bodies or card data.
// `tag` is the collapse key, so a newer push about the same booking replaces the older
// notification instead of stacking; `renotify` makes the replacement alert again.
//
// Text from a push is shown as text by the system (a notification is never HTML). Its url is
// only followed when it is a path on this site: anything else opens the inbox.

"use strict";

const INBOX = "/notifications";
const GENERIC = { title: "Marketplace", body: "You have a new notification.", url: INBOX, tag: "marketplace" };
const MAX_TITLE = 100;
const MAX_BODY = 300;

// --- what a push shows -----------------------------------------------------------------

// A path on this site, or the inbox: a url that is not a string, not a path ("https://...",
// "javascript:..."), protocol-relative ("//evil.example") or that resolves to another origin
// once the URL parser is done with it ("/\\evil.example", tabs and newlines) is not followed.
function sitePath(url) {
  if (typeof url !== "string" || !url.startsWith("/") || url.startsWith("//")) return INBOX;
  const origin = self.location.origin;
  let resolved;
  try {
    resolved = new URL(url, origin);
  } catch {
    return INBOX;
  }
  if (resolved.origin !== origin) return INBOX;
  return resolved.pathname + resolved.search + resolved.hash;
}

function clip(value, max) {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

// The notification a push's data asks for: {title, options}. A push without data, or whose
// data is not a JSON object, shows the generic one (the inbox has the details).
function notificationFor(text) {
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) payload = GENERIC;
  const title = typeof payload.title === "string" && payload.title.trim() ? payload.title : GENERIC.title;
  const body = typeof payload.body === "string" ? payload.body : GENERIC.body;
  let tag = GENERIC.tag;
  if (typeof payload.tag === "string" && payload.tag) tag = payload.tag;
  else if (Number.isSafeInteger(payload.id)) tag = `notification:${payload.id}`;
  const data = { url: sitePath(payload.url) };
  if (Number.isSafeInteger(payload.id)) data.id = payload.id;
  // renotify needs a tag, and there always is one.
  return { title: clip(title, MAX_TITLE), options: { body: clip(body, MAX_BODY), tag, data, renotify: true } };
}

function pushText(event) {
  if (!event.data) return null;
  try {
    return event.data.text();
  } catch {
    return null;
  }
}

self.addEventListener("push", (event) => {
  const { title, options } = notificationFor(pushText(event));
  event.waitUntil(self.registration.showNotification(title, options));
});

// --- a click on one --------------------------------------------------------------------

// Focuses a window of this site already showing the page, or opens a new one.
async function openPage(path) {
  const target = new URL(path, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (client.url === target && typeof client.focus === "function") return client.focus();
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  notification.close();
  const url = sitePath(notification.data && notification.data.url);
  event.waitUntil(openPage(url));
});

// --- the push service changed the subscription -----------------------------------------

function b64urlBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function postForm(path, fields) {
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    body: new URLSearchParams(fields),
  });
}

function subscriptionFields(subscription) {
  const json = subscription.toJSON();
  const keys = json.keys || {};
  return { endpoint: subscription.endpoint, p256dh: keys.p256dh || "", auth: keys.auth || "" };
}

// The site forgets the old endpoint and learns the new one (subscribing again with the site's
// key when the browser did not already). Without a session (signed out) there is nothing to do:
// the server dropped this device's subscription at logout.
async function replaceSubscription(oldSubscription, newSubscription) {
  const response = await fetch("/account/push", {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) return;
  const { public_key: publicKey, csrf_token: csrfToken } = await response.json();
  if (oldSubscription && oldSubscription.endpoint) {
    await postForm("/account/push/remove", { csrf_token: csrfToken, endpoint: oldSubscription.endpoint });
  }
  let subscription = newSubscription || null;
  if (!subscription) {
    try {
      subscription = await self.registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: b64urlBytes(publicKey),
      });
    } catch {
      return; // no permission any more, or no push service: the device stays off
    }
  }
  await postForm("/account/push", { csrf_token: csrfToken, ...subscriptionFields(subscription) });
}

self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(replaceSubscription(event.oldSubscription, event.newSubscription));
});

// --- life cycle: a new version takes over at once (it holds no state) ------------------

self.addEventListener("install", (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});
