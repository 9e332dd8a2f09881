"""Ratings and reviews: only a completed booking's client, once (also when two submissions
race), with a rating 1..5 and a body of at most 2000 characters; refusals change nothing;
the provider gets one `new_review` notification in words; service pages show the average,
the count and the reviews, escaped."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import web

from app import keys
from app.db import Database
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from app.marketplace import reviews
from tests.conftest import Browser, BrowserFactory
from tests.flows import accepted_booking, act, book, create_service

ALREADY = "You have already reviewed this booking."
RATING_ERROR = "Choose a rating from 1 to 5 stars."
XSS = "<script>alert(1)</script>"


async def completed_booking(
    provider: Browser, client: Browser, service_id: int | None = None
) -> int:
    if service_id is None:
        booking_id = await accepted_booking(provider, client)
    else:
        booking_id = await book(client, service_id)
        assert await act(provider, booking_id, "accept") == 303
    assert await act(provider, booking_id, "complete") == 303
    return booking_id


async def post_review(
    browser: Browser, booking_id: int, rating: str = "5", body: str = "", **extra: str
) -> tuple[int, str]:
    response = await browser.post(
        f"/bookings/{booking_id}/review", {"rating": rating, "body": body, **extra}
    )
    if response.status == 303:
        return 303, response.headers["Location"]
    return response.status, await response.text()


async def review_rows(db: Database) -> list[dict[str, Any]]:
    return [dict(row) for row in await db.fetch_all("SELECT * FROM reviews ORDER BY id")]


async def review_notifications(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetch_all("SELECT * FROM notifications WHERE event = 'new_review' ORDER BY id")
    return [{**dict(row), "data": json.loads(row["data"])} for row in rows]


async def last_notification_id(db: Database) -> int:
    return int(await db.fetch_value("SELECT coalesce(max(id), 0) FROM notifications"))


def app_of(browser: Browser) -> web.Application:
    app = browser.client.server.app
    assert app is not None
    return app


# --- leaving a review ---------------------------------------------------------------------


async def test_the_client_reviews_a_completed_booking_and_the_provider_hears_of_it_once(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    page = await client_browser.page(f"/bookings/{booking_id}")
    assert f'action="/bookings/{booking_id}/review"' in page
    assert "<legend>Your rating</legend>" in page
    before = await last_notification_id(db)

    status, location = await post_review(
        client_browser, booking_id, "5", "  Spotless, thank you\r\nWill book again.  "
    )

    assert (status, location) == (303, f"/bookings/{booking_id}#review")
    [row] = await review_rows(db)
    assert (row["booking_id"], row["client_id"], row["provider_id"], row["rating"]) == (
        booking_id,
        client_browser.user_id,
        provider.user_id,
        5,
    )
    assert row["body"] == "Spotless, thank you\nWill book again."  # trimmed, one kind of newline
    sent = await db.fetch_all(
        "SELECT user_id, type, event, key, data FROM notifications WHERE id > ?", (before,)
    )
    assert len(sent) == 1
    [(user_id, envelope, event, key, data)] = [tuple(r) for r in sent]
    assert (user_id, envelope, event, key) == (
        provider.user_id,
        "booking_update",
        "new_review",
        f"booking:{booking_id}",
    )
    assert json.loads(data) == {
        "type": "new_review",
        "booking_id": booking_id,
        "service_id": row["service_id"],
        "service_name": "House Cleaning",
        "review_id": row["id"],
        "rating": 5,
        "message": "Casey gave House Cleaning 5 stars: “Spotless, thank you Will book again.”",
    }

    # The client now sees their review instead of the form; the provider sees it too.
    mine = await client_browser.page(f"/bookings/{booking_id}")
    assert "Your review" in mine
    assert f"/bookings/{booking_id}/review" not in mine
    assert 'aria-label="Rated 5 out of 5"' in mine
    theirs = await provider.page(f"/bookings/{booking_id}")
    assert "Review from Casey" in theirs
    assert "Spotless, thank you\nWill book again." in theirs
    assert f"/bookings/{booking_id}/review" not in theirs


async def test_a_long_review_is_quoted_shortened_and_an_empty_one_in_words_alone(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    long_one = await completed_booking(provider, client_browser, service_id)
    short_one = await completed_booking(provider, client_browser, service_id)

    assert (await post_review(client_browser, long_one, "1", "Late " * 100))[0] == 303
    assert (await post_review(client_browser, short_one, "4", "   "))[0] == 303

    first, second = [n["data"]["message"] for n in await review_notifications(db)]
    assert first.startswith("Casey gave House Cleaning 1 star: “Late Late")
    assert first.endswith("…”")
    assert len(first) < len("Casey gave House Cleaning 1 star: “”") + 81
    assert second == "Casey gave House Cleaning 4 stars."
    assert [r["body"] for r in await review_rows(db)] == [("Late " * 100).strip(), ""]


async def test_a_booking_is_reviewed_once(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    assert (await post_review(client_browser, booking_id, "4", "Good"))[0] == 303
    before = await last_notification_id(db)

    status, page = await post_review(client_browser, booking_id, "1", "Changed my mind")

    assert status == 409
    assert ALREADY in page
    [row] = await review_rows(db)
    assert (row["rating"], row["body"]) == (4, "Good")
    assert await last_notification_id(db) == before


async def test_two_racing_submissions_make_one_review_and_one_clear_refusal(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    # The same person in a second tab... of a second device: two sessions, posting at once.
    phone = await new_browser()
    assert (await phone.login("client@example.com")).status == 303
    tokens = [await client_browser.csrf(), await phone.csrf()]

    responses = await asyncio.gather(
        client_browser.post(
            f"/bookings/{booking_id}/review",
            {"rating": "5", "body": "From the laptop", "csrf_token": tokens[0]},
        ),
        phone.post(
            f"/bookings/{booking_id}/review",
            {"rating": "2", "body": "From the phone", "csrf_token": tokens[1]},
        ),
    )

    assert sorted(r.status for r in responses) == [303, 409]
    [loser] = [r for r in responses if r.status == 409]
    assert ALREADY in await loser.text()
    assert len(await review_rows(db)) == 1
    assert len(await review_notifications(db)) == 1


async def test_racing_calls_of_leave_review_store_one_review(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    """The store level, where on PostgreSQL the two transactions really overlap."""
    booking_id = await completed_booking(provider, client_browser)
    notifier = app_of(client_browser)[keys.NOTIFIER]
    assert client_browser.user_id is not None

    results = await asyncio.gather(
        *(
            reviews.leave_review(
                db,
                notifier,
                client_id=client_browser.user_id,
                booking_id=booking_id,
                rating=rating,
                body=f"Try {rating}",
            )
            for rating in (1, 2, 3, 4)
        ),
        return_exceptions=True,
    )

    stored = [r for r in results if isinstance(r, reviews.Review)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(stored) == 1 and len(refused) == 3, results
    assert {str(r) for r in refused} == {ALREADY}
    [row] = await review_rows(db)
    assert row["id"] == stored[0].id
    assert len(await review_notifications(db)) == 1


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "accepted", "declined", "cancelled"])
async def test_only_a_completed_booking_can_be_reviewed(
    provider: Browser, client_browser: Browser, db: Database, state: str
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    moves = {"pending": [], "accepted": ["accept"], "declined": ["decline"]}
    for action in moves.get(state, []):
        assert await act(provider, booking_id, action) == 303
    if state == "cancelled":
        assert await act(client_browser, booking_id, "cancel") == 303
    assert f"/bookings/{booking_id}/review" not in await client_browser.page(
        f"/bookings/{booking_id}"
    )
    before = await last_notification_id(db)

    status, page = await post_review(client_browser, booking_id, "5", "Early")

    assert status == 409
    assert f"This booking is {state}. You can review it once Pat marks it as done." in page
    assert await review_rows(db) == []
    assert await last_notification_id(db) == before


async def test_the_provider_cannot_review_their_own_booking(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)

    status, page = await post_review(provider, booking_id, "5", "I was great")

    assert status == 403
    assert "Only the client who made the booking can review it." in page
    assert await review_rows(db) == []
    assert await review_notifications(db) == []


@pytest.mark.parametrize("rating", ["5", "banana"])
async def test_someone_elses_booking_does_not_exist_for_a_stranger(
    provider: Browser, client_browser: Browser, stranger: Browser, db: Database, rating: str
) -> None:
    booking_id = await completed_booking(provider, client_browser)

    status, page = await post_review(stranger, booking_id, rating, "Sneaky")

    assert status == 404
    assert "Sneaky" not in page and "House Cleaning" not in page
    assert await review_rows(db) == []
    assert await review_notifications(db) == []


@pytest.mark.parametrize(
    "rating",
    ["", "0", "6", "-1", "+5", "4.5", "five", "٤", "5 stars", "9" * 40, "05x"],
)
async def test_a_rating_outside_1_to_5_or_not_a_number_is_refused(
    provider: Browser, client_browser: Browser, db: Database, rating: str
) -> None:
    booking_id = await completed_booking(provider, client_browser)

    status, page = await post_review(client_browser, booking_id, rating, "Kept <b>text</b>")

    assert status == 400
    assert RATING_ERROR in page
    assert 'aria-invalid="true"' in page
    assert "Kept &lt;b&gt;text&lt;/b&gt;</textarea>" in page  # what they wrote stays, escaped
    assert await review_rows(db) == []
    assert await review_notifications(db) == []


async def test_a_missing_rating_field_is_refused(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    response = await client_browser.post(f"/bookings/{booking_id}/review", {"body": "Hi"})
    assert response.status == 400
    assert RATING_ERROR in await response.text()
    assert await review_rows(db) == []


async def test_the_body_is_at_most_2000_characters(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    too_long = await completed_booking(provider, client_browser, service_id)
    just_right = await completed_booking(provider, client_browser, service_id)

    status, page = await post_review(client_browser, too_long, "3", "x" * 2001)
    assert status == 400
    assert "Your review must be at most 2000 characters." in page
    assert await review_rows(db) == []

    # 2000 characters once line breaks are one character each, as the browser counted them.
    body = ("y" * 9 + "\r\n") * 200
    assert (await post_review(client_browser, just_right, "3", body))[0] == 303
    [row] = await review_rows(db)
    assert len(row["body"]) == 1999  # the last line break trimmed
    assert row["booking_id"] == just_right


async def test_control_characters_are_refused(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    status, page = await post_review(client_browser, booking_id, "3", "bell\x07")
    assert status == 400
    assert "Your review contains characters we cannot store." in page
    assert await review_rows(db) == []


async def test_leave_review_refuses_bad_values_itself(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    """Code calling the domain function directly gets the same refusals as the form."""
    booking_id = await completed_booking(provider, client_browser)
    notifier = app_of(client_browser)[keys.NOTIFIER]
    assert client_browser.user_id is not None and provider.user_id is not None
    for rating, body in ((0, ""), (6, ""), (True, ""), (3, "z" * 2001)):
        with pytest.raises(BadRequest):
            await reviews.leave_review(
                db,
                notifier,
                client_id=client_browser.user_id,
                booking_id=booking_id,
                rating=rating,
                body=body,
            )
    with pytest.raises(Forbidden):
        await reviews.leave_review(
            db, notifier, client_id=provider.user_id, booking_id=booking_id, rating=5, body=""
        )
    with pytest.raises(NotFound):
        await reviews.leave_review(
            db, notifier, client_id=client_browser.user_id, booking_id=10**9, rating=5, body=""
        )
    assert await review_rows(db) == []
    assert await review_notifications(db) == []


async def test_a_review_without_a_csrf_token_is_refused(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await completed_booking(provider, client_browser)
    response = await client_browser.post(
        f"/bookings/{booking_id}/review", {"rating": "5", "body": "Hi"}, csrf=False
    )
    assert response.status == 403
    assert "This form has expired or did not come from this site." in await response.text()
    assert await review_rows(db) == []
    assert await review_notifications(db) == []


# --- showing reviews --------------------------------------------------------------------------


async def test_the_service_page_shows_the_average_the_count_and_the_reviews_newest_first(
    provider: Browser,
    client_browser: Browser,
    stranger: Browser,
    new_browser: BrowserFactory,
    db: Database,
) -> None:
    service_id = await create_service(provider)
    other_service = await create_service(provider, name="Window Washing")
    empty = await client_browser.page(f"/services/{service_id}")
    assert "No reviews yet." in empty
    assert 'class="rating"' not in empty

    for browser, rating, body in (
        (client_browser, "5", "First"),
        (stranger, "4", "Second"),
        (client_browser, "4", "Third"),
        (stranger, "4", "Fourth"),
    ):
        booking_id = await completed_booking(provider, browser, service_id)
        assert (await post_review(browser, booking_id, rating, body))[0] == 303
    elsewhere = await completed_booking(provider, client_browser, other_service)
    assert (await post_review(client_browser, elsewhere, "1", "Other service"))[0] == 303

    # 17 / 4 = 4.25, shown rounded half up.
    summary = await reviews.service_summary(db, service_id)
    assert (summary.count, summary.average_text) == (4, "4.3")
    assert summary.label == "Rated 4.3 out of 5 from 4 reviews"
    assert provider.user_id is not None
    overall = await reviews.provider_summary(db, provider.user_id)
    assert (overall.count, overall.average_text) == (5, "3.6")
    assert [r.body for r in await reviews.for_service(db, service_id)] == [
        "Fourth",
        "Third",
        "Second",
        "First",
    ]
    third = (await reviews.for_service(db, service_id))[1]
    older = await reviews.for_service(db, service_id, limit=2, before=third.id)
    assert [r.body for r in older] == ["Second", "First"]
    assert [r.body for r in await reviews.for_provider(db, provider.user_id, limit=2)] == [
        "Other service",
        "Fourth",
    ]

    page = await (await new_browser()).page(f"/services/{service_id}")  # signed out
    # The heading's rating and the reviews section's agree (one rounding everywhere).
    averages = re.findall(r'aria-label="(Rated [\d.]+ out of 5 from \d+ reviews?)"', page)
    assert averages and set(averages) == {"Rated 4.3 out of 5 from 4 reviews"}
    assert "★ 4.3" in page and "(4)" in page
    bodies = re.findall(r'<p class="review-body">([^<]*)</p>', page)
    assert bodies == ["Fourth", "Third", "Second", "First"]
    assert "Other service" not in page
    assert "<strong>Casey</strong>" in page and "<strong>Sam</strong>" in page
    section = page.split('id="reviews"', 1)[1].split("</section>", 1)[0]
    assert "Casey Client" not in section and "Sam Stranger" not in section  # first names only


async def test_a_review_body_is_shown_escaped_with_its_line_breaks(
    provider: Browser, client_browser: Browser
) -> None:
    service_id = await create_service(provider)
    booking_id = await completed_booking(provider, client_browser, service_id)
    body = f'{XSS}\n<img src=x onerror="alert(2)">\nThanks & bye'
    assert (await post_review(client_browser, booking_id, "2", body))[0] == 303

    for page in (
        await client_browser.page(f"/services/{service_id}"),
        await provider.page(f"/bookings/{booking_id}"),
    ):
        assert XSS not in page and "<img src=x" not in page
        assert (
            '<p class="review-body">&lt;script&gt;alert(1)&lt;/script&gt;\n'
            "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;\nThanks &amp; bye</p>"
        ) in page


async def test_older_reviews_are_a_link_away(
    provider: Browser, client_browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reviews, "PAGE_SIZE", 2)
    service_id = await create_service(provider)
    for body in ("One", "Two", "Three"):
        booking_id = await completed_booking(provider, client_browser, service_id)
        assert (await post_review(client_browser, booking_id, "5", body))[0] == 303

    newest = await client_browser.page(f"/services/{service_id}")
    assert re.findall(r'<p class="review-body">(\w+)</p>', newest) == ["Three", "Two"]
    match = re.search(r'href="\?reviews_before=(\d+)#reviews">Older reviews</a>', newest)
    assert match is not None
    older = await client_browser.page(f"/services/{service_id}?reviews_before={match.group(1)}")
    assert re.findall(r'<p class="review-body">(\w+)</p>', older) == ["One"]
    assert "Older reviews" not in older and "Newest reviews" in older
    # A mangled link shows the newest ones.
    junk = await client_browser.page(f"/services/{service_id}?reviews_before=x%00")
    assert re.findall(r'<p class="review-body">(\w+)</p>', junk) == ["Three", "Two"]


async def test_the_provider_profile_shows_every_review_with_its_service_and_the_average(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory
) -> None:
    cleaning = await create_service(provider)
    windows = await create_service(provider, name="Window Washing")
    for service_id, rating, body in ((cleaning, "5", "Sparkling"), (windows, "2", "Streaky")):
        booking_id = await completed_booking(provider, client_browser, service_id)
        assert (await post_review(client_browser, booking_id, rating, body))[0] == 303

    page = await (await new_browser()).page(f"/providers/{provider.user_id}")

    assert 'aria-label="Rated 3.5 out of 5 from 2 reviews"' in page
    section = page.split('id="reviews"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'<p class="review-body">(\w+)</p>', section) == ["Streaky", "Sparkling"]
    assert f'on <a href="/services/{windows}">Window Washing</a>' in section
    assert f'on <a href="/services/{cleaning}">House Cleaning</a>' in section
