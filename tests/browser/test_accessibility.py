"""Look and accessibility: a keyboard-friendly bell and dropdown, polite toasts, a status in
words, pages that work without JavaScript, and no sideways scrolling on a 375 px phone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.conftest import (
    Contexts,
    LiveServer,
    future_slot,
    login,
    signup_ui,
    status,
    wait_live,
)

PHONE: ViewportSize = {"width": 375, "height": 740}


def focus_index(page: Page) -> int:
    """Where the focus is among the dropdown's links and buttons (-1: elsewhere)."""
    return int(
        page.evaluate(
            "[...document.querySelector('[data-rt-dropdown]').querySelectorAll('a, button')]"
            ".indexOf(document.activeElement)"
        )
    )


def on_screen(page: Page, width: int) -> None:
    """The open dropdown is wholly inside the viewport's width."""
    box = page.locator("#rt-dropdown").bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (width, box)


def test_the_bell_is_a_button_with_a_keyboard_dropdown_and_toasts_are_announced_politely(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Kim Keyboard")
    live_server.publish([user.id], {"message": "Rendered by the server"})
    page = login(new_context(), user, "/services")
    wait_live(page)

    # The status says it in words (the dot's colour is extra), as a status role.
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    expect(status(page)).to_have_text("Live")

    bell = page.get_by_role("button", name=re.compile(r"^Notifications, 1 unread$"))
    expect(bell).to_be_visible()
    assert bell.evaluate("el => el.tagName") == "BUTTON"
    expect(bell).to_have_attribute("aria-controls", "rt-dropdown")
    dropdown = page.locator("#rt-dropdown")
    expect(bell).to_have_attribute("aria-expanded", "false")
    expect(dropdown).to_be_hidden()

    # Click opens and closes it.
    bell.click()
    expect(bell).to_have_attribute("aria-expanded", "true")
    expect(dropdown).to_be_visible()
    expect(dropdown.get_by_role("link", name="Rendered by the server")).to_be_visible()
    bell.click()
    expect(bell).to_have_attribute("aria-expanded", "false")
    expect(dropdown).to_be_hidden()

    # The keyboard: Enter opens and focuses the first item, arrows move, Escape closes and
    # gives the focus back to the bell.
    bell.focus()
    page.keyboard.press("Enter")
    expect(bell).to_have_attribute("aria-expanded", "true")
    expect(dropdown).to_be_visible()
    assert focus_index(page) == 0
    page.keyboard.press("ArrowDown")
    assert focus_index(page) == 1
    page.keyboard.press("ArrowDown")
    assert focus_index(page) == 2
    page.keyboard.press("ArrowUp")
    assert focus_index(page) == 1
    page.keyboard.press("Escape")
    expect(bell).to_have_attribute("aria-expanded", "false")
    expect(dropdown).to_be_hidden()
    expect(bell).to_be_focused()

    # Toasts sit in a polite live region.
    live_server.publish([user.id], {"message": "A toast for screen readers"})
    toast = page.locator(".toast").filter(has_text="A toast for screen readers")
    expect(toast).to_be_visible()
    region = toast.locator("xpath=ancestor::*[@aria-live][1]")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_attribute("data-rt-toasts", "")
    expect(page.get_by_role("button", name="Dismiss")).to_be_visible()
    page.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)


def test_without_javascript_people_sign_up_browse_and_book_and_the_header_says_live_needs_it(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Noel Provider")
    service_id = provider.create_service("Piano Lessons", price="45.00")
    page, _ = signup_ui(new_context(java_script_enabled=False), "Nico NoScript")
    expect(page.get_by_role("link", name="Nico NoScript")).to_be_visible()

    # The live header is off and says so; the plain link does the job.
    header = page.locator("header.site-header")
    # (Playwright's text matching skips <noscript>; the rendered text shows it is displayed.)
    expect(header.locator("noscript .rt-status")).to_be_visible()
    assert "Live updates need JavaScript" in header.inner_text()
    expect(header.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    expect(page.locator("[data-realtime]")).to_be_hidden()

    # Browse and book through the forms.
    with page.expect_navigation(url=re.compile(rf"/services/{service_id}$")):
        page.get_by_role("link", name="Piano Lessons").first.click()
    page.fill("#f-scheduled_at", future_slot())
    page.fill("#f-note", "No scripts here.")
    with page.expect_navigation(url=re.compile(r"/bookings/\d+$")):
        page.get_by_role("button", name="Request booking").click()
    booking_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("[data-status]")).to_have_text("Pending")

    # The provider accepts; a reload (no live updates) shows it, and the inbox link counts it.
    assert provider.post_form(f"/bookings/{booking_id}/accept", {})[0] == 303
    page.reload()
    expect(page.locator("[data-status]")).to_have_text("Accepted")
    expect(header.get_by_role("link", name=re.compile(r"^Notifications 1 unread"))).to_be_visible()

    # And pays through the form.
    with page.expect_navigation(url=re.compile(rf"/bookings/{booking_id}/pay$")):
        page.get_by_role("link", name=re.compile(r"^Pay")).click()
    page.fill("#f-amount", "45.00")
    page.fill("#f-card_number", "4242 4242 4242 4242")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(page.locator("main")).to_contain_text(re.compile(r"[Ss]ucceeded"))


def test_at_375_px_the_header_a_booking_page_and_the_open_dropdown_fit_the_screen(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Wren Wide")
    client = live_server.signup("Pia Phone")
    booking_id = client.book(provider.create_service("A Very Long Service Name For Small Screens"))
    page = login(new_context(viewport=PHONE), client, f"/bookings/{booking_id}")
    wait_live(page)
    live_server.publish([client.id], {"message": "A fairly long message " * 6})
    expect(page.locator(".toast")).to_have_count(1)

    def fits() -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (page.url, width)

    fits()
    page.locator("[data-rt-bell]").click()
    expect(page.locator("#rt-dropdown")).to_be_visible()
    fits()
    on_screen(page, PHONE["width"])
    for width in (320, 640, 700, 900):  # around the narrow-screen breakpoint, too
        page.set_viewport_size({"width": width, "height": 740})
        on_screen(page, width)
    page.set_viewport_size(PHONE)
    for path in ("/services", "/bookings", "/notifications"):
        page.goto(path)
        wait_live(page)
        fits()
