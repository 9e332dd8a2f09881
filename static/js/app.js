// The page script for signed-in pages: starts live notifications and wires the header to them.
// Loaded as a module from base.html; the page's data comes from data-* attributes.

import { connectRealtime } from "./realtime.js";
import { LiveHeader } from "./ui/header.js";
import { LiveRegions } from "./pages/live-regions.js";
import { ConversationPage } from "./pages/conversation.js";
import { setConversationUnread } from "./conversation/unread.js";
import { localizeTimes } from "./localtime.js";
import { startPush } from "./push.js";

async function start() {
  const body = document.body;
  const root = document.querySelector("[data-realtime]");
  if (!root || !body.dataset.userId) return;
  const header = new LiveHeader(root);
  const regions = new LiveRegions({ onUpdated: () => localizeTimes() });
  const section = document.querySelector("[data-conversation]");
  const conversation = section ? new ConversationPage(section) : null;
  if (conversation) header.showConversation(conversation.bookingId);
  // The inbox page's own script, fetched only there; loaded before the socket starts, so it
  // sees every frame (a replay included).
  const inboxRoot = document.querySelector("[data-inbox]");
  const inbox = inboxRoot
    ? new (await import("./pages/inbox.js")).InboxPage(inboxRoot, { localize: (el) => localizeTimes(el) })
    : null;
  const onNotice = (frame) => { header.onFrame(frame); inbox?.onFrame(frame); };
  // The newest notification the server rendered into the dropdown: no need to replay it.
  const rendered = [...root.querySelectorAll("[data-rt-list] [data-notification-id]")]
    .map((item) => Number(item.dataset.notificationId));
  const rt = connectRealtime({
    userId: body.dataset.userId,
    lastId: Math.max(0, ...rendered),
    onStatusChange: (detail) => header.setStatus(detail),
    onBookingUpdate: (_data, frame) => { onNotice(frame); regions.changed(); },
    onPaymentUpdate: (_data, frame) => { onNotice(frame); regions.changed(); },
    onNotification: (_data, frame) => onNotice(frame),
    onMessage: (data, frame) => {
      header.onMessage(frame);
      setConversationUnread(document, data?.booking_id, data?.unread);
      conversation?.onMessage(data, frame);
    },
    onControl: (frame) => { header.onControl(frame); conversation?.onControl(frame); inbox?.onControl(frame); },
  });
  header.attach(rt);
  conversation?.attach(rt);
  inbox?.attach(rt);
  // "Enable push on this device": registers /sw.js now, asks for permission only on its click.
  startPush(root, { userId: body.dataset.userId, onPermission: () => header.renderDesktopControl() });
  // Logging out here signs out every tab of this browser: tell them before this page goes.
  for (const form of document.querySelectorAll("form[data-rt-signout]")) {
    form.addEventListener("submit", () => rt.signOut());
  }
  // Tests and curious developers can reach the connection from the console.
  window.marketplaceRealtime = rt;
}

start();
