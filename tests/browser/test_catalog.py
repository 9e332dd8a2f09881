"""The catalogue in a real browser: the home page, a search from it, a provider uploading a
picture through the service form (and the page showing it, decoded), the generated placeholder
on cards, and the provider profile."""

from __future__ import annotations

import re
import urllib.parse
import uuid

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Contexts, HttpUser, LiveServer, login, open_page
from tests.images import png

PICTURE_SIZE = (40, 25)


def unique(word: str) -> str:
    return f"{word}{uuid.uuid4().hex[:8]}"


def offer(user: HttpUser, name: str, **fields: str) -> int:
    """A cleaning service in Springfield through the form (no picture); `fields` override."""
    place = {"category": "cleaning", "city": "Springfield", "description": "Careful and on time."}
    return user.create_service(name, "60.00", **{**place, **fields})


def expect_loaded(image: Locator, width: int) -> None:
    """The <img> has loaded and decoded to `width` pixels (a broken one stays at 0)."""
    expect(image).to_have_js_property("complete", True)
    expect(image).to_have_js_property("naturalWidth", width)


def card(page: Page, service_id: int) -> Locator:
    return page.locator(f'.service-card[data-service-id="{service_id}"]')


def test_the_home_page_shows_what_the_site_is_a_search_the_categories_and_services(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Robin Cleaner")
    name = unique("Sparkle")
    service_id = offer(provider, name, category="cleaning")

    page = open_page(new_context(), "/")

    hero = page.locator(".hero")
    expect(hero.get_by_role("heading", level=1)).to_be_visible()
    expect(hero.locator(".lead")).not_to_be_empty()
    expect(hero.get_by_role("searchbox")).to_be_visible()
    categories = page.locator(".category-list .category-link")
    expect(categories).to_have_count(9)
    expect(page.get_by_role("link", name="Beauty & wellness")).to_have_attribute(
        "href", "/services?category=beauty"
    )
    featured = card(page, service_id)
    expect(featured.get_by_role("heading", name=name)).to_be_visible()
    expect(featured.locator(".tag").first).to_have_text("Cleaning")
    expect(featured.locator(".price")).to_have_text("60.00 USD")
    expect(featured.locator(".provider .avatar")).to_have_text("RC")
    expect(featured.locator(".provider")).to_contain_text(re.compile(r"Member since \w{3} \d{4}"))
    # Without an upload the card shows the generated placeholder, drawn by the browser.
    expect_loaded(featured.locator(".card-media img"), 480)


def test_a_search_from_the_home_page_lands_on_the_results_and_a_category_filters(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Tess Tutor")
    word = unique("Algebra")
    tutoring_id = offer(provider, f"{word} lessons", category="tutoring", city="", online="1")
    other_id = offer(provider, unique("Oven clean"), category="cleaning")

    page = open_page(new_context(), "/")
    page.get_by_role("searchbox").fill(word)
    with page.expect_navigation(url=re.compile(r"/services\?q=")):
        page.get_by_role("searchbox").press("Enter")

    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"] == [word]
    expect(page.locator(".service-card")).to_have_count(1)
    expect(card(page, tutoring_id).get_by_role("link", name=f"{word} lessons")).to_be_visible()
    expect(card(page, tutoring_id)).to_contain_text("Online")
    expect(page.locator("#q")).to_have_value(word)
    expect(page.get_by_role("status")).to_contain_text("1 result")

    page.goto("/")
    with page.expect_navigation(url=re.compile(r"/services\?category=tutoring$")):
        page.locator(".category-list").get_by_role("link", name="Tutoring").click()
    expect(page.locator("#category")).to_have_value("tutoring")
    expect(card(page, tutoring_id)).to_be_visible()
    expect(card(page, other_id)).to_have_count(0)


def test_a_provider_uploads_a_picture_and_the_service_page_shows_it(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pia Painter")
    page = login(new_context(), provider, "/services/new")
    name = unique("Mural")
    width, height = PICTURE_SIZE

    page.fill("#f-name", name)
    page.fill("#f-description", "A wall painted with whatever you dream of.")
    page.select_option("#f-category", "repairs")
    page.fill("#f-city", "Springfield")
    page.fill("#f-price", "300")
    page.fill("#f-duration_minutes", "240")
    page.set_input_files(
        "#f-image",
        files=[{"name": "mural.png", "mimeType": "image/png", "buffer": png(width, height)}],
    )
    with page.expect_navigation(url=re.compile(r"/services/\d+$")):
        page.get_by_role("button", name="Publish service").click()
    service_id = int(page.url.rsplit("/", 1)[1])

    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    picture = page.locator(".service-media img")
    expect_loaded(picture, width)
    with page.expect_response(re.compile(rf"/services/{service_id}/image")) as answer:
        page.reload()
    assert answer.value.headers["content-type"] == "image/png"
    expect_loaded(page.locator(".service-media img"), width)

    # The card on the listing shows the same picture.
    page.goto("/services")
    expect_loaded(card(page, service_id).locator(".card-media img"), width)

    # Removing it brings back the placeholder.
    page.goto(f"/services/{service_id}/edit")
    page.get_by_label("Remove picture").check()
    with page.expect_navigation(url=re.compile(rf"/services/{service_id}$")):
        page.get_by_role("button", name="Save changes").click()
    expect_loaded(page.locator(".service-media img"), 480)
    assert live_server.query("SELECT image_file FROM services WHERE id = ?", (service_id,)) == [
        (None,)
    ]


def test_a_file_that_is_not_a_picture_is_refused_in_the_form(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Noel Notapic")
    page = login(new_context(), provider, "/services/new")
    name = unique("Fake")

    page.fill("#f-name", name)
    page.check("#f-online")
    page.fill("#f-price", "10")
    page.set_input_files(
        "#f-image",
        files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"<html>not a picture"}],
    )
    page.get_by_role("button", name="Publish service").click()

    expect(page.locator("#e-image")).to_have_text(
        "The picture must be a JPEG, PNG, WebP or GIF image."
    )
    expect(page.locator("#f-name")).to_have_value(name)
    assert live_server.query("SELECT count(*) FROM services WHERE name = ?", (name,)) == [(0,)]


def test_the_provider_profile_lists_their_services(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Dana Dogwalker")
    walks = offer(provider, unique("Walks"), category="pets")
    sitting = offer(provider, unique("Sitting"), category="pets", city="", online="1")

    page = open_page(new_context(), f"/services/{walks}")
    with page.expect_navigation(url=re.compile(rf"/providers/{provider.id}$")):
        page.locator("article .provider").get_by_role("link", name="Dana Dogwalker").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Dana Dogwalker")
    expect(page.locator(".avatar.large")).to_have_text("DD")
    expect(page.locator(".service-card")).to_have_count(2)
    for service_id in (walks, sitting):
        expect(card(page, service_id)).to_be_visible()
        expect_loaded(card(page, service_id).locator(".card-media img"), 480)
    with page.expect_navigation(url=re.compile(rf"/services/{sitting}$")):
        card(page, sitting).locator(".card-title a").click()
    expect(page.locator(".service-media img")).to_be_visible()
