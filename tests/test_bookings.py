"""Bookings: every legal move of the state machine through HTTP with the one notification it
sends, every illegal move refused with nothing changed, the validation of a booking request,
who may see a booking, and racing changes of one booking.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse

from app.db import Database
from app.marketplace.bookings import format_when
from tests.conftest import Browser, BrowserFactory
from tests.flows import accepted_booking, act, book, create_service, future_slot

XSS = "<script>alert(1)</script>"


async def booking_row(db: Database, booking_id: int) -> dict[str, Any]:
    row = await db.fetch_one("SELECT * FROM bookings WHERE id = ?", (booking_id,))
    assert row is not None
    return dict(row)


async def notifications_after(db: Database, last_id: int = 0) -> list[dict[str, Any]]:
    rows = await db.fetch_all("SELECT * FROM notifications WHERE id > ? ORDER BY id", (last_id,))
    return [{**dict(row), "data": json.loads(row["data"])} for row in rows]


async def last_notification_id(db: Database) -> int:
    return int(await db.fetch_value("SELECT coalesce(max(id), 0) FROM notifications"))


async def per_user(db: Database, last_id: int = 0) -> Counter[int]:
    return Counter(n["user_id"] for n in await notifications_after(db, last_id))


async def post_now(browser: Browser, path: str, token: str) -> ClientResponse:
    """A POST with a CSRF token fetched beforehand, so racing requests leave together."""
    return await browser.post(path, {"csrf_token": token})


async def second_session_of(new_browser: BrowserFactory, email: str, user_id: int) -> Browser:
    browser = await new_browser()
    assert (await browser.login(email)).status == 303
    browser.user_id = user_id
    return browser


async def test_booking_a_service_notifies_its_provider_and_nobody_else(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    when = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT10:30")

    response = await client_browser.post(
        f"/services/{service_id}/book", {"scheduled_at": when, "note": "Ring twice"}
    )

    assert response.status == 303
    booking_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert response.headers["Location"] == f"/bookings/{booking_id}"
    row = await booking_row(db, booking_id)
    assert (row["client_id"], row["provider_id"], row["service_id"]) == (
        client_browser.user_id,
        provider.user_id,
        service_id,
    )
    assert (row["status"], row["scheduled_at"], row["note"]) == (
        "pending",
        when,
        "Ring twice",
    )
    assert (row["service_name"], row["price_cents"]) == ("House Cleaning", 15000)

    [notification] = await notifications_after(db)
    assert notification["user_id"] == provider.user_id
    assert notification["type"] == "booking_update"
    assert notification["event"] == "new_booking"
    assert notification["key"] == f"booking:{booking_id}"
    assert notification["data"] == {
        "type": "new_booking",
        "booking_id": booking_id,
        "service_name": "House Cleaning",
        "scheduled_at": when,
        "client_name": "Casey Client",
        "message": f"Casey Client booked House Cleaning for {format_when(when, weekday=True)}.",
    }
    assert await per_user(db) == Counter({provider.user_id: 1})

    for browser in (client_browser, provider):
        page = await browser.page(f"/bookings/{booking_id}")
        assert "data-status>Pending</span>" in page and "Ring twice" in page
    assert f'data-booking-id="{booking_id}"' in await provider.page("/bookings")


# (steps before, who acts, action, status after, who hears of it, event)
LEGAL = [
    ([], "provider", "accept", "accepted", "client", "booking_accepted"),
    ([], "provider", "decline", "declined", "client", "booking_declined"),
    ([], "client", "cancel", "cancelled", "provider", "booking_cancelled"),
    ([], "provider", "cancel", "cancelled", "client", "booking_cancelled"),
    (["accept"], "client", "cancel", "cancelled", "provider", "booking_cancelled"),
    (["accept"], "provider", "cancel", "cancelled", "client", "booking_cancelled"),
    (["accept"], "provider", "complete", "completed", "client", "booking_completed"),
]


@pytest.mark.parametrize(
    ("before", "actor", "action", "status", "recipient", "event"),
    LEGAL,
    ids=[f"{'+'.join(b) or 'pending'}-{a}-{act_}" for b, a, act_, *_ in LEGAL],
)
async def test_each_legal_change_is_made_and_notifies_exactly_the_other_party(
    provider: Browser,
    client_browser: Browser,
    stranger: Browser,
    db: Database,
    before: list[str],
    actor: str,
    action: str,
    status: str,
    recipient: str,
    event: str,
) -> None:
    people = {"provider": provider, "client": client_browser}
    booking_id = await book(client_browser, await create_service(provider))
    for step in before:
        assert await act(provider, booking_id, step) == 303
    mark = await last_notification_id(db)

    response = await people[actor].post(f"/bookings/{booking_id}/{action}")

    assert response.status == 303
    assert response.headers["Location"] == f"/bookings/{booking_id}"
    row = await booking_row(db, booking_id)
    assert row["status"] == status
    assert row["cancelled_by"] == (people[actor].user_id if action == "cancel" else None)

    [notification] = await notifications_after(db, mark)
    assert notification["user_id"] == people[recipient].user_id
    assert (notification["type"], notification["event"]) == ("booking_update", event)
    assert notification["key"] == f"booking:{booking_id}"
    actor_name = "Pat Provider" if actor == "provider" else "Casey Client"
    whose = "your" if actor == "provider" else "their"
    when = format_when(str(row["scheduled_at"]))
    told = (
        f"{actor_name} marked {whose} booking of House Cleaning on {when} as done."
        if action == "complete"
        else f"{actor_name} {status} {whose} booking of House Cleaning on {when}."
    )
    assert notification["data"] == {
        "type": event,
        "booking_id": booking_id,
        "service_name": "House Cleaning",
        "status": status,
        "message": told,
    }
    assert await per_user(db, mark) == Counter({people[recipient].user_id: 1})

    for browser in people.values():
        page = await browser.page(f"/bookings/{booking_id}")
        assert f"data-status>{status.capitalize()}</span>" in page


async def test_the_booking_page_offers_each_party_only_the_actions_they_may_take(
    provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book(client_browser, await create_service(provider))

    def actions(page: str) -> set[str]:
        return {
            a
            for a in ("accept", "decline", "cancel", "complete")
            if f'action="/bookings/{booking_id}/{a}"' in page
        }

    assert actions(await provider.page(f"/bookings/{booking_id}")) == {
        "accept",
        "decline",
        "cancel",
    }
    assert actions(await client_browser.page(f"/bookings/{booking_id}")) == {"cancel"}
    assert await act(provider, booking_id, "accept") == 303
    assert actions(await provider.page(f"/bookings/{booking_id}")) == {"cancel", "complete"}
    client_page = await client_browser.page(f"/bookings/{booking_id}")
    assert actions(client_page) == {"cancel"}
    assert f'href="/bookings/{booking_id}/pay"' in client_page
    assert await act(provider, booking_id, "complete") == 303
    assert actions(await provider.page(f"/bookings/{booking_id}")) == set()


# (steps before, who tries, action, HTTP status, message)
ILLEGAL = [
    (
        [("client", "cancel")],
        "provider",
        "accept",
        409,
        "This booking is cancelled, so it cannot be accepted.",
    ),
    (
        [("provider", "accept")],
        "provider",
        "accept",
        409,
        "This booking is accepted, so it cannot be accepted.",
    ),
    (
        [("provider", "accept")],
        "provider",
        "decline",
        409,
        "This booking is accepted, so it cannot be declined.",
    ),
    ([], "provider", "complete", 409, "This booking is pending, so it cannot be marked as done."),
    (
        [("provider", "decline")],
        "provider",
        "complete",
        409,
        "This booking is declined, so it cannot be marked as done.",
    ),
    (
        [("provider", "accept"), ("provider", "complete")],
        "client",
        "cancel",
        409,
        "This booking is completed, so it cannot be cancelled.",
    ),
    (
        [("provider", "accept"), ("provider", "complete")],
        "provider",
        "cancel",
        409,
        "This booking is completed, so it cannot be cancelled.",
    ),
    (
        [("provider", "decline")],
        "client",
        "cancel",
        409,
        "This booking is declined, so it cannot be cancelled.",
    ),
    (
        [("client", "cancel")],
        "provider",
        "cancel",
        409,
        "This booking is cancelled, so it cannot be cancelled.",
    ),
    ([], "client", "accept", 403, "Only the provider can accept a booking."),
    ([], "client", "decline", 403, "Only the provider can decline a booking."),
    ([("provider", "accept")], "client", "complete", 403, "Only the provider can complete"),
]


@pytest.mark.parametrize(
    ("before", "actor", "action", "code", "message"),
    ILLEGAL,
    ids=[f"{'+'.join(s for _, s in b) or 'pending'}-{a}-{act_}" for b, a, act_, *_ in ILLEGAL],
)
async def test_each_illegal_change_is_refused_with_a_clear_message_and_changes_nothing(
    provider: Browser,
    client_browser: Browser,
    db: Database,
    before: list[tuple[str, str]],
    actor: str,
    action: str,
    code: int,
    message: str,
) -> None:
    people = {"provider": provider, "client": client_browser}
    booking_id = await book(client_browser, await create_service(provider))
    for who, step in before:
        assert await act(people[who], booking_id, step) == 303
    row_before = await booking_row(db, booking_id)
    mark = await last_notification_id(db)

    response = await people[actor].post(f"/bookings/{booking_id}/{action}")
    page = await response.text()

    assert response.status == code
    assert message in page
    assert "Not possible right now" in page if code == 409 else "<h1>Forbidden</h1>" in page
    assert await booking_row(db, booking_id) == row_before
    assert await notifications_after(db, mark) == []


async def test_booking_your_own_service_is_refused(provider: Browser, db: Database) -> None:
    service_id = await create_service(provider)

    response = await provider.post(
        f"/services/{service_id}/book", {"scheduled_at": future_slot(), "note": "Me"}
    )

    assert response.status == 400
    page = await response.text()
    assert '<p class="form-error" role="alert">You cannot book your own service.</p>' in page
    assert await db.fetch_value("SELECT count(*) FROM bookings") == 0
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 0


def _days_from_now(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT10:00")


BAD_REQUESTS = [
    ("scheduled_at", _days_from_now(-3), "", "Choose a time in the future."),
    ("scheduled_at", "", "", "Choose a date and time."),
    ("scheduled_at", "next tuesday", "", "Choose a date and time."),
    ("scheduled_at", "2030-13-45T10:00", "", "Choose a date and time."),
    ("scheduled_at", "15/01/2030 10:00", "", "Choose a date and time."),
    ("scheduled_at", _days_from_now(400), "", "Bookings can be made up to a year ahead."),
    ("note", _days_from_now(7), "n" * 1001, "Note must be at most 1000 characters."),
]


@pytest.mark.parametrize(
    ("field", "scheduled_at", "note", "message"),
    BAD_REQUESTS,
    ids=["past", "empty", "words", "impossible-date", "wrong-format", "too-far", "long-note"],
)
async def test_a_bad_booking_request_is_refused_with_the_error_and_input_kept(
    provider: Browser,
    client_browser: Browser,
    db: Database,
    field: str,
    scheduled_at: str,
    note: str,
    message: str,
) -> None:
    service_id = await create_service(provider)
    note = note or "Please bring a ladder"

    response = await client_browser.post(
        f"/services/{service_id}/book", {"scheduled_at": scheduled_at, "note": note}
    )
    page = await response.text()

    assert response.status == 400
    assert f'<p class="error" id="e-{field}">{message}</p>' in page
    assert f'value="{scheduled_at}"' in page
    assert f">{note}</textarea>" in page
    assert await db.fetch_value("SELECT count(*) FROM bookings") == 0
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 0


async def test_a_script_in_the_booking_note_is_shown_as_text(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await book(client_browser, await create_service(provider), note=XSS)

    assert (await booking_row(db, booking_id))["note"] == XSS
    for browser in (client_browser, provider):
        page = await browser.page(f"/bookings/{booking_id}")
        assert XSS not in page
        assert '<dd class="note">&lt;script&gt;alert(1)&lt;/script&gt;</dd>' in page


async def test_a_stranger_can_neither_see_nor_change_someone_elses_booking(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    row_before = await booking_row(db, booking_id)
    mark = await last_notification_id(db)

    view = await stranger.get(f"/bookings/{booking_id}")
    pay_form = await stranger.get(f"/bookings/{booking_id}/pay")
    actions = [
        await stranger.post(f"/bookings/{booking_id}/{action}")
        for action in ("accept", "decline", "cancel", "complete")
    ]

    assert view.status == 404
    assert "That booking does not exist." in await view.text()
    assert pay_form.status == 404
    assert [r.status for r in actions] == [404, 404, 404, 404]
    assert await booking_row(db, booking_id) == row_before
    assert await notifications_after(db, mark) == []
    assert f'data-booking-id="{booking_id}"' not in await stranger.page("/bookings")


async def test_two_simultaneous_accepts_from_two_sessions_make_one_change_and_one_notification(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    assert provider.user_id is not None
    booking_id = await book(client_browser, await create_service(provider))
    other_tab = await second_session_of(new_browser, "provider@example.com", provider.user_id)
    tokens = [await provider.csrf(), await other_tab.csrf()]
    mark = await last_notification_id(db)

    responses = await asyncio.gather(
        post_now(provider, f"/bookings/{booking_id}/accept", tokens[0]),
        post_now(other_tab, f"/bookings/{booking_id}/accept", tokens[1]),
    )

    assert sorted(r.status for r in responses) == [303, 409]
    [refused] = [r for r in responses if r.status == 409]
    assert "cannot be accepted" in await refused.text()
    assert (await booking_row(db, booking_id))["status"] == "accepted"
    new = await notifications_after(db, mark)
    assert [(n["user_id"], n["event"]) for n in new] == [
        (client_browser.user_id, "booking_accepted")
    ]


async def test_a_double_clicked_accept_in_one_browser_makes_one_change_and_one_notification(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    token = await provider.csrf()
    mark = await last_notification_id(db)

    responses = await asyncio.gather(
        *(post_now(provider, f"/bookings/{booking_id}/accept", token) for _ in range(3))
    )

    assert sorted(r.status for r in responses) == [303, 409, 409]
    assert (await booking_row(db, booking_id))["status"] == "accepted"
    new = await notifications_after(db, mark)
    assert [(n["user_id"], n["event"]) for n in new] == [
        (client_browser.user_id, "booking_accepted")
    ]


@pytest.mark.parametrize(
    ("before", "provider_action", "outcome"),
    [([], "decline", "declined"), (["accept"], "complete", "completed")],
)
async def test_a_provider_change_racing_a_client_cancel_has_exactly_one_winner(
    provider: Browser,
    client_browser: Browser,
    db: Database,
    before: list[str],
    provider_action: str,
    outcome: str,
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    for step in before:
        assert await act(provider, booking_id, step) == 303
    tokens = [await provider.csrf(), await client_browser.csrf()]
    mark = await last_notification_id(db)

    by_provider, by_client = await asyncio.gather(
        post_now(provider, f"/bookings/{booking_id}/{provider_action}", tokens[0]),
        post_now(client_browser, f"/bookings/{booking_id}/cancel", tokens[1]),
    )

    assert sorted([by_provider.status, by_client.status]) == [303, 409]
    status = (await booking_row(db, booking_id))["status"]
    new = [(n["user_id"], n["data"]["type"]) for n in await notifications_after(db, mark)]
    if by_provider.status == 303:
        assert status == outcome
        assert new == [(client_browser.user_id, f"booking_{outcome}")]
    else:
        assert status == "cancelled"
        assert new == [(provider.user_id, "booking_cancelled")]


async def test_an_accept_racing_a_cancel_leaves_a_status_that_matches_the_notifications(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    tokens = [await provider.csrf(), await client_browser.csrf()]
    mark = await last_notification_id(db)

    accept, cancel = await asyncio.gather(
        post_now(provider, f"/bookings/{booking_id}/accept", tokens[0]),
        post_now(client_browser, f"/bookings/{booking_id}/cancel", tokens[1]),
    )

    # Cancel always succeeds (from pending or from accepted); accept only if it came first.
    assert cancel.status == 303
    assert accept.status in (303, 409)
    row = await booking_row(db, booking_id)
    assert (row["status"], row["cancelled_by"]) == ("cancelled", client_browser.user_id)
    new = [(n["user_id"], n["data"]["type"]) for n in await notifications_after(db, mark)]
    expected = [(provider.user_id, "booking_cancelled")]
    if accept.status == 303:
        expected.insert(0, (client_browser.user_id, "booking_accepted"))
    else:
        assert "This booking is cancelled, so it cannot be accepted." in await accept.text()
    assert new == expected


async def test_a_booking_made_accepted_and_completed_lists_all_three_updates_for_the_right_people(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    assert await act(provider, booking_id, "complete") == 303

    rows = await notifications_after(db)
    assert [(n["user_id"], n["event"], n["key"]) for n in rows] == [
        (provider.user_id, "new_booking", f"booking:{booking_id}"),
        (client_browser.user_id, "booking_accepted", f"booking:{booking_id}"),
        (client_browser.user_id, "booking_completed", f"booking:{booking_id}"),
    ]
    assert stranger.user_id not in await per_user(db)
