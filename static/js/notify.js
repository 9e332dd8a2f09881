// Desktop notifications through the Notification API: asked for on a click, never on load.

const TITLES = {
  new_booking: "New booking",
  booking_accepted: "Booking accepted",
  booking_declined: "Booking declined",
  booking_cancelled: "Booking cancelled",
  booking_completed: "Booking completed",
  payment_received: "Payment received",
  payment_confirmed: "Payment confirmed",
  payment_failed: "Payment failed",
  payment_refunded: "Payment refunded",
  new_review: "New review",
  new_message: "New message",
};

export function titleFor(frame) {
  const event = frame?.data?.type;
  return TITLES[event] ?? "Notification";
}

export function messageOf(frame) {
  const message = frame?.data?.message;
  return typeof message === "string" && message ? message : titleFor(frame);
}

// Why desktop notifications cannot be shown, or null when they can (or can be asked for).
export function desktopUnavailableReason(win = globalThis.window) {
  if (!win || !("Notification" in win)) return "This browser has no desktop notifications.";
  if (!win.isSecureContext) return "Desktop notifications need a secure (https) connection.";
  if (win.Notification.permission === "denied") {
    return "Desktop notifications are blocked for this site in your browser settings.";
  }
  return null;
}

export function desktopEnabled(win = globalThis.window) {
  return desktopUnavailableReason(win) === null && win.Notification.permission === "granted";
}

export async function askDesktopPermission(win = globalThis.window) {
  if (desktopUnavailableReason(win) !== null) return "unavailable";
  return win.Notification.requestPermission();
}

// One system notification; `tag` is the collapse key, so a newer state of the same booking
// replaces the older one instead of stacking.
export function showDesktop(frame, win = globalThis.window) {
  if (!desktopEnabled(win)) return null;
  const notification = new win.Notification(titleFor(frame), {
    body: messageOf(frame),
    tag: frame.key || `notification:${frame.id}`,
    data: { url: `/notifications/${frame.id}` },
  });
  notification.onclick = () => {
    win.focus();
    win.location.href = `/notifications/${frame.id}`;
    notification.close();
  };
  return notification;
}
