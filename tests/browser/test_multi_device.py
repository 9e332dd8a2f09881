"""One person on two devices (two logins): reading on one clears the badge on the other."""

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


def test_marking_all_read_on_one_device_clears_the_badge_on_the_other_without_a_reload(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Dana Devices")
    laptop = login(new_context(), user, "/bookings")
    phone = login(new_context(viewport={"width": 375, "height": 740}), user, "/services")
    for page in (laptop, phone):
        wait_live(page)
        mark_page(page)

    ids = [live_server.publish([user.id], {"message": f"Notice {n}"})[0] for n in range(2)]
    for page in (laptop, phone):
        expect(badge(page)).to_have_text("2")
        expect(page.locator("[data-rt-list] .rt-item.unread")).to_have_count(2)

    laptop.locator("[data-rt-bell]").click()
    laptop.get_by_role("button", name="Mark all read").click()

    expect(badge(phone)).to_have_text("0")
    expect(badge(phone)).to_be_hidden()
    expect(phone.locator("[data-rt-bell]")).to_have_attribute("aria-label", "Notifications")
    expect(phone.locator("[data-rt-list] .rt-item.unread")).to_have_count(0)
    expect(badge(laptop)).to_be_hidden()
    for page in (laptop, phone):
        assert not_reloaded(page)
    rows = live_server.query(
        f"SELECT id FROM notifications WHERE id IN ({ids[0]}, {ids[1]}) AND read_at IS NOT NULL"
    )
    assert sorted(row[0] for row in rows) == ids

    # And back the other way: a new one shows on both, read from the phone's dropdown.
    [third] = live_server.publish([user.id], {"message": "Notice 3"})
    expect(badge(laptop)).to_have_text("1")
    expect(badge(phone)).to_have_text("1")
    phone.evaluate(
        "(id) => window.marketplaceRealtime.sendMessage({type: 'mark_read', ids: [id]})", third
    )
    expect(badge(laptop)).to_be_hidden()
    expect(laptop.locator(f'[data-rt-list] [data-notification-id="{third}"]')).not_to_have_class(
        re.compile(r"\bunread\b")
    )
