"""Notification settings: per-event pop-up choices, stored on the server, handed to the script."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

from yarl import URL

from app.db import Database
from app.notifications.preferences import (
    CHANNELS,
    CRITICAL_EVENTS,
    EVENTS,
    Preference,
    get_preferences,
    save_preferences,
)
from tests.conftest import Browser, BrowserFactory

PAGE = "/account/notifications"
EVENT_NAMES = [event.name for event in EVENTS]
ALL_ON = {name: {"in_app": True, "desktop": True} for name in EVENT_NAMES}


class Page(HTMLParser):
    """What a person sees of the settings form, and what the script reads off <body>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.boxes: dict[str, dict[str, str | None]] = {}
        self.labels: dict[str, str] = {}  # the `for` of each label -> its text
        self.body: dict[str, str | None] = {}
        self.status: list[str] = []
        self._label_for: str | None = None
        self._in_status = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        elif tag == "input" and found.get("type") == "checkbox":
            self.boxes[found["name"] or ""] = found
        elif tag == "label":
            self._label_for = found.get("for")
            if self._label_for:
                self.labels[self._label_for] = ""
        elif found.get("role") == "status" and tag == "p":
            self._in_status = True
            self.status.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_for = None
        elif tag == "p":
            self._in_status = False

    def handle_data(self, data: str) -> None:
        if self._label_for:
            self.labels[self._label_for] += data
        if self._in_status:
            self.status[-1] += data

    def checked(self, name: str) -> bool:
        return "checked" in self.boxes[name]

    def disabled(self, name: str) -> bool:
        return "disabled" in self.boxes[name]

    def label_of(self, name: str) -> str:
        return " ".join(self.labels[self.boxes[name]["id"] or ""].split())

    def client_prefs(self) -> Any:
        raw = self.body.get("data-notification-prefs")
        assert raw is not None, "the body carries no notification preferences"
        return json.loads(raw)


def form_with(off: set[str]) -> dict[str, str]:
    """What the browser submits: every box ticked except `off` (`in_app:new_booking`, ...).
    Disabled boxes are never submitted, as a real browser does."""
    form = {}
    for event in EVENTS:
        if event.critical:
            continue
        for channel in CHANNELS:
            name = f"{channel}:{event.name}"
            if name not in off:
                form[name] = "1"
    return form


async def stored(db: Database, user_id: int | None) -> dict[str, tuple[int, int]]:
    rows = await db.fetch_all(
        "SELECT event, in_app, desktop FROM notification_preferences WHERE user_id = ?",
        (user_id,),
    )
    return {row["event"]: (row["in_app"], row["desktop"]) for row in rows}


async def settings_page(browser: Browser, path: str = PAGE) -> Page:
    return Page(await browser.page(path))


# --- Defaults -------------------------------------------------------------------------------


async def test_a_new_account_gets_every_pop_up_switched_on(
    client_browser: Browser, db: Database
) -> None:
    page = await settings_page(client_browser)

    assert list(page.boxes) == [f"{channel}:{name}" for name in EVENT_NAMES for channel in CHANNELS]
    assert all(page.checked(name) for name in page.boxes)
    assert page.client_prefs() == ALL_ON
    assert page.status == []
    assert await stored(db, client_browser.user_id) == {}


async def test_every_checkbox_has_a_label_naming_what_it_does(client_browser: Browser) -> None:
    page = await settings_page(client_browser)

    for name in EVENT_NAMES:
        assert page.label_of(f"in_app:{name}") == "Pop-up on the page"
        assert page.label_of(f"desktop:{name}") == "Desktop notification"
        assert page.boxes[f"in_app:{name}"]["value"] == "1"


async def test_the_page_explains_that_the_inbox_keeps_everything(
    client_browser: Browser,
) -> None:
    html = await client_browser.page(PAGE)

    assert "<h1>Notification settings</h1>" in html
    assert "inbox</a> keeps every notification" in html
    assert "A client books one of your services" in html
    assert "General notices" in html


# --- Saving ---------------------------------------------------------------------------------


async def test_switching_some_pop_ups_off_is_saved_and_shown_after_a_reload(
    client_browser: Browser, db: Database
) -> None:
    off = {"desktop:new_booking", "in_app:payment_received", "desktop:payment_received"}

    response = await client_browser.post(PAGE, form_with(off))

    assert response.status == 303
    assert response.headers["Location"] == f"{PAGE}?saved=1"
    page = await settings_page(client_browser, response.headers["Location"])
    assert page.status == ["Saved."]
    assert {name for name in page.boxes if not page.checked(name)} == off
    rows = await stored(db, client_browser.user_id)
    assert set(rows) == set(EVENT_NAMES)
    assert rows["new_booking"] == (1, 0)
    assert rows["payment_received"] == (0, 0)
    assert rows["booking_accepted"] == (1, 1)
    assert rows["notification"] == (1, 1)

    # A later visit (no ?saved) still shows the choice, without the confirmation.
    again = await settings_page(client_browser)
    assert again.status == []
    assert {name for name in again.boxes if not again.checked(name)} == off


async def test_saving_again_replaces_the_earlier_choice(
    client_browser: Browser, db: Database
) -> None:
    assert (await client_browser.post(PAGE, form_with({"in_app:notification"}))).status == 303

    response = await client_browser.post(PAGE, form_with({"desktop:booking_declined"}))

    assert response.status == 303
    rows = await stored(db, client_browser.user_id)
    assert len(rows) == len(EVENT_NAMES)
    assert rows["notification"] == (1, 1)
    assert rows["booking_declined"] == (1, 0)
    page = await settings_page(client_browser)
    assert [name for name in page.boxes if not page.checked(name)] == ["desktop:booking_declined"]


async def test_unticking_everything_leaves_only_the_critical_events_on(
    client_browser: Browser, db: Database
) -> None:
    response = await client_browser.post(PAGE, {})

    assert response.status == 303
    rows = await stored(db, client_browser.user_id)
    assert {event for event, values in rows.items() if values == (1, 1)} == CRITICAL_EVENTS
    assert {event for event, values in rows.items() if values == (0, 0)} == (
        set(EVENT_NAMES) - CRITICAL_EVENTS
    )


# --- Critical events ------------------------------------------------------------------------


async def test_critical_events_are_shown_ticked_and_disabled_with_the_reason(
    client_browser: Browser,
) -> None:
    assert (await client_browser.post(PAGE, {})).status == 303

    page = await settings_page(client_browser)
    html = await client_browser.page(PAGE)

    for name in ("payment_failed", "booking_cancelled"):
        for channel in CHANNELS:
            box = f"{channel}:{name}"
            assert page.checked(box) and page.disabled(box)
            assert page.boxes[box]["aria-describedby"] == f"why-{name}"
    assert not page.disabled("in_app:payment_refunded")
    assert "Always on: you need to know when a payment fails" in html
    assert "Always on: you need to know when a booking is cancelled" in html


async def test_a_crafted_form_cannot_switch_off_a_critical_event(
    client_browser: Browser, db: Database
) -> None:
    form = form_with(set())  # no in_app:payment_failed, no desktop:booking_cancelled...
    form |= {"in_app:payment_failed": "0", "desktop:booking_cancelled": ""}

    response = await client_browser.post(PAGE, form)

    assert response.status == 303
    rows = await stored(db, client_browser.user_id)
    assert rows["payment_failed"] == (1, 1)
    assert rows["booking_cancelled"] == (1, 1)
    page = await settings_page(client_browser)
    assert page.checked("in_app:payment_failed")
    assert page.client_prefs()["payment_failed"] == {"in_app": True, "desktop": True}


async def test_a_critical_event_stored_as_off_still_reads_as_on(
    client_browser: Browser, db: Database
) -> None:
    """A row written some other way (or before the event became critical) cannot mute it."""
    await db.write_statement(
        "INSERT INTO notification_preferences VALUES (?, 'payment_failed', 0, 0, 0, 0)",
        (client_browser.user_id,),
    )
    assert client_browser.user_id is not None

    prefs = await get_preferences(db, client_browser.user_id)

    assert prefs["payment_failed"] == Preference(in_app=True, desktop=True)
    assert (await settings_page(client_browser)).checked("desktop:payment_failed")


async def test_saving_from_code_stores_critical_events_as_on(
    client_browser: Browser, db: Database
) -> None:
    assert client_browser.user_id is not None
    off = Preference(in_app=False, desktop=False)

    await save_preferences(
        db, client_browser.user_id, {"booking_cancelled": off, "notification": off}
    )

    assert await stored(db, client_browser.user_id) == {
        "booking_cancelled": (1, 1),
        "notification": (0, 0),
    }


# --- Only your own, only these fields -------------------------------------------------------


async def test_unknown_fields_are_ignored(client_browser: Browser, db: Database) -> None:
    form = form_with({"in_app:new_booking"}) | {
        "in_app:no_such_event": "1",
        "desktop:": "1",
        "email:new_booking": "1",
        "user_id": "1",
        "email": "someone@example.com",
    }

    response = await client_browser.post(PAGE, form)

    assert response.status == 303
    rows = await stored(db, client_browser.user_id)
    assert set(rows) == set(EVENT_NAMES)
    assert rows["new_booking"] == (0, 1)
    assert await db.fetch_value("SELECT COUNT(*) FROM notification_preferences") == len(EVENTS)
    assert await db.fetch_value(
        "SELECT email FROM users WHERE id = ?", (client_browser.user_id,)
    ) == ("client@example.com")


async def test_saving_leaves_another_persons_preferences_alone(
    client_browser: Browser, stranger: Browser, db: Database
) -> None:
    assert (await stranger.post(PAGE, form_with({"desktop:notification"}))).status == 303
    theirs = await stored(db, stranger.user_id)

    form = form_with({"in_app:booking_accepted"}) | {"user_id": str(stranger.user_id)}
    assert (await client_browser.post(PAGE, form)).status == 303

    assert await stored(db, stranger.user_id) == theirs
    assert (await stored(db, client_browser.user_id))["booking_accepted"] == (0, 1)
    stranger_page = await settings_page(stranger)
    assert stranger_page.checked("in_app:booking_accepted")
    assert not stranger_page.checked("desktop:notification")


# --- Who may use the page -------------------------------------------------------------------


async def test_a_signed_out_visitor_is_sent_to_log_in_first(
    new_browser: BrowserFactory, db: Database
) -> None:
    visitor = await new_browser()

    response = await visitor.get(PAGE)
    posted = await visitor.post(PAGE, form_with(set()))

    assert response.status == 303
    location = URL(response.headers["Location"])
    assert location.path == "/login"
    assert location.query["next"] == PAGE
    assert posted.status == 303
    assert URL(posted.headers["Location"]).path == "/login"
    assert await db.fetch_value("SELECT COUNT(*) FROM notification_preferences") == 0


async def test_a_form_without_a_csrf_token_is_refused_and_saves_nothing(
    client_browser: Browser, db: Database
) -> None:
    response = await client_browser.post(PAGE, form_with({"in_app:new_booking"}), csrf=False)

    assert response.status == 403
    assert await stored(db, client_browser.user_id) == {}


# --- What the browser script gets -----------------------------------------------------------


async def test_every_signed_in_page_hands_the_preferences_to_the_script(
    client_browser: Browser,
) -> None:
    off = {"in_app:booking_completed", "desktop:payment_refunded", "desktop:payment_failed"}
    assert (await client_browser.post(PAGE, form_with(off))).status == 303

    for path in ("/services", "/notifications", PAGE):
        prefs = Page(await client_browser.page(path)).client_prefs()

        assert list(prefs) == EVENT_NAMES
        assert prefs["booking_completed"] == {"in_app": False, "desktop": True}
        assert prefs["payment_refunded"] == {"in_app": True, "desktop": False}
        assert prefs["payment_failed"] == {"in_app": True, "desktop": True}  # critical
        assert prefs["new_booking"] == {"in_app": True, "desktop": True}


async def test_a_signed_out_page_carries_no_preferences(new_browser: BrowserFactory) -> None:
    page = Page(await (await new_browser()).page("/services"))

    assert "data-notification-prefs" not in page.body


# --- Links ----------------------------------------------------------------------------------


async def test_the_sessions_page_and_the_inbox_link_to_the_settings(
    client_browser: Browser,
) -> None:
    for path in ("/account/sessions", "/notifications"):
        html = await client_browser.page(path)
        assert f'href="{PAGE}"' in html
        assert "Notification settings" in html
