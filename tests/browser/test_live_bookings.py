"""Two people, two browsers: a booking and its acceptance reach the other side's open page
without a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import (
    Contexts,
    LiveServer,
    badge,
    future_slot,
    login,
    mark_page,
    not_reloaded,
    wait_live,
)


def test_a_booking_reaches_the_providers_open_page_and_the_acceptance_reaches_the_clients(
    live_server: LiveServer, new_context: Contexts
) -> None:
    provider = live_server.signup("Pat Provider")
    client = live_server.signup("Casey Client")
    service_id = provider.create_service("Window Washing", price="80.00")

    provider_page = login(new_context(), provider, "/bookings")
    expect(provider_page.get_by_text("Nobody has booked your services yet.")).to_be_visible()
    wait_live(provider_page)
    mark_page(provider_page)

    # The client books through the form.
    client_page = login(new_context(), client, f"/services/{service_id}")
    client_page.fill("#f-scheduled_at", future_slot())
    client_page.fill("#f-note", "Second floor, please.")
    with client_page.expect_navigation(url=re.compile(r"/bookings/\d+$")):
        client_page.get_by_role("button", name="Request booking").click()
    booking_id = int(client_page.url.rsplit("/", 1)[1])
    booking_status = client_page.locator('[data-live-region="booking"] [data-status]')
    expect(booking_status).to_have_text("Pending")
    expect(client_page.get_by_role("link", name=re.compile(r"^Pay"))).to_have_count(0)
    wait_live(client_page)
    mark_page(client_page)

    # The provider's page: a toast, the badge, and the new row in "Incoming", no reload.
    toast = provider_page.locator("[data-rt-toasts] .toast")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("New booking")
    expect(badge(provider_page)).to_have_text("1")
    expect(badge(provider_page)).to_be_visible()
    row = provider_page.locator(f'[data-live-region="incoming"] [data-booking-id="{booking_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Window Washing")
    expect(row.locator("[data-status]")).to_have_text("Pending")
    assert not_reloaded(provider_page)

    # The provider opens it and accepts.
    with provider_page.expect_navigation(url=re.compile(rf"/bookings/{booking_id}$")):
        row.get_by_role("link", name="Window Washing").click()
    with provider_page.expect_navigation():
        provider_page.get_by_role("button", name="Accept").click()
    expect(provider_page.locator('[data-live-region="booking"] [data-status]')).to_have_text(
        "Accepted"
    )

    # The client's open booking page updates in place: the status and the Pay button.
    expect(booking_status).to_have_text("Accepted")
    expect(client_page.get_by_role("link", name=re.compile(r"^Pay"))).to_be_visible()
    expect(client_page.locator("[data-rt-toasts] .toast")).to_contain_text("Booking accepted")
    expect(badge(client_page)).to_have_text("1")
    assert not_reloaded(client_page)
