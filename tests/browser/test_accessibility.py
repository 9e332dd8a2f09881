"""Look and accessibility: a keyboard-friendly bell and dropdown, polite toasts, a status in
words, pages that work without JavaScript, no sideways scrolling on a 375 px phone, and an
automated check (axe-core, vendored under tests/vendor/) of every page, signed in and out, in
light and dark: no serious or critical violation."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import (
    ROOT,
    Contexts,
    LiveServer,
    future_slot,
    login,
    signup_ui,
    status,
    wait_live,
)

PHONE: ViewportSize = {"width": 375, "height": 740}
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
# Runs axe on the whole page; returns the serious and critical violations, each with where
# (CSS selectors of up to five nodes) and what to do (help text and its URL).
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                  targets: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
}"""


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


# --- axe-core on every page ---------------------------------------------------------------


def axe_violations(context: BrowserContext, path: str, *, live: bool) -> tuple[str, list[Any]]:
    """Opens `path`, waits for the live header when signed in, runs axe; returns the URL it
    ended on (a signed-out visit to a private page lands on the login form) and what axe
    found."""
    page = context.new_page()
    response = page.goto(path)
    assert response is not None and response.status < 500, (path, response)
    if live:
        wait_live(page)
    expect(page.locator("main h1")).to_have_count(1)
    page.add_script_tag(content=AXE.read_text())
    found: list[Any] = page.evaluate(RUN_AXE)
    url = page.url
    page.close()
    return url, found


def test_axe_finds_no_serious_violation_on_any_page_signed_in_or_out_light_or_dark(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    service_id = provider.create_service("House Cleaning")
    provider.create_service("Piano Lessons", price="45.00")

    # A booking with a message and a declined payment (the booking still wants paying) ...
    booking_id = client.book(service_id, note="Ring twice.")
    assert provider.post_form(f"/bookings/{booking_id}/accept", {})[0] == 303
    message = {
        "body": "Hello Pat, the gate code is 1234.",
        "client_msg_id": client.form_value(f"/bookings/{booking_id}", "client_msg_id"),
    }
    assert client.post_form(f"/bookings/{booking_id}/messages", message)[0] == 303
    failed_payment = client.pay(booking_id, "4000 0000 0000 0002")
    # ... and one paid, done and reviewed, so the service and profile show a review.
    done_id = client.book(service_id)
    assert provider.post_form(f"/bookings/{done_id}/accept", {})[0] == 303
    client.pay(done_id)
    assert provider.post_form(f"/bookings/{done_id}/complete", {})[0] == 303
    review = {"rating": "5", "body": "Spotless.\nWould book again."}
    assert client.post_form(f"/bookings/{done_id}/review", review)[0] == 303

    public = [
        "/",
        "/services?q=cleaning",
        f"/services/{service_id}",
        f"/providers/{provider.id}",
        "/login",
        "/signup",
        "/no-such-page",
    ]
    private = [
        "/services/new",
        "/my/services",
        "/bookings",
        f"/bookings/{booking_id}",
        f"/bookings/{booking_id}/pay",
        f"/payments/{failed_payment}",
        "/notifications",
        "/account/notifications",
        "/account/sessions",
    ]
    problems: list[str] = []
    for scheme in ("light", "dark"):
        # bypass_csp: the site's CSP rightly refuses the injected (inline) axe script.
        options: dict[str, Any] = {"color_scheme": scheme, "bypass_csp": True}
        signed_in = login(new_context(**options), client, "/services").context
        signed_out = new_context(**options)
        checked: set[tuple[str, str]] = set()
        # Signed out, a private page is the login form (in `public`), checked once.
        for who, context, paths in (
            ("signed in", signed_in, public + private),
            ("signed out", signed_out, public),
        ):
            for path in paths:
                url, found = axe_violations(context, path, live=who == "signed in")
                checked.add((who, url))
                for v in found:
                    problems.append(
                        f"{path} ({who}, {scheme}): {v['impact']} {v['id']}: {v['help']}"
                        f" at {v['targets']} ({v['helpUrl']})"
                    )
        # The sweep saw what it should: every private page signed in (none bounced to the
        # login form), the login form signed out.
        assert {("signed in", live_server.url + p) for p in private} <= checked, checked
        assert ("signed out", live_server.url + "/login") in checked
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
