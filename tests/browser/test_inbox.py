"""The live inbox on two devices (two browser contexts signed in as the same person): new
notifications appear at the top without a reload, read marks follow from the other device,
"Load more" appends the next page in place, and the header dropdown marks what is opened read
and closes when the focus leaves it."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import (
    Contexts,
    LiveServer,
    badge,
    login,
    mark_page,
    not_reloaded,
    poll,
    wait_live,
)

UNREAD = re.compile(r"\bunread\b")


def read_at(server: LiveServer, notification_id: int) -> object:
    [(value,)] = server.query("SELECT read_at FROM notifications WHERE id = ?", (notification_id,))
    return value


def inbox_ids(page: Page) -> list[int]:
    ids: list[int] = page.locator("[data-inbox-list] [data-notification-id]").evaluate_all(
        "els => els.map(e => Number(e.dataset.notificationId))"
    )
    return ids


def inbox_item(page: Page, notification_id: int) -> Locator:
    return page.locator(f'[data-inbox-list] [data-notification-id="{notification_id}"]')


def test_a_new_notification_appears_on_top_and_a_read_on_another_device_follows(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Ines Inbox")
    [old] = live_server.publish([user.id], {"message": "Yesterday's notice"})
    device_a = login(new_context(), user, "/notifications")
    device_b = login(new_context(), user, "/notifications")
    for page in (device_a, device_b):
        wait_live(page)
        mark_page(page)
    assert inbox_ids(device_a) == [old]

    [new] = live_server.publish([user.id], {"message": "Pat booked <House Cleaning>"})

    for page in (device_a, device_b):
        first = page.locator("[data-inbox-list] > li").first
        expect(first).to_have_attribute("data-notification-id", str(new))
        expect(first).to_have_class(UNREAD)
        expect(first.get_by_role("link")).to_have_text("Pat booked <House Cleaning>")
        expect(first.get_by_role("button", name="Mark read")).to_be_visible()
        expect(badge(page)).to_have_text("2")
    assert inbox_ids(device_a) == [new, old], "on top, once"

    # Device B marks it read, without a reload; device A's item and badge follow.
    inbox_item(device_b, new).get_by_role("button", name="Mark read").click()
    poll(lambda: read_at(live_server, new), what="read_at stored")
    for page in (device_a, device_b):
        item = inbox_item(page, new)
        expect(item).not_to_have_class(UNREAD)
        expect(item.get_by_role("button", name="Mark read")).to_have_count(0)
        expect(badge(page)).to_have_text("1")
        expect(inbox_item(page, old)).to_have_class(UNREAD)
        assert not_reloaded(page)
    assert inbox_ids(device_a) == [new, old]


def test_the_empty_inbox_takes_its_first_notification_live(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Emma Empty")
    page = login(new_context(), user, "/notifications")
    wait_live(page)
    mark_page(page)
    empty = page.locator("[data-inbox-empty]")
    expect(empty).to_be_visible()
    [first] = live_server.publish([user.id], {"message": "Welcome aboard"})
    expect(inbox_item(page, first)).to_have_count(1)
    expect(empty).to_be_hidden()
    assert not_reloaded(page)


def test_load_more_appends_the_next_page_without_a_reload(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Lou Loadmore")
    ids = [live_server.publish([user.id], {"message": f"Notice {n}"})[0] for n in range(25)]
    page = login(new_context(), user, "/notifications")
    wait_live(page)
    mark_page(page)
    assert inbox_ids(page) == ids[::-1][:20]

    # A notification arriving meanwhile goes on top and does not shift the next page.
    [late] = live_server.publish([user.id], {"message": "Late arrival"})
    expect(page.locator("[data-inbox-list] > li").first).to_have_attribute(
        "data-notification-id", str(late)
    )
    more = page.get_by_role("link", name="Load more")
    more.click()
    expect(page.locator("[data-inbox-list] [data-notification-id]")).to_have_count(26)
    assert inbox_ids(page) == [late, *ids[::-1]], "each once, newest first"
    expect(more).to_have_count(0)  # the end: no button
    # The keyboard user reads on from the first appended item.
    expect(inbox_item(page, ids[4]).get_by_role("link")).to_be_focused()
    assert not_reloaded(page)
    # Appended items work like the others.
    inbox_item(page, ids[0]).get_by_role("button", name="Mark read").click()
    poll(lambda: read_at(live_server, ids[0]), what="read_at of an appended item")
    expect(inbox_item(page, ids[0])).not_to_have_class(UNREAD)


def test_opening_a_live_item_from_the_dropdown_marks_it_read_on_every_device(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Dora Dropdown")
    device_a = login(new_context(), user, "/services")
    device_b = login(new_context(), user, "/services")
    for page in (device_a, device_b):
        wait_live(page)
    [new] = live_server.publish([user.id], {"message": "Open me"})
    for page in (device_a, device_b):
        expect(badge(page)).to_have_text("1")
    bell = device_a.locator("[data-rt-bell]")
    bell.focus()
    device_a.keyboard.press("Enter")  # opens the dropdown, focus on "Mark all read"
    device_a.keyboard.press("ArrowDown")  # the newest item
    item = device_a.locator(f'[data-rt-list] [data-notification-id="{new}"] a')
    expect(item).to_be_focused()
    expect(item).to_have_attribute("href", f"/notifications/{new}")
    with device_a.expect_navigation():
        device_a.keyboard.press("Enter")
    poll(lambda: read_at(live_server, new), what="read_at set by opening it")
    # This tab's new page and the other device's page both count it read.
    expect(badge(device_a)).to_be_hidden()
    expect(badge(device_b)).to_be_hidden()
    expect(device_b.locator(f'[data-rt-list] [data-notification-id="{new}"]')).not_to_have_class(
        UNREAD
    )


def test_focus_leaving_the_dropdown_closes_it(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Theo Tab")
    live_server.publish([user.id], {"message": "Something"})
    page = login(new_context(), user, "/services")
    wait_live(page)
    bell = page.locator("[data-rt-bell]")
    dropdown = page.locator("[data-rt-dropdown]")
    inside = "el => el.contains(document.activeElement)"

    bell.click()
    expect(bell).to_have_attribute("aria-expanded", "true")
    # Tab through the dropdown and past its last control: bounded, one key at a time.
    for _ in range(12):
        if not dropdown.evaluate(inside):
            break
        page.keyboard.press("Tab")
    assert not dropdown.evaluate(inside), "Tab left the dropdown"
    expect(dropdown).to_be_hidden()
    expect(bell).to_have_attribute("aria-expanded", "false")

    # Shift+Tab from the bell to what comes before it.
    bell.click()
    expect(dropdown).to_be_visible()
    bell.focus()
    page.keyboard.press("Shift+Tab")
    expect(dropdown).to_be_hidden()
    expect(bell).to_have_attribute("aria-expanded", "false")

    # Escape still closes it and gives the focus back to the bell.
    bell.click()
    expect(dropdown).to_be_visible()
    page.keyboard.press("Escape")
    expect(dropdown).to_be_hidden()
    expect(bell).to_be_focused()
