"""Screenshots for the README, each taken after asserting what it shows: the live header's
states (docs/*.png), and the home page, a service page and the bookings page on a laptop and
a phone, light and dark (docs/screenshots/<page>-<desktop|phone>-<light|dark>.png).

The PNGs are written only with UPDATE_SCREENSHOTS=1 (so CI never writes into the tree);
otherwise the shots are still taken, which checks the states render:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py -k sqlite
"""

from __future__ import annotations

import os
import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import (
    ROOT,
    Contexts,
    HttpUser,
    LiveServer,
    badge,
    login,
    open_page,
    poll,
    status,
    wait_live,
)

DOCS = ROOT / "docs"
LAPTOP = {"width": 1000, "height": 640}
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
STABLE: dict[str, Any] = {"locale": "en-US", "timezone_id": "UTC", "color_scheme": "light"}
# Every image in view has loaded (the cards' pictures are lazy).
IMAGES_IN_VIEW_LOADED = """[...document.images]
  .filter((img) => img.getBoundingClientRect().top < innerHeight)
  .every((img) => img.complete && img.naturalWidth > 0)"""


def save(name: str, png: bytes) -> None:
    """Writes docs/<name> (a path under docs/) when asked to; checks it is a PNG either way."""
    assert png.startswith(b"\x89PNG"), name
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = DOCS / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)


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


# --- the README's page shots ----------------------------------------------------------------


def offer(provider: HttpUser, name: str, price: str, category: str, city: str = "") -> int:
    """A service with a category and a city (none: online), as the form sends it."""
    description = "Careful, friendly and on time. Everything needed is brought along."
    return provider.create_service(
        name, price, category=category, city=city, description=description
    )


def shot(page: Page) -> bytes:
    """The viewport, once its pictures have loaded."""
    poll(lambda: page.evaluate(IMAGES_IN_VIEW_LOADED), what="the pictures in view to load")
    return page.screenshot(animations="disabled", caret="hide")


# First in the module: the server (one per module) is still empty, so the home page features
# exactly these services.
def test_the_readme_pages_render_on_a_laptop_and_a_phone_in_light_and_dark(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    cleaning = offer(provider, "House Cleaning", "150.00", "cleaning", city="Lyon")
    offer(provider, "Piano Lessons", "45.00", "tutoring")
    offer(provider, "Bike Repair", "30.00", "repairs", city="Lyon")
    # Bookings in three states: done (paid and reviewed), accepted, and waiting.
    done = client.book(cleaning)
    assert provider.post_form(f"/bookings/{done}/accept", {})[0] == 303
    client.pay(done)
    assert provider.post_form(f"/bookings/{done}/complete", {})[0] == 303
    review = {"rating": "5", "body": "Spotless kitchen, and Pat was right on time."}
    assert client.post_form(f"/bookings/{done}/review", review)[0] == 303
    accepted = client.book(cleaning, note="Ring twice.")
    assert provider.post_form(f"/bookings/{accepted}/accept", {})[0] == 303
    client.book(cleaning)

    for scheme in ("light", "dark"):
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            options = {**STABLE, "color_scheme": scheme, "viewport": viewport}
            page = login(new_context(**options), client, "/")
            wait_live(page)
            dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
            assert dark == (scheme == "dark")
            menu = page.get_by_role("button", name="Menu")
            if size == "phone":  # the phone header: one row, the links folded behind Menu
                expect(menu).to_be_visible()
                expect(page.get_by_role("link", name="My services")).to_be_hidden()
            else:
                expect(menu).to_be_hidden()
                expect(page.get_by_role("link", name="My services")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

            # Home: the search, the categories, the featured services.
            expect(page.get_by_role("search")).to_be_visible()
            expect(page.locator(".category-link").first).to_be_visible()
            cards = page.locator(".service-card")
            expect(cards).to_have_count(3)
            for name in ("House Cleaning", "Piano Lessons", "Bike Repair"):
                expect(cards.filter(has_text=name)).to_have_count(1)
            save(f"screenshots/home-{size}-{scheme}.png", shot(page))

            # A service: its picture, price, provider and the review.
            page.goto(f"/services/{cleaning}")
            wait_live(page)
            expect(page.get_by_role("heading", level=1)).to_have_text("House Cleaning")
            expect(page.locator("main .price").first).to_have_text("150.00 USD")
            expect(page.locator("main .provider")).to_contain_text("Pat Provider")
            expect(page.locator(".review")).to_contain_text("Spotless kitchen")
            save(f"screenshots/service-{size}-{scheme}.png", shot(page))

            # Bookings: one row per booking, each status in words.
            page.goto("/bookings")
            wait_live(page)
            rows = page.locator(".booking-row")
            expect(rows).to_have_count(3)
            expect(rows.locator("[data-status]")).to_have_text(["Pending", "Accepted", "Completed"])
            expect(rows.locator(".pill-succeeded")).to_have_text("Payment succeeded")
            save(f"screenshots/bookings-{size}-{scheme}.png", shot(page))
            page.context.close()


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
