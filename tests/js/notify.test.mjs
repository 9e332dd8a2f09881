import test from "node:test";
import assert from "node:assert/strict";

import {
  askDesktopPermission, desktopEnabled, desktopUnavailableReason, messageOf, showDesktop, titleFor,
} from "../../static/js/notify.js";

// A window with a Notification API whose instances are recorded.
function fakeWindow({ permission = "granted", secure = true, answer = "granted" } = {}) {
  const created = [];
  class FakeNotification {
    static permission = permission;
    static requests = 0;

    static async requestPermission() {
      FakeNotification.requests += 1;
      FakeNotification.permission = answer;
      return answer;
    }

    constructor(title, options) {
      this.title = title;
      this.options = options;
      this.closed = false;
      this.onclick = null;
      created.push(this);
    }

    close() {
      this.closed = true;
    }
  }
  const win = {
    Notification: FakeNotification,
    isSecureContext: secure,
    location: { href: "/" },
    focused: 0,
    focus() {
      win.focused += 1;
    },
  };
  return { win, created, Notification: FakeNotification };
}

const bookingFrame = {
  id: 123, type: "booking_update", key: "booking:42", unread: 3,
  data: { type: "booking_accepted", message: "Ana accepted your booking for Friday" },
  created_at: "2026-11-25T19:31:15Z",
};

test("desktopUnavailableReason explains a browser without the Notification API", () => {
  assert.match(desktopUnavailableReason({ isSecureContext: true }), /no desktop notifications/);
  assert.match(desktopUnavailableReason(null), /no desktop notifications/);
});

test("desktopUnavailableReason explains an insecure context", () => {
  const { win } = fakeWindow({ secure: false, permission: "default" });
  assert.match(desktopUnavailableReason(win), /secure \(https\)/);
});

test("desktopUnavailableReason explains a permission the person denied", () => {
  const { win } = fakeWindow({ permission: "denied" });
  assert.match(desktopUnavailableReason(win), /blocked/);
});

test("desktopUnavailableReason is null when notifications are allowed or can be asked for", () => {
  assert.equal(desktopUnavailableReason(fakeWindow({ permission: "granted" }).win), null);
  assert.equal(desktopUnavailableReason(fakeWindow({ permission: "default" }).win), null);
});

test("desktopEnabled only when the permission is granted in a secure context", () => {
  assert.equal(desktopEnabled(fakeWindow({ permission: "granted" }).win), true);
  assert.equal(desktopEnabled(fakeWindow({ permission: "default" }).win), false);
  assert.equal(desktopEnabled(fakeWindow({ permission: "denied" }).win), false);
  assert.equal(desktopEnabled(fakeWindow({ permission: "granted", secure: false }).win), false);
});

test("showDesktop creates a notification with the title, the message as body and the frame's key as tag", () => {
  const { win, created } = fakeWindow();
  const notification = showDesktop(bookingFrame, win);
  assert.equal(created.length, 1);
  assert.equal(notification, created[0]);
  assert.equal(notification.title, "Booking accepted");
  assert.equal(notification.options.body, "Ana accepted your booking for Friday");
  assert.equal(notification.options.tag, "booking:42");
});

test("two updates of one booking share a tag, so the newer replaces the older", () => {
  const { win, created } = fakeWindow();
  showDesktop(bookingFrame, win);
  showDesktop({ ...bookingFrame, id: 124, data: { type: "booking_completed", message: "Done" } }, win);
  assert.equal(created[0].options.tag, created[1].options.tag);
  assert.equal(created[1].title, "Booking completed");
});

test("a frame without a key gets a tag of its own", () => {
  const { win, created } = fakeWindow();
  showDesktop({ id: 9, type: "notification", data: { message: "Maintenance at 22:00" } }, win);
  assert.equal(created[0].options.tag, "notification:9");
  assert.equal(created[0].title, "Notification");
  assert.equal(created[0].options.body, "Maintenance at 22:00");
});

test("showDesktop does nothing when the permission is not granted", () => {
  for (const permission of ["default", "denied"]) {
    const { win, created } = fakeWindow({ permission });
    assert.equal(showDesktop(bookingFrame, win), null, permission);
    assert.equal(created.length, 0, permission);
  }
});

test("showDesktop does nothing in an insecure context or without the API", () => {
  const insecure = fakeWindow({ secure: false });
  assert.equal(showDesktop(bookingFrame, insecure.win), null);
  assert.equal(insecure.created.length, 0);
  assert.equal(showDesktop(bookingFrame, { isSecureContext: true }), null);
});

test("clicking the notification focuses the window, opens the notification and closes it", () => {
  const { win } = fakeWindow();
  const notification = showDesktop(bookingFrame, win);
  notification.onclick();
  assert.equal(win.focused, 1);
  assert.equal(win.location.href, "/notifications/123");
  assert.equal(notification.closed, true);
});

test("titleFor and messageOf fall back sensibly", () => {
  assert.equal(titleFor({ data: { type: "payment_failed" } }), "Payment failed");
  assert.equal(titleFor({ data: { type: "unheard_of" } }), "Notification");
  assert.equal(titleFor(null), "Notification");
  assert.equal(messageOf({ data: { type: "payment_received", message: "" } }), "Payment received");
  assert.equal(messageOf({ data: { type: "payment_received", message: 5 } }), "Payment received");
});

test("askDesktopPermission asks the browser only when notifications are possible", async () => {
  const ok = fakeWindow({ permission: "default", answer: "granted" });
  assert.equal(await askDesktopPermission(ok.win), "granted");
  assert.equal(ok.Notification.requests, 1);

  const denied = fakeWindow({ permission: "denied" });
  assert.equal(await askDesktopPermission(denied.win), "unavailable");
  assert.equal(denied.Notification.requests, 0);

  const insecure = fakeWindow({ permission: "default", secure: false });
  assert.equal(await askDesktopPermission(insecure.win), "unavailable");
  assert.equal(insecure.Notification.requests, 0);
});
