"""A page further behind than the server's replay limit: the server skips the oldest ones
(`replay_truncated`) and the page says so once, calmly, with a link to the inbox; the newest
ones come as usual (three toasts and a summary), all marked seen, nothing refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    TOAST_RECORDER,
    Contexts,
    LiveServer,
    login,
    poll,
    status,
    wait_live,
)
from tests.browser.test_bursts import (
    RECONNECT_MS,
    SOCKET_RECORDER,
    outbox_size,
    publish_many,
    rate_limited,
    seen_in_server,
)
from tests.stores import OutsideDatabase

REPLAY_LIMIT = 50


@pytest.fixture(scope="module")
def live_server(live_db: OutsideDatabase) -> Iterator[LiveServer]:
    """This module's server replays at most REPLAY_LIMIT notifications per resume."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APP_WS_REPLAY_LIMIT", str(REPLAY_LIMIT))
        server = LiveServer(live_db)
        server.start()
    try:
        yield server
    finally:
        server.kill()


def test_a_truncated_replay_shows_one_notice_about_the_older_ones_and_the_newest_as_usual(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Tess Truncated")
    context = new_context(init_scripts=(TOAST_RECORDER, SOCKET_RECORDER))
    page = login(context, user, "/services")
    wait_live(page)
    refused_before = rate_limited(live_server)

    context.set_offline(True)
    expect(status(page)).not_to_have_attribute("data-state", "open")
    ids = publish_many(live_server, user.id, REPLAY_LIMIT + 30)
    context.set_offline(False)
    wait_live(page, timeout=RECONNECT_MS)

    notice = page.locator("[data-rt-toasts] [data-rt-notice]")
    expect(notice).to_have_count(1)
    link = notice.get_by_role("link", name="30 older notifications are in your inbox")
    expect(link).to_have_attribute("href", "/notifications")
    newest = ids[30:]
    summary = page.locator("[data-rt-toasts] [data-rt-summary]")
    expect(summary).to_have_text(re.compile(rf"^and {REPLAY_LIMIT - 3} more"))
    assert page.evaluate("window.__toasts") == newest[:3], "no toast for a skipped one"
    page.wait_for_function(
        "(ids) => ids.every((id) => window.__ws.ids.includes(id))", arg=newest, timeout=10_000
    )
    assert not set(page.evaluate("window.__ws.ids")) & set(ids[:30]), "the skipped stay skipped"

    poll(lambda: seen_in_server(live_server, newest) == REPLAY_LIMIT, timeout=15, what="seen")
    poll(lambda: outbox_size(page, user.id) == 0, timeout=15, what="an empty outbox")
    assert seen_in_server(live_server, ids[:30]) == 0, "only what was shown is marked seen"
    assert page.evaluate("window.__ws.errors") == []
    assert rate_limited(live_server) == refused_before
