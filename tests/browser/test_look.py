"""The look: a one-row phone header whose Menu button works from the keyboard (and a header
that still works without JavaScript), dark mode that follows the system, and service cards
whose titles read as titles, not underlined links."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.browser.conftest import Contexts, LiveServer, login, open_page, wait_live

PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not on screen"
    return dict(found)


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None and width <= viewport["width"], (page.url, width, viewport)


def one_row(*parts: Locator) -> None:
    """Every part sits in the same horizontal band: each one's vertical middle falls inside
    every other one's top and bottom."""
    boxes = [box(part) for part in parts]
    for a in boxes:
        middle = a["y"] + a["height"] / 2
        for b in boxes:
            assert b["y"] <= middle <= b["y"] + b["height"], boxes


def focused(page: Page) -> str:
    """The focused element, described for assertion messages and comparisons."""
    return str(
        page.evaluate(
            "(() => { const el = document.activeElement;"
            " return el ? `${el.tagName}:${(el.textContent || '').trim()}` : ''; })()"
        )
    )


def tab_to(page: Page, target: Locator, limit: int = 15) -> None:
    """Presses Tab from the top of the page until `target` has the focus (at most `limit`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target} (last focus: {focused(page)})")


def rgb(css: str) -> tuple[float, float, float]:
    match = re.match(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)", css)
    assert match is not None, css
    r, g, b = (float(x) for x in match.groups())
    return r, g, b


def luminance(css: str) -> float:
    """WCAG relative luminance of a computed colour, 0 (black) to 1 (white)."""

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def colours(page: Page) -> dict[str, Any]:
    """The page's background (painted by <html>) and body text colour, as computed."""
    result: dict[str, Any] = page.evaluate(
        "(() => ({bg: getComputedStyle(document.documentElement).backgroundColor,"
        " text: getComputedStyle(document.body).color,"
        " card: getComputedStyle(document.querySelector('.card')).backgroundColor}))()"
    )
    return result


def test_on_a_phone_the_header_is_one_row_and_the_menu_opens_and_closes_by_keyboard(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Morgan Menu")
    page = login(new_context(viewport=PHONE), user, "/bookings")
    wait_live(page)
    header = page.locator("header.site-header")
    brand = header.get_by_role("link", name="Marketplace")
    bell = page.locator("[data-rt-bell]")
    menu = header.get_by_role("button", name="Menu")
    nav = page.locator("#site-menu")
    services = nav.get_by_role("link", name="Services", exact=True)

    # One row: brand, bell and Menu share the top band; the links are folded away.
    for part in (brand, bell, menu):
        expect(part).to_be_visible()
    one_row(brand, bell, menu)
    assert box(header)["height"] < 90, box(header)
    assert menu.evaluate("el => el.tagName") == "BUTTON"
    expect(menu).to_have_attribute("aria-controls", "site-menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(services).to_be_hidden()
    no_sideways_scroll(page)

    # The keyboard: Tab to Menu, Enter opens it, Tab walks the links in order.
    tab_to(page, menu)
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    links = [
        nav.get_by_role("link", name="Services", exact=True),
        nav.get_by_role("link", name=re.compile(r"^Bookings")),
        nav.get_by_role("link", name="My services"),
        nav.get_by_role("link", name="Morgan Menu"),
        nav.get_by_role("button", name="Log out"),
    ]
    for link in links:
        expect(link).to_be_visible()
    no_sideways_scroll(page)
    for link in links:
        page.keyboard.press("Tab")
        expect(link).to_be_focused()
    # The links open under the header row, which stays as it was.
    one_row(brand, bell, menu)
    assert box(links[0])["y"] >= box(menu)["y"] + box(menu)["height"]

    # Escape closes it and gives the focus back to the button.
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(services).to_be_hidden()
    expect(menu).to_be_focused()

    # Focus leaving the menu closes it: Shift+Tab from the first link back to the bell.
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(services).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(menu).to_be_focused()
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Shift+Tab")
    expect(bell).to_be_focused()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(services).to_be_hidden()

    # A click opens it too, and a link in it goes where it says.
    menu.click()
    with page.expect_navigation(url=re.compile(r"/services$")):
        services.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Services")
    expect(header.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")

    # On a laptop the same header shows the links inline and no Menu button.
    page.set_viewport_size(DESKTOP)
    expect(menu).to_be_hidden()
    expect(services).to_be_visible()
    one_row(brand, services, bell)


def test_signed_out_the_phone_menu_offers_log_in_and_sign_up(
    live_server: LiveServer, new_context: Contexts
) -> None:
    page = open_page(new_context(viewport=PHONE), "/services")
    header = page.locator("header.site-header")
    menu = header.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    one_row(header.get_by_role("link", name="Marketplace"), menu)
    expect(page.locator("[data-rt-bell]")).to_have_count(0)  # nobody to notify
    sign_up = header.get_by_role("link", name="Sign up")
    expect(sign_up).to_be_hidden()
    menu.click()
    expect(header.get_by_role("link", name="Log in")).to_be_visible()
    expect(sign_up).to_be_visible()
    with page.expect_navigation(url=re.compile(r"/signup$")):
        sign_up.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")


def test_without_javascript_the_phone_header_shows_its_links_and_they_work(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Nadia NoScript")
    context = new_context(viewport=PHONE, java_script_enabled=False)
    page = login(context, user, "/services")
    header = page.locator("header.site-header")
    nav = page.locator("#site-menu")

    # No script to drive a Menu button: it stays out of the way and the links are shown.
    expect(header.get_by_role("button", name="Menu")).to_have_count(0)
    expect(page.locator("[data-menu-button]")).to_be_hidden()
    for name in ("Services", "My services", "Nadia NoScript"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    expect(nav.get_by_role("button", name="Log out")).to_be_visible()
    no_sideways_scroll(page)
    with page.expect_navigation(url=re.compile(r"/bookings$")):
        nav.get_by_role("link", name=re.compile(r"^Bookings")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bookings")

    # Signed out, too: Log in and Sign up are right there.
    with page.expect_navigation(url=re.compile(r"/login$")):
        nav.get_by_role("button", name="Log out").click()
    for name in ("Log in", "Sign up"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()


def test_dark_mode_follows_the_system_and_service_titles_are_not_underlined(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Dora Dark")
    provider.create_service("Window Washing", price="60.00")
    seen: dict[str, dict[str, Any]] = {}
    for scheme in ("light", "dark"):
        page = open_page(new_context(color_scheme=scheme), "/services?q=Window")
        card = page.locator(".service-card").filter(has_text="Window Washing")
        expect(card).to_have_count(1)
        title = card.locator(".card-title a")
        expect(title).to_have_text("Window Washing")
        assert title.evaluate("el => getComputedStyle(el).textDecorationLine") == "none"
        # The title is a link all the same (and the card's whole area takes you there).
        picture = box(card.locator(".card-media"))
        with page.expect_navigation(url=re.compile(r"/services/\d+$")):
            page.mouse.click(picture["x"] + picture["width"] / 2, picture["y"] + 20)
        expect(page.get_by_role("heading", level=1)).to_have_text("Window Washing")
        page.go_back()
        seen[scheme] = colours(page)

    light, dark = seen["light"], seen["dark"]
    assert luminance(light["bg"]) > 0.8 and luminance(light["text"]) < 0.05, light
    assert luminance(dark["bg"]) < 0.03 and luminance(dark["text"]) > 0.7, dark
    assert luminance(dark["card"]) < 0.05, dark  # cards are dark too, not white islands
    for scheme in (light, dark):
        high, low = sorted((luminance(scheme["bg"]), luminance(scheme["text"])), reverse=True)
        assert (high + 0.05) / (low + 0.05) >= 7, scheme  # body text well above WCAG AA
