"""Bursts: many notifications at once must not flood the page or the server. A replay of 120
after being offline shows three toasts and "and 117 more", marks them all seen in a few frames,
and empties the outbox; 300 published live within a second all reach the page over the same
socket. Through both, the server refuses none of the client's frames (rate_limited stays 0)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    TOAST_RECORDER,
    Contexts,
    LiveServer,
    badge,
    login,
    poll,
    status,
    wait_live,
)

RECONNECT_MS = 20_000
ARRIVE_MS = 20_000  # bound for a burst to reach the page (not a performance claim)
RATE_LIMITED = 'ws_bad_frames_total{reason="rate_limited"}'

# Every socket the page opens: how many, their close codes, the notification ids and error
# frames they receive, and what the client sends.
SOCKET_RECORDER = """
window.__ws = {opened: 0, closes: [], ids: [], errors: [], sent: []};
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__ws.opened += 1;
    this.addEventListener("message", (event) => {
      try {
        const frame = JSON.parse(event.data);
        if (frame.id !== null && frame.id !== undefined) window.__ws.ids.push(frame.id);
        if (frame.type === "error") window.__ws.errors.push(frame);
      } catch (error) {}
    });
    this.addEventListener("close", (event) => window.__ws.closes.push(event.code));
  }
  send(data) {
    window.__ws.sent.push(JSON.parse(data));
    super.send(data);
  }
};
"""


def rate_limited(server: LiveServer) -> float:
    return server.metrics().get(RATE_LIMITED, 0.0)


def publish_many(server: LiveServer, user_id: int, count: int) -> list[int]:
    """`count` notifications for one user, published concurrently (one POST each)."""

    def one(n: int) -> int:
        return server.publish([user_id], {"message": f"Burst {n}"})[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sorted(pool.map(one, range(count)))


def seen_in_server(server: LiveServer, ids: list[int]) -> int:
    marks = ",".join("?" * len(ids))
    [(count,)] = server.query(
        f"SELECT count(*) FROM notifications WHERE seen_at IS NOT NULL AND id IN ({marks})",
        tuple(ids),
    )
    return int(count)


def outbox_size(page: Page, user_id: int) -> int:
    return int(
        page.evaluate(
            "(key) => JSON.parse(localStorage.getItem(key) || '[]').length", f"rt-outbox:{user_id}"
        )
    )


def mark_seen_frames(page: Page) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = page.evaluate(
        "window.__ws.sent.filter((f) => f.type === 'mark_seen')"
    )
    return frames


def test_a_replay_of_120_after_being_offline_shows_three_toasts_and_a_summary_and_marks_all_seen(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Olive Offline")
    context = new_context(init_scripts=(TOAST_RECORDER, SOCKET_RECORDER))
    page = login(context, user, "/services")
    wait_live(page)
    refused_before = rate_limited(live_server)

    # The network goes; 120 notifications are stored meanwhile; it comes back: one replay.
    context.set_offline(True)
    expect(status(page)).not_to_have_attribute("data-state", "open")
    ids = publish_many(live_server, user.id, 120)
    context.set_offline(False)
    wait_live(page, timeout=RECONNECT_MS)

    summary = page.locator("[data-rt-toasts] [data-rt-summary]")
    expect(summary).to_have_text(re.compile(r"^and 117 more"), timeout=ARRIVE_MS)
    expect(summary.get_by_role("link", name="and 117 more")).to_have_attribute(
        "href", "/notifications"
    )
    assert page.evaluate("window.__toasts") == ids[:3], "three toasts ever shown, the oldest three"
    assert page.locator("[data-rt-toasts] .toast[data-notification-id]").count() <= 3
    expect(badge(page)).to_have_text("120")

    # Every one of them ends up seen in the server, and the outbox empties.
    poll(lambda: seen_in_server(live_server, ids) == 120, timeout=15, what="120 seen")
    poll(lambda: outbox_size(page, user.id) == 0, timeout=15, what="an empty outbox")
    frames = mark_seen_frames(page)
    assert frames and all(len(f["ids"]) <= 500 for f in frames), frames
    assert len(frames) <= 12, f"{len(frames)} mark_seen frames for 120 notifications"
    assert page.evaluate("window.__ws.errors") == []
    assert rate_limited(live_server) == refused_before


def test_300_notifications_within_a_second_reach_the_page_on_the_same_socket_without_refusals(
    live_server: LiveServer, new_context: Contexts
) -> None:
    user = live_server.signup("Frida Flood")
    page = login(new_context(init_scripts=(TOAST_RECORDER, SOCKET_RECORDER)), user, "/services")
    wait_live(page)
    refused_before = rate_limited(live_server)

    ids = publish_many(live_server, user.id, 300)

    page.wait_for_function(
        "(ids) => ids.every((id) => window.__ws.ids.includes(id))", arg=ids, timeout=ARRIVE_MS
    )
    expect(badge(page)).to_have_text("300")
    expect(page.locator("[data-rt-toasts] [data-rt-summary]")).to_have_text(
        re.compile(r"^and 297 more")
    )
    poll(lambda: seen_in_server(live_server, ids) == 300, timeout=15, what="300 seen")
    poll(lambda: outbox_size(page, user.id) == 0, timeout=15, what="an empty outbox")

    # One socket all along: never closed (no 1008 for flooding), never refused, still live.
    wait_live(page)
    recorded = page.evaluate("window.__ws")
    assert recorded["opened"] == 1 and recorded["closes"] == [], json.dumps(recorded)[:500]
    assert recorded["errors"] == []
    assert rate_limited(live_server) == refused_before
