"""Tabs of one browser share one socket: the leader tab holds it and relays to the others;
when it goes another takes over; logging out in one tab signs out that session's tabs."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import (
    HIDDEN_PAGE,
    NOTIFICATION_SPY,
    PASSWORD,
    Contexts,
    LiveServer,
    badge,
    login,
    open_page,
    poll,
    status,
    wait_live,
)

HEARTBEAT_SECONDS = 2  # the live_server's --ws-heartbeat
TAKEOVER_SECONDS = 3.0


def record_sockets(context: BrowserContext) -> list[str]:
    """The URL of every WebSocket any page of the context opens from now on."""
    opened: list[str] = []
    context.on("page", lambda page: page.on("websocket", lambda ws: opened.append(ws.url)))
    return opened


def leaders(pages: list[Page]) -> list[Page]:
    return [page for page in pages if page.evaluate("window.marketplaceRealtime.isLeader")]


def desktop_shown(pages: list[Page], body: str) -> int:
    return sum(
        page.evaluate(
            "(body) => window.__notifications.filter((n) => n.body === body).length", body
        )
        for page in pages
    )


def test_three_tabs_share_one_socket_and_one_desktop_notification_and_survive_the_leader_closing(
    live_server: LiveServer, new_context: Contexts
) -> None:
    live_server.wait_for_ws_connections(0)
    user = live_server.signup("Tess Tabs")
    context = new_context(init_scripts=(HIDDEN_PAGE, NOTIFICATION_SPY))
    context.grant_permissions(["notifications"], origin=live_server.url)
    sockets = record_sockets(context)
    tabs = [login(context, user, "/services"), open_page(context, "/bookings")]
    tabs.append(open_page(context, "/notifications"))
    for tab in tabs:
        wait_live(tab)
    live_server.wait_for_ws_connections(1)
    assert len(leaders(tabs)) == 1
    assert len(sockets) == 1, sockets

    [first] = live_server.publish([user.id], {"message": "To every tab"})
    for tab in tabs:
        expect(badge(tab)).to_have_text("1")
        expect(tab.locator(f'[data-rt-list] [data-notification-id="{first}"]')).to_have_count(1)
    assert desktop_shown(tabs, "To every tab") == 1
    assert live_server.ws_connections() == 1

    # The leader goes; another tab takes over within a couple of seconds, on one socket.
    [leader] = leaders(tabs)
    leader.close()
    remaining = [tab for tab in tabs if tab is not leader]

    def taken_over() -> bool:
        new = leaders(remaining)
        return (
            len(new) == 1
            and new[0].evaluate("window.marketplaceRealtime.isConnected()")
            and live_server.ws_connections() == 1
        )

    poll(taken_over, TAKEOVER_SECONDS, what="a new leader tab, connected, one socket")
    assert len(sockets) == 2, sockets

    [second] = live_server.publish([user.id], {"message": "After the takeover"})
    for tab in remaining:
        expect(badge(tab)).to_have_text("2")
        expect(tab.locator(f'[data-rt-list] [data-notification-id="{second}"]')).to_have_count(1)
        wait_live(tab)
    assert desktop_shown(remaining, "After the takeover") == 1


@pytest.mark.parametrize("who", ["leader", "follower"])
def test_logging_out_in_one_tab_signs_out_that_sessions_tabs_for_good_and_not_other_sessions(
    live_server: LiveServer, new_context: Contexts, who: str
) -> None:
    live_server.wait_for_ws_connections(0)
    user = live_server.signup("Logan Logout")
    context = new_context()
    sockets = record_sockets(context)
    tabs = [login(context, user, "/services"), open_page(context, "/bookings")]
    tabs.append(open_page(context, "/services"))
    other_session = login(new_context(), user, "/notifications")
    for page in [*tabs, other_session]:
        wait_live(page)
    live_server.wait_for_ws_connections(2)

    [leader] = leaders(tabs)
    leaving = leader if who == "leader" else next(tab for tab in tabs if tab is not leader)
    staying = [tab for tab in tabs if tab is not leaving]
    refused_before = live_server.refused_unauthenticated()
    with leaving.expect_navigation(url=re.compile(r"/login$")):
        leaving.get_by_role("button", name="Log out").click()

    for tab in staying:
        expect(status(tab)).to_have_attribute("data-state", "signed-out")
        expect(status(tab)).to_have_text(re.compile(r"^Signed out"))
        expect(tab.get_by_role("link", name="Log in again")).to_be_visible()
    live_server.wait_for_ws_connections(1)

    # They stay signed out: no socket, no refused handshakes, over two heartbeat intervals.
    sockets_after_logout = len(sockets)
    deadline = time.monotonic() + 2 * HEARTBEAT_SECONDS + 0.5
    while time.monotonic() < deadline:
        assert live_server.ws_connections() == 1
        assert live_server.refused_unauthenticated() == refused_before
        time.sleep(0.5)
    assert len(sockets) == sockets_after_logout, sockets
    for tab in staying:
        expect(status(tab)).to_have_attribute("data-state", "signed-out")

    # The other session never noticed.
    wait_live(other_session)
    live_server.publish([user.id], {"message": "Still here"})
    expect(badge(other_session)).to_have_text("1")

    # Logging in again in this browser, with the signed-out tabs still open: the new session's
    # tab leads and connects (a signed-out tab hands the lock on); the old pages stay signed out.
    leaving.fill("#f-email", user.email)
    leaving.fill("#f-password", PASSWORD)
    with leaving.expect_navigation():
        leaving.locator("main form button[type=submit]").click()
    wait_live(leaving)
    live_server.wait_for_ws_connections(2)
    assert leaving.evaluate("window.marketplaceRealtime.isLeader")
    expect(badge(leaving)).to_have_text("1")
    for tab in staying:
        expect(status(tab)).to_have_attribute("data-state", "signed-out")
