"""A review in a real browser: the client rates a completed booking through the form, the
provider's open page hears of it live (toast, badge, dropdown, the review itself in place),
and the service page shows the review and the average."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import (
    Contexts,
    LiveServer,
    badge,
    login,
    mark_page,
    not_reloaded,
    wait_live,
)


def test_a_client_reviews_a_completed_booking_and_the_provider_sees_it_live(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    service_id = provider.create_service("House Cleaning")
    booking_id = client.book(service_id)
    for action in ("accept", "complete"):
        status, location = provider.post_form(f"/bookings/{booking_id}/{action}", {})
        assert status == 303, (status, location)

    # The provider has the booking open and is live; the new booking is their one unread.
    provider_page = login(new_context(), provider, f"/bookings/{booking_id}")
    wait_live(provider_page)
    expect(badge(provider_page)).to_have_text("1")
    expect(provider_page.get_by_role("heading", name=re.compile("Review from"))).to_have_count(0)
    mark_page(provider_page)

    # The client rates it through the form: four stars (a radio in a fieldset) and a text.
    client_page = login(new_context(), client, f"/bookings/{booking_id}")
    rating = client_page.get_by_role("group", name="Your rating")
    expect(rating).to_be_visible()
    rating.get_by_label("4 stars").check()
    client_page.get_by_label("Your review").fill("Spotless kitchen.\nLate by ten minutes.")
    with client_page.expect_navigation(url=re.compile(rf"/bookings/{booking_id}#review$")):
        client_page.get_by_role("button", name="Post review").click()
    expect(client_page.get_by_role("heading", name="Your review")).to_be_visible()
    expect(client_page.get_by_role("button", name="Post review")).to_have_count(0)
    expect(client_page.get_by_role("img", name="Rated 4 out of 5")).to_be_visible()

    # The provider's page, without a reload: a toast, the badge, the dropdown, the review.
    toast = provider_page.locator("[data-rt-toasts] .toast")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("New review")
    expect(toast).to_contain_text("Casey gave House Cleaning 4 stars")
    expect(badge(provider_page)).to_have_text("2")
    provider_page.locator("[data-rt-bell]").click()
    newest = provider_page.locator("[data-rt-list] .rt-item").first
    expect(newest).to_contain_text(
        "Casey gave House Cleaning 4 stars: “Spotless kitchen. Late by ten minutes.”"
    )
    provider_page.keyboard.press("Escape")
    review = provider_page.locator('[data-live-region="review"] .review')
    expect(review).to_contain_text("Casey")
    expect(review.locator(".review-body")).to_have_text("Spotless kitchen.\nLate by ten minutes.")
    assert not_reloaded(provider_page)

    # The service page: the review and the average, to anyone.
    visitor = new_context().new_page()
    visitor.goto(f"/services/{service_id}")
    section = visitor.get_by_role("region", name="Reviews")
    expect(section.get_by_role("img", name="Rated 4.0 out of 5 from 1 review")).to_be_visible()
    listed = section.locator(".review-list .review")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Casey")
    expect(listed.locator(".review-body")).to_have_text("Spotless kitchen.\nLate by ten minutes.")
    expect(visitor.get_by_text("No reviews yet")).to_have_count(0)
