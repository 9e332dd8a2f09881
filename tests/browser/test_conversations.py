"""Conversations in real Chromium: a booking's client and provider (two browser contexts) chat
live both ways; typing shows and goes; "Seen" follows the recipient reading; a message sent
offline arrives exactly once; presence follows the other person's sockets; pop-ups only for
a conversation that is neither muted nor being read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.browser.conftest import (
    TOAST_RECORDER,
    Contexts,
    HttpUser,
    LiveServer,
    login,
    poll,
    status,
    wait_live,
)

PHONE: ViewportSize = {"width": 375, "height": 740}
TYPING_GONE_MS = 10_000  # the indicator goes 6 s after the last typing frame
PRESENCE_MS = 15_000  # offline shows after a 5 s grace without a socket (plus detection)
RECONNECT_MS = 20_000  # backoff with full jitter after the network returns
MINE = re.compile(r"\bmine\b")
THEIRS = re.compile(r"\btheirs\b")
PENDING = re.compile(r"\bpending\b")


@dataclass
class Booking:
    id: int
    client: HttpUser
    provider: HttpUser


def make_booking(server: LiveServer) -> Booking:
    provider = server.signup("Pat Provider")
    client = server.signup("Cleo Client")
    service = provider.create_service("House Cleaning")
    return Booking(client.book(service), client, provider)


def thread(page: Page) -> Locator:
    return page.locator("[data-conversation] [data-messages] li.message")


def message(page: Page, text: str) -> Locator:
    return thread(page).filter(has_text=text)


def send(page: Page, text: str) -> None:
    """Taps the conversation's box (scrolling it into view, as a person would), types, and
    presses Enter (the script sends it)."""
    box = page.locator("[data-message-form] textarea")
    box.click()
    box.fill(text)
    box.press("Enter")


def seqs(page: Page) -> list[str]:
    return list(thread(page).evaluate_all("items => items.map((li) => li.dataset.seq)"))


def stored(server: LiveServer, booking_id: int, body: str) -> int:
    [(count,)] = server.query(
        "SELECT COUNT(*) FROM messages WHERE booking_id = ? AND body = ?", (booking_id, body)
    )
    return int(count)


def outbox_size(page: Page, user_id: int) -> int:
    return int(
        page.evaluate(
            "(key) => JSON.parse(localStorage.getItem(key) || '[]').length", f"rt-outbox:{user_id}"
        )
    )


def on_the_thread(new_context: Contexts, booking: Booking, **options: object) -> tuple[Page, Page]:
    """Both people on the booking's page, connected, each seeing the other online (so the
    server holds both views)."""
    client = login(new_context(**options), booking.client, f"/bookings/{booking.id}")
    provider = login(new_context(**options), booking.provider, f"/bookings/{booking.id}")
    for page in (client, provider):
        wait_live(page)
    expect(client.locator("[data-presence]")).to_have_text("Pat Provider is online")
    expect(provider.locator("[data-presence]")).to_have_text("Cleo Client is online")
    return client, provider


def test_two_people_chat_live_both_ways_and_seen_follows_the_recipient_reading(
    live_server: LiveServer, new_context: Contexts
) -> None:
    booking = make_booking(live_server)
    client = login(new_context(), booking.client, f"/bookings/{booking.id}")
    provider = login(new_context(viewport=PHONE), booking.provider, "/services")
    for page in (client, provider):
        wait_live(page)

    # Sent while Pat is elsewhere: shown at once, stored, counted on Pat's header, not seen.
    send(client, "Hello Pat, the gate code is at https://example.com/gate.")
    first = message(client, "Hello Pat")
    expect(first).to_have_class(MINE)
    expect(first).to_have_attribute("data-seq", "1")
    expect(first).not_to_have_class(PENDING)
    expect(client.locator("[data-message-form] textarea")).to_have_value("")
    unread = provider.locator("[data-unread-messages]")
    # On the phone the count sits on "Bookings", in the folded header menu.
    provider.get_by_role("button", name="Menu").click()
    expect(unread).to_be_visible()
    expect(unread).to_have_text(re.compile(r"^1\b"))
    expect(client.locator("[data-seen]")).to_have_count(0)

    # Pat opens the thread: the message is there, its link safe; Cleo sees "Seen" under it.
    provider.goto(f"/bookings/{booking.id}")
    wait_live(provider)
    received = message(provider, "Hello Pat")
    expect(received).to_have_class(THEIRS)
    link = received.get_by_role("link", name="https://example.com/gate")
    expect(link).to_have_attribute("href", "https://example.com/gate")
    expect(link).to_have_attribute("rel", "nofollow noopener noreferrer ugc")
    expect(client.locator('li[data-seq="1"] [data-seen]')).to_have_text("Seen")
    provider.get_by_role("button", name="Menu").click()
    expect(provider.get_by_role("link", name="Bookings", exact=True)).to_be_visible()
    expect(unread).to_be_hidden()

    # Live both ways, each message read at once by the other (on screen): "Seen" moves along.
    send(provider, "On my way, <b>10 minutes</b>")
    reply = message(client, "On my way")
    expect(reply).to_have_class(THEIRS)
    expect(reply.locator(".message-body")).to_have_text("On my way, <b>10 minutes</b>")
    expect(reply.locator("b")).to_have_count(0)
    expect(provider.locator('li[data-seq="2"] [data-seen]')).to_have_text("Seen")

    send(client, "Great, thanks")
    expect(message(provider, "Great, thanks")).to_have_class(THEIRS)
    expect(client.locator('li[data-seq="3"] [data-seen]')).to_have_text("Seen")
    expect(client.locator("[data-seen]")).to_have_count(1)
    for page in (client, provider):
        expect(thread(page)).to_have_count(3)
        assert seqs(page) == ["1", "2", "3"]
    # The provider's phone: no sideways scrolling with the conversation on it.
    assert provider.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_typing_shows_the_name_goes_after_a_pause_and_at_once_when_the_message_comes(
    live_server: LiveServer, new_context: Contexts
) -> None:
    booking = make_booking(live_server)
    client, provider = on_the_thread(new_context, booking)
    box = client.locator("[data-message-form] textarea")
    typing = provider.locator("[data-typing]")

    box.press_sequentially("Hello", delay=30)
    expect(typing).to_be_visible()
    expect(typing).to_have_text("Cleo Client is typing…")
    # Cleo stops typing: it goes by itself (6 s after the last typing frame).
    expect(typing).to_be_hidden(timeout=TYPING_GONE_MS)

    box.press_sequentially(" again", delay=30)
    expect(typing).to_be_visible()
    box.press("Enter")
    expect(message(provider, "Hello again")).to_be_visible()
    # Far sooner than the 6 s pause: the message itself ends "typing".
    expect(typing).to_be_hidden(timeout=2_000)
    expect(client.locator("[data-typing]")).to_be_hidden()


def test_a_message_sent_offline_is_delivered_exactly_once_when_the_network_returns(
    live_server: LiveServer, new_context: Contexts
) -> None:
    booking = make_booking(live_server)
    client, provider = on_the_thread(new_context, booking)
    context = client.context
    body = "Sent from the tunnel"

    context.set_offline(True)
    expect(status(client)).not_to_have_attribute("data-state", "open")
    send(client, body)
    pending = message(client, body)
    expect(pending).to_have_class(PENDING)
    expect(pending).to_contain_text("Sending…")
    assert stored(live_server, booking.id, body) == 0
    assert outbox_size(client, booking.client.id) == 1

    context.set_offline(False)
    wait_live(client, timeout=RECONNECT_MS)
    expect(message(provider, body)).to_have_count(1, timeout=RECONNECT_MS)
    expect(message(client, body)).not_to_have_class(PENDING)
    expect(message(client, body)).to_have_attribute("data-seq", "1")
    # The new socket told the server again which thread it shows: typing reaches it.
    provider.locator("[data-message-form] textarea").press_sequentially("Got", delay=30)
    expect(client.locator("[data-typing]")).to_have_text("Pat Provider is typing…")

    # Anything sent twice would be in before this reply is (one ordered stream per person).
    send(provider, "Got it")
    expect(message(client, "Got it")).to_be_visible()
    expect(client.locator("[data-typing]")).to_be_hidden()
    for page in (client, provider):
        expect(message(page, body)).to_have_count(1)
        assert seqs(page) == ["1", "2"]
    assert stored(live_server, booking.id, body) == 1
    poll(lambda: outbox_size(client, booking.client.id) == 0, what="an empty outbox")


def test_presence_goes_online_then_last_seen_when_the_other_person_leaves(
    live_server: LiveServer, new_context: Contexts
) -> None:
    booking = make_booking(live_server)
    provider = login(new_context(), booking.provider, f"/bookings/{booking.id}")
    wait_live(provider)
    presence = provider.locator("[data-presence]")
    expect(presence).to_have_text("Cleo Client has not been online yet")

    client_context = new_context()
    client = login(client_context, booking.client, f"/bookings/{booking.id}")
    wait_live(client)
    expect(presence).to_have_text("Cleo Client is online")
    expect(client.locator("[data-presence]")).to_have_text("Pat Provider is online")

    client_context.close()
    expect(presence).to_have_text(
        re.compile(r"^Cleo Client was last seen (just now|1 min ago)$"), timeout=PRESENCE_MS
    )
    expect(presence.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\d"))


def test_a_new_message_pops_up_only_when_the_conversation_is_neither_read_nor_muted(
    live_server: LiveServer, new_context: Contexts
) -> None:
    booking = make_booking(live_server)
    client = login(
        new_context(init_scripts=(TOAST_RECORDER,)), booking.client, f"/bookings/{booking.id}"
    )
    provider = login(new_context(init_scripts=(TOAST_RECORDER,)), booking.provider, "/bookings")
    for page in (client, provider):
        wait_live(page)
    pops = "Cleo Client sent you a message about House Cleaning"

    # Pat is on the bookings list: a toast, and the booking's row counts live.
    send(client, "First")
    expect(provider.locator("[data-rt-toasts] .toast").filter(has_text=pops)).to_have_count(1)
    row = provider.locator(f'[data-conversation-unread="{booking.id}"]')
    expect(row).to_have_text("1 unread message")
    send(client, "Second")
    expect(row).to_have_text("2 unread messages")

    # Cleo reads the thread while Pat answers: no pop-up for Cleo. A notice published after
    # the reply is the barrier: once its toast shows, the reply's would have too.
    provider.goto(f"/bookings/{booking.id}")
    wait_live(provider)
    send(provider, "Reply while you read")
    expect(message(client, "Reply while you read")).to_be_visible()
    [barrier] = live_server.publish([booking.client.id], {"message": "Barrier"})
    expect(client.locator(f'[data-rt-toasts] [data-notification-id="{barrier}"]')).to_have_count(1)
    assert client.evaluate("window.__toasts") == [barrier]

    # Pat mutes the conversation: still counted and listed, never a pop-up.
    with provider.expect_navigation():
        provider.get_by_role("button", name="Mute pop-ups for this conversation").click()
    provider.goto("/services")
    wait_live(provider)
    listed = provider.locator("[data-rt-list] .rt-item").filter(has_text=pops)
    before = listed.count()
    send(client, "Third, muted")
    expect(listed).to_have_count(before + 1)
    newest = int(listed.first.get_attribute("data-notification-id") or 0)
    assert newest not in provider.evaluate("window.__toasts")
    expect(provider.locator("[data-unread-messages]")).to_have_text(re.compile(r"^1\b"))
