// The page script for signed-in pages: starts live notifications and wires the header to them.
// Loaded as a module from base.html; the page's data comes from data-* attributes.

import { connectRealtime } from "./realtime.js";
import { LiveHeader } from "./ui/header.js";
import { LiveRegions } from "./pages/live-regions.js";
import { localizeTimes } from "./localtime.js";

function start() {
  const body = document.body;
  const root = document.querySelector("[data-realtime]");
  if (!root || !body.dataset.userId) return;
  const header = new LiveHeader(root);
  const regions = new LiveRegions({ onUpdated: () => localizeTimes() });
  const rt = connectRealtime({
    userId: body.dataset.userId,
    onStatusChange: (detail) => header.setStatus(detail),
    onBookingUpdate: (_data, frame) => { header.onFrame(frame); regions.changed(); },
    onPaymentUpdate: (_data, frame) => { header.onFrame(frame); regions.changed(); },
    onNotification: (_data, frame) => header.onFrame(frame),
    onControl: (frame) => header.onControl(frame),
  });
  header.attach(rt);
  // Tests and curious developers can reach the connection from the console.
  window.marketplaceRealtime = rt;
}

start();
