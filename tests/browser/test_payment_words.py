"""A declined card in Chromium: the client reads why in words, takes "Try another card" back to
the form, pays with a good card and sees that it went through."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Contexts, LiveServer, login


def test_a_declined_card_says_why_and_another_card_pays(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    booking_id = client.book(provider.create_service("House Cleaning", price="150.00"))
    assert provider.post_form(f"/bookings/{booking_id}/accept", {})[0] == 303

    page = login(new_context(), client, f"/bookings/{booking_id}/pay")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    with page.expect_navigation(url=re.compile(r"/payments/\d+$")):
        page.get_by_role("button", name="Pay 150.00 USD").click()
    failed_url = page.url

    outcome = page.locator("[data-payment-outcome]")
    expect(outcome).to_contain_text("The card was declined.")
    expect(outcome).to_contain_text("you have not been charged")
    expect(page.locator("[data-status]")).to_have_text("Failed")
    expect(page.get_by_text("card_declined")).to_have_count(0)

    with page.expect_navigation(url=re.compile(rf"/bookings/{booking_id}/pay$")):
        page.get_by_role("link", name="Try another card").click()
    expect(page.locator("[data-last-failure]")).to_contain_text(
        "did not go through: the card was declined"
    )
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    with page.expect_navigation(url=re.compile(r"/payments/\d+$")):
        page.get_by_role("button", name="Pay 150.00 USD").click()

    assert page.url != failed_url
    expect(page.locator("[data-payment-outcome]")).to_have_text(
        re.compile(r"^\s*Your payment of 150\.00 USD went through\.")
    )
    expect(page.locator("[data-status]")).to_have_text("Succeeded")
    expect(page.get_by_role("link", name="Try another card")).to_have_count(0)
    statuses = live_server.query(
        "SELECT status FROM payments WHERE booking_id = ? ORDER BY id", (booking_id,)
    )
    assert [row[0] for row in statuses] == ["failed", "succeeded"]
