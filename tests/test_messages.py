"""Messages in words: every booking and payment notification names the other person, the
service and the booking's date (or the amount); payment failures are sentences, not codes; a
failed payment page offers "Try another card" to the one who can use it; error pages lead back
to where the person was, and never to another site.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.db import Database
from app.marketplace.bookings import format_when
from app.marketplace.payments import DECLINED_CARDS, failure_text
from tests.conftest import Browser
from tests.flows import DECLINED_CARD, act, create_service, id_from_location, pay

EXPIRED_CARD = "4000 0000 0000 0069"


# --- The booking's date, as messages say it ------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "weekday", "today", "expected"),
    [
        ("2026-12-03T10:00", False, date(2026, 11, 25), "3 Dec, 10:00"),
        ("2026-12-03T10:00", True, date(2026, 11, 25), "Thu 3 Dec, 10:00"),
        ("2027-01-05T09:05", False, date(2026, 11, 25), "5 Jan 2027, 09:05"),
        ("2027-01-05T09:05", True, date(2026, 11, 25), "Tue 5 Jan 2027, 09:05"),
        # The wall-clock time where the service happens: shown as booked, never shifted.
        ("2026-12-31T23:30", False, date(2026, 12, 31), "31 Dec, 23:30"),
        ("not a date", False, date(2026, 11, 25), "not a date"),
    ],
)
def test_a_booking_time_is_shown_as_words_with_the_year_only_when_not_this_year(
    stored: str, weekday: bool, today: date, expected: str
) -> None:
    assert format_when(stored, weekday=weekday, today=today) == expected


def test_every_decline_of_the_simulator_has_a_sentence() -> None:
    assert failure_text("card_declined") == "The card was declined"
    assert failure_text("insufficient_funds") == "The card has insufficient funds"
    assert failure_text("expired_card") == "The card has expired"
    assert failure_text("processor unavailable") == "The payment service did not answer"
    assert failure_text("interrupted") == "The payment was interrupted before it finished"
    for code in DECLINED_CARDS.values():
        assert "_" not in failure_text(code) and failure_text(code)[0].isupper()
    # A code nobody mapped (an older or another processor's) still reads as a sentence.
    assert failure_text("do_not_honor") == "The payment was not accepted"
    assert failure_text(None) == "The payment was not accepted"


# --- Each event's message -------------------------------------------------------------------

# A month ahead (bookable); whether it falls in this year or the next decides the year part.
SLOT = datetime.now(UTC).date() + timedelta(days=30)


def slot_words(weekday: bool = False) -> str:
    """The slot as a person writes it, worked out here independently of the app."""
    months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    days = "Mon Tue Wed Thu Fri Sat Sun".split()
    text = f"{SLOT.day} {months[SLOT.month - 1]}"
    if SLOT.year != datetime.now(UTC).year:
        text += f" {SLOT.year}"
    if weekday:
        text = f"{days[SLOT.weekday()]} {text}"
    return f"{text}, 10:00"


async def book_slot(client: Browser, service_id: int) -> int:
    response = await client.post(
        f"/services/{service_id}/book", {"scheduled_at": f"{SLOT.isoformat()}T10:00"}
    )
    assert response.status == 303, await response.text()
    return id_from_location(response.headers["Location"])


async def messages_after(db: Database, mark: int) -> list[tuple[int, str, str]]:
    """(user, event, message) of each notification stored after `mark`."""
    rows = await db.fetch_all(
        "SELECT user_id, event, data FROM notifications WHERE id > ? ORDER BY id", (mark,)
    )
    return [(r["user_id"], r["event"], json.loads(r["data"])["message"]) for r in rows]


async def last_id(db: Database) -> int:
    return int(await db.fetch_value("SELECT coalesce(max(id), 0) FROM notifications"))


async def test_booking_messages_name_the_person_the_service_and_the_date(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    pat, casey = provider.user_id, client_browser.user_id
    service_id = await create_service(provider)
    when, when_day = slot_words(), slot_words(weekday=True)

    first = await book_slot(client_browser, service_id)
    assert await act(provider, first, "accept") == 303
    assert await act(provider, first, "complete") == 303
    second = await book_slot(client_browser, service_id)
    assert await act(provider, second, "decline") == 303
    third = await book_slot(client_browser, service_id)
    assert await act(client_browser, third, "cancel") == 303
    fourth = await book_slot(client_browser, service_id)
    assert await act(provider, fourth, "cancel") == 303

    booked = (pat, "new_booking", f"Casey Client booked House Cleaning for {when_day}.")
    yours, theirs = "your booking of House Cleaning", "their booking of House Cleaning"
    assert await messages_after(db, 0) == [
        booked,
        (casey, "booking_accepted", f"Pat Provider accepted {yours} on {when}."),
        (casey, "booking_completed", f"Pat Provider marked {yours} on {when} as done."),
        booked,
        (casey, "booking_declined", f"Pat Provider declined {yours} on {when}."),
        booked,
        (pat, "booking_cancelled", f"Casey Client cancelled {theirs} on {when}."),
        booked,
        (casey, "booking_cancelled", f"Pat Provider cancelled {yours} on {when}."),
    ]
    # The booking page shows the same date, in the same words.
    assert when_day in await client_browser.page(f"/bookings/{first}")


async def test_payment_messages_name_the_amount_the_service_and_why_it_failed(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    pat, casey, when = provider.user_id, client_browser.user_id, slot_words()
    booking_id = await book_slot(client_browser, await create_service(provider))
    assert await act(provider, booking_id, "accept") == 303
    mark = await last_id(db)

    assert (await pay(client_browser, booking_id, card=DECLINED_CARD))[0] == 303
    assert (await pay(client_browser, booking_id, card=EXPIRED_CARD))[0] == 303
    status, location = await pay(client_browser, booking_id)
    assert status == 303
    assert (await provider.post(f"{location}/refund")).status == 303

    failed = "Your payment for House Cleaning did not go through"
    not_charged = "You have not been charged."
    assert await messages_after(db, mark) == [
        (casey, "payment_failed", f"{failed}: the card was declined. {not_charged}"),
        (casey, "payment_failed", f"{failed}: the card has expired. {not_charged}"),
        (pat, "payment_received", f"Casey Client paid 150.00 USD for House Cleaning on {when}."),
        (casey, "payment_confirmed", "Your payment of 150.00 USD for House Cleaning went through."),
        (casey, "payment_refunded", "Pat Provider refunded 150.00 USD for House Cleaning."),
    ]


# --- The payment pages ----------------------------------------------------------------------


def try_another_card(page: str) -> list[str]:
    """The hrefs of the page's "Try another card" links."""
    return re.findall(r'<a class="button primary" href="([^"]+)">Try another card</a>', page)


async def test_a_failed_payment_page_says_why_and_offers_the_client_another_card(
    provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book_slot(client_browser, await create_service(provider))
    assert await act(provider, booking_id, "accept") == 303
    status, failed = await pay(client_browser, booking_id, card=DECLINED_CARD)
    assert status == 303

    page = await client_browser.page(failed)
    assert "The card was declined." in page and "card_declined" not in page
    assert "you have not been charged" in page
    assert 'class="pill pill-failed" data-status>Failed</span>' in page
    assert try_another_card(page) == [f"/bookings/{booking_id}/pay"]
    # The provider sees why, but it is not theirs to retry.
    provider_page = await provider.page(failed)
    assert "The card was declined." in provider_page and try_another_card(provider_page) == []

    # The link leads to the form, which says what went wrong last time.
    form = await client_browser.page(f"/bookings/{booking_id}/pay")
    assert "did not go through: the card was declined" in form
    assert "card ending 0002" in form

    status, paid = await pay(client_browser, booking_id)
    assert status == 303
    paid_page = await client_browser.page(paid)
    assert "Your payment of 150.00 USD went through." in paid_page
    assert 'class="pill pill-succeeded" data-status>Succeeded</span>' in paid_page
    assert try_another_card(paid_page) == []
    # Once paid, the old failure offers no retry either.
    assert try_another_card(await client_browser.page(failed)) == []
    assert "Casey Client paid you 150.00 USD." in await provider.page(paid)
    # The form itself is closed now.
    assert (await client_browser.get(f"/bookings/{booking_id}/pay")).status == 409

    assert (await provider.post(f"{paid}/refund")).status == 303
    refunded = await client_browser.page(paid)
    assert "Pat Provider refunded 150.00 USD to your card ending 4242." in refunded
    assert 'class="pill pill-refunded" data-status>Refunded</span>' in refunded
    assert "You refunded 150.00 USD to Casey Client." in await provider.page(paid)


async def test_a_failed_payment_of_a_booking_cancelled_since_offers_no_retry(
    provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book_slot(client_browser, await create_service(provider))
    assert await act(provider, booking_id, "accept") == 303
    status, failed = await pay(client_browser, booking_id, card=DECLINED_CARD)
    assert status == 303
    assert await act(client_browser, booking_id, "cancel") == 303

    page = await client_browser.page(failed)
    assert "The card was declined." in page and try_another_card(page) == []


async def test_the_pay_form_lists_the_test_cards_in_words(
    provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book_slot(client_browser, await create_service(provider))
    assert await act(provider, booking_id, "accept") == 303

    form = await client_browser.page(f"/bookings/{booking_id}/pay")

    assert "<code>4000000000000002</code>: fails (the card was declined)" in form
    assert "<code>4000000000009995</code>: fails (the card has insufficient funds)" in form
    assert "insufficient_funds" not in form and "did not go through" not in form
    assert slot_words(weekday=True) in form


# --- Error pages ----------------------------------------------------------------------------


_LINK = re.compile(r'<a [^>]*href="([^"]*)"[^>]*>([^<]+)</a>')


def links(page: str) -> dict[str, str]:
    """The error page's links: label -> href."""
    section = page.split('<section class="error-page', 1)[1].split("</section>", 1)[0]
    return {label: href for href, label in _LINK.findall(section)}


async def error_page(
    browser: Browser, method: str, path: str, referer: str | None, status: int
) -> dict[str, str]:
    headers = {"Referer": referer} if referer is not None else {}
    if method == "GET":
        response = await browser.get(path, headers=headers)
    else:
        response = await browser.post(path, headers=headers)
    page = await response.text()
    assert response.status == status, page[:300]
    assert "Traceback" not in page
    return links(page)


async def test_a_refused_action_leads_back_to_the_page_it_came_from(
    provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book_slot(client_browser, await create_service(provider))
    assert await act(client_browser, booking_id, "cancel") == 303
    came_from = str(provider.client.make_url(f"/bookings/{booking_id}?tab=1"))

    found = await error_page(provider, "POST", f"/bookings/{booking_id}/accept", came_from, 409)

    assert found == {"Go back": f"/bookings/{booking_id}?tab=1"}


@pytest.mark.parametrize(
    "referer",
    [
        "https://evil.example/x",
        "http://evil.example/bookings",
        "//evil.example/x",
        "/bookings",  # not a URL a browser sends; ignored rather than guessed at
        "javascript:alert(1)",
        "http://[broken",
        "",
        None,
    ],
)
async def test_an_error_page_ignores_a_referer_from_elsewhere(
    client_browser: Browser, referer: str | None
) -> None:
    found = await error_page(client_browser, "GET", "/no/such/page", referer, 404)

    assert found == {"Back to the services": "/services"}


async def test_an_error_page_refuses_a_same_origin_referer_that_a_browser_reads_as_another_site(
    client_browser: Browser,
) -> None:
    # http://this-site//evil.example/x: its path would be a link to evil.example.
    referer = str(client_browser.client.make_url("/")) + "/evil.example/x"

    found = await error_page(client_browser, "GET", "/no/such/page", referer, 404)

    assert found == {"Back to the services": "/services"}


async def test_an_unknown_address_is_explained_in_words(client_browser: Browser) -> None:
    response = await client_browser.get("/no/such/page")
    page = await response.text()

    assert response.status == 404
    assert "<h1>Not found</h1>" in page
    assert "There is no page at this address. The link may be mistyped or out of date." in page


async def test_an_error_page_reloaded_does_not_lead_back_to_itself(
    client_browser: Browser,
) -> None:
    itself = str(client_browser.client.make_url("/no/such/page"))

    found = await error_page(client_browser, "GET", "/no/such/page", itself, 404)

    assert found == {"Back to the services": "/services"}


async def test_an_unknown_booking_or_payment_also_leads_to_the_bookings(
    client_browser: Browser, new_browser: Any
) -> None:
    came_from = str(client_browser.client.make_url("/services"))

    for path in ("/bookings/987654", "/payments/987654"):
        found = await error_page(client_browser, "GET", path, came_from, 404)
        assert found == {"Go back": "/services", "Your bookings": "/bookings"}
    # Signed out, there is no list of theirs to offer.
    anonymous = await new_browser()
    assert await error_page(anonymous, "GET", "/no/such/page", None, 404) == {
        "Back to the services": "/services"
    }


async def test_api_errors_stay_json(client_browser: Browser) -> None:
    came_from = str(client_browser.client.make_url("/services"))

    response = await client_browser.get("/api/no-such-thing", headers={"Referer": came_from})

    assert response.status == 404
    assert response.content_type == "application/json"
    assert set(await response.json()) == {"error"}
