"""Desktop notifications: shown through the Notification API when the page is hidden, with the
event's title, the message as body and the collapse key as tag."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import (
    HIDDEN_PAGE,
    NOTIFICATION_SPY,
    Contexts,
    LiveServer,
    login,
    wait_live,
)


def test_a_booking_update_on_a_hidden_page_shows_one_desktop_notification_tagged_by_booking(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Harper Hidden")
    context = new_context(init_scripts=(HIDDEN_PAGE, NOTIFICATION_SPY))
    context.grant_permissions(["notifications"], origin=live_server.url)
    page = login(context, user, "/services")
    wait_live(page)
    assert page.evaluate("document.visibilityState") == "hidden"
    expect(page.locator("[data-rt-desktop-note]")).to_have_text(
        "Desktop notifications are on for this browser.", use_inner_text=False
    )

    message = "Pat accepted your booking for House Cleaning."
    [accepted] = live_server.publish(
        [user.id],
        {"type": "booking_accepted", "booking_id": 42, "message": message},
        type="booking_update",
    )
    # A later update of another booking: once it is in, anything the first caused is too.
    [later] = live_server.publish(
        [user.id],
        {"type": "payment_confirmed", "payment_id": 7, "message": "Paid."},
        type="payment_update",
    )
    for notification_id in (accepted, later):
        expect(
            page.locator(f'[data-rt-list] [data-notification-id="{notification_id}"]')
        ).to_have_count(1)
    page.wait_for_function("window.__notifications.length >= 2")
    shown: list[dict[str, Any]] = page.evaluate("window.__notifications")
    assert shown == [
        {"title": "Booking accepted", "body": message, "tag": "booking:42"},
        {"title": "Payment confirmed", "body": "Paid.", "tag": "payment:7"},
    ]
    # A hidden page shows no toasts.
    expect(page.locator("[data-rt-toasts] .toast")).to_have_count(0)
