"""Screenshots of the live header's states for the README, each state asserted first.

The PNGs are written under docs/ only with UPDATE_SCREENSHOTS=1 (so CI never writes into the
tree); otherwise the shots are still taken, which checks the states render:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import (
    ROOT,
    Contexts,
    LiveServer,
    badge,
    login,
    open_page,
    status,
    wait_live,
)

DOCS = ROOT / "docs"
LAPTOP = {"width": 1000, "height": 640}
PHONE = {"width": 375, "height": 740}
STABLE: dict[str, Any] = {"locale": "en-US", "timezone_id": "UTC", "color_scheme": "light"}


def save(name: str, png: bytes) -> None:
    assert png.startswith(b"\x89PNG"), name
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / name).write_bytes(png)


def around(page: Page, *parts: Locator, margin: int = 8) -> bytes:
    """A shot of the smallest strip (full width) holding every part."""
    boxes = [part.bounding_box() for part in parts]
    shown = [box for box in boxes if box is not None]
    assert len(shown) == len(boxes), f"not all on screen: {boxes}"
    top = max(0.0, min(box["y"] for box in shown) - margin)
    bottom = max(box["y"] + box["height"] for box in shown) + margin
    width = page.viewport_size["width"] if page.viewport_size else 1000
    clip: Any = {"x": 0, "y": top, "width": width, "height": bottom - top}
    return page.screenshot(clip=clip, animations="disabled", caret="hide")


def test_the_header_states_render_as_documented_and_their_screenshots_are_taken(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    booking_id = client.book(provider.create_service("House Cleaning"), note="Ring twice.")
    page = login(new_context(viewport=LAPTOP, **STABLE), client, "/bookings")
    header = page.locator("header.site-header")
    wait_live(page)

    # A toast: the provider accepts the booking.
    assert provider.post_form(f"/bookings/{booking_id}/accept", {})[0] == 303
    toast = page.locator("[data-rt-toasts] .toast")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("Booking accepted")
    expect(badge(page)).to_have_text("1")
    save("toast.png", around(page, toast, margin=16))
    page.locator("[data-rt-toasts] .toast-close").click()
    expect(toast).to_have_count(0)

    # Live, with the dropdown open and the notification in it.
    page.locator("[data-rt-bell]").click()
    dropdown = page.locator("#rt-dropdown")
    expect(dropdown).to_be_visible()
    expect(page.locator("[data-rt-bell]")).to_have_attribute("aria-expanded", "true")
    expect(dropdown.locator(".rt-item")).to_have_count(1)
    expect(dropdown.locator(".rt-item")).to_contain_text("Booking accepted")
    expect(status(page)).to_have_text("Live")
    save("header-live.png", around(page, header, dropdown))
    page.keyboard.press("Escape")
    expect(dropdown).to_be_hidden()

    # A phone: the booking page at 375 px, no sideways scrolling.
    phone = login(new_context(viewport=PHONE, **STABLE), client, f"/bookings/{booking_id}")
    wait_live(phone)
    expect(phone.locator('[data-live-region="booking"] [data-status]')).to_have_text("Accepted")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save("mobile.png", phone.screenshot(animations="disabled", caret="hide"))
    phone.context.close()

    # The server goes away: reconnecting.
    live_server.stop()
    expect(status(page)).to_have_attribute("data-state", "reconnecting")
    expect(status(page)).to_have_text(re.compile(r"^Reconnecting"))
    save("header-reconnecting.png", around(page, header))
    live_server.start()
    wait_live(page, timeout=20_000)

    # Logged out in another tab of this browser: signed out, with a way back in.
    other = open_page(page.context, "/services")
    wait_live(other)
    with other.expect_navigation(url=re.compile(r"/login$")):
        other.get_by_role("button", name="Log out").click()
    expect(status(page)).to_have_attribute("data-state", "signed-out")
    expect(status(page)).to_have_text("Signed out · Log in again")
    save("header-signed-out.png", around(page, header))
