"""Services: a provider offers, edits, unpublishes and republishes them; everyone else browses
and searches the published ones. Every check looks at the page a person sees and the row stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import escape

from app.db import Database
from tests.conftest import Browser, BrowserFactory
from tests.flows import book, create_service, future_slot

XSS = "<script>alert(1)</script>"
SQLISH = 'O\'Brien "x" ; DROP TABLE services; --'


def form(**overrides: str) -> dict[str, str]:
    values = {
        "name": "Window Washing",
        "description": "Inside and out.",
        "price": "80.50",
        "duration_minutes": "90",
        "city": "Springfield",
    }
    values.update(overrides)
    return values


async def service_row(db: Database, service_id: int) -> dict[str, Any]:
    row = await db.fetch_one("SELECT * FROM services WHERE id = ?", (service_id,))
    assert row is not None
    return dict(row)


async def service_count(db: Database) -> int:
    return int(await db.fetch_value("SELECT count(*) FROM services"))


async def test_a_provider_creates_a_service_that_everyone_can_see(
    provider: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    response = await provider.post("/services/new", form())

    assert response.status == 303
    service_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert response.headers["Location"] == f"/services/{service_id}"
    row = await service_row(db, service_id)
    assert row["provider_id"] == provider.user_id
    assert (row["name"], row["description"]) == ("Window Washing", "Inside and out.")
    assert (row["price_cents"], row["duration_minutes"], row["published"]) == (8050, 90, 1)

    anonymous = await new_browser()
    detail = await anonymous.page(f"/services/{service_id}")
    assert "<h1>Window Washing</h1>" in detail
    assert "80.50 USD" in detail and "90 minutes" in detail and "by Pat Provider" in detail
    listing = await anonymous.page("/services")
    assert f'data-service-id="{service_id}"' in listing
    mine = await provider.page("/my/services")
    assert f'data-service-id="{service_id}"' in mine and "Unpublish" in mine


async def test_a_visitor_who_is_not_signed_in_cannot_create_a_service(
    new_browser: BrowserFactory, db: Database
) -> None:
    anonymous = await new_browser()

    response = await anonymous.post("/services/new", form())

    assert response.status == 303
    assert response.headers["Location"].startswith("/login")
    assert await service_count(db) == 0


async def test_the_owner_edits_a_service_and_the_new_details_show(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    edit_form = await provider.page(f"/services/{service_id}/edit")
    assert 'value="House Cleaning"' in edit_form and 'value="150.00"' in edit_form

    response = await provider.post(
        f"/services/{service_id}/edit",
        form(
            name="Deep Cleaning", description="Every corner.", price="175", duration_minutes="180"
        ),
    )

    assert response.status == 303
    assert response.headers["Location"] == f"/services/{service_id}"
    row = await service_row(db, service_id)
    assert (row["name"], row["description"]) == ("Deep Cleaning", "Every corner.")
    assert (row["price_cents"], row["duration_minutes"]) == (17500, 180)
    detail = await client_browser.page(f"/services/{service_id}")
    assert "<h1>Deep Cleaning</h1>" in detail and "175.00 USD" in detail
    assert "House Cleaning" not in detail


async def test_a_booking_keeps_the_name_and_price_it_was_made_at_after_the_service_is_edited(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    booking_id = await book(client_browser, service_id)

    response = await provider.post(
        f"/services/{service_id}/edit", form(name="Pricier Cleaning", price="300")
    )

    assert response.status == 303
    row = await db.fetch_one(
        "SELECT service_name, price_cents FROM bookings WHERE id = ?", (booking_id,)
    )
    assert row is not None and tuple(row) == ("House Cleaning", 15000)
    page = await client_browser.page(f"/bookings/{booking_id}")
    assert "House Cleaning" in page and "150.00 USD" in page


async def test_an_unpublished_service_vanishes_for_others_but_its_owner_still_sees_it(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    service_id = await create_service(provider)

    response = await provider.post(f"/services/{service_id}/unpublish")

    assert response.status == 303
    assert response.headers["Location"] == "/my/services"
    assert (await service_row(db, service_id))["published"] == 0
    assert f'data-service-id="{service_id}"' not in await client_browser.page("/services")
    assert "House Cleaning" not in await client_browser.page("/services?q=cleaning")
    assert (await client_browser.get(f"/services/{service_id}")).status == 404
    anonymous = await new_browser()
    assert (await anonymous.get(f"/services/{service_id}")).status == 404

    own_detail = await provider.page(f"/services/{service_id}")
    assert "<h1>House Cleaning</h1>" in own_detail and "Unpublished" in own_detail
    mine = await provider.page("/my/services")
    assert f'data-service-id="{service_id}"' in mine and "Publish again" in mine


async def test_an_unpublished_service_cannot_be_booked(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    assert (await provider.post(f"/services/{service_id}/unpublish")).status == 303

    response = await client_browser.post(
        f"/services/{service_id}/book", {"scheduled_at": future_slot(), "note": ""}
    )

    assert response.status == 404
    assert await db.fetch_value("SELECT count(*) FROM bookings") == 0
    assert await db.fetch_value("SELECT count(*) FROM notifications") == 0


async def test_publishing_again_brings_the_service_back_for_everyone(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    assert (await provider.post(f"/services/{service_id}/unpublish")).status == 303

    response = await provider.post(f"/services/{service_id}/publish")

    assert response.status == 303
    assert response.headers["Location"] == "/my/services"
    assert (await service_row(db, service_id))["published"] == 1
    assert f'data-service-id="{service_id}"' in await client_browser.page("/services")
    assert "<h1>House Cleaning</h1>" in await client_browser.page(f"/services/{service_id}")
    assert "Unpublish" in await provider.page("/my/services")


async def test_search_finds_services_by_name_and_by_description(
    provider: Browser, client_browser: Browser
) -> None:
    cleaning = await create_service(provider, name="House Cleaning")
    tutoring = await create_service(provider, name="Maths Tutoring")
    await provider.post(
        f"/services/{tutoring}/edit",
        form(name="Maths Tutoring", description="Algebra and geometry for teenagers."),
    )

    by_name = await client_browser.page("/services?q=cleaning")
    by_description = await client_browser.page("/services?q=GEOMETRY")
    nothing = await client_browser.page("/services?q=plumbing")

    assert f'data-service-id="{cleaning}"' in by_name
    assert f'data-service-id="{tutoring}"' not in by_name
    assert "1 result for" in by_name
    assert f'data-service-id="{tutoring}"' in by_description
    assert f'data-service-id="{cleaning}"' not in by_description
    assert "No services match your search." in nothing
    assert "data-service-id" not in nothing


@pytest.mark.parametrize(
    ("query", "expected", "decoy"),
    [
        ("%", "100% Organic", "1000 Organic"),
        ("100%", "100% Organic", "1000 Organic"),
        ("_", "snow_plow", "snowXplow"),
        ("w_p", "snow_plow", "snowXplow"),
        ("\\", "back\\slash", "backslash"),
    ],
)
async def test_search_matches_like_wildcards_literally(
    provider: Browser, client_browser: Browser, query: str, expected: str, decoy: str
) -> None:
    wanted = await create_service(provider, name=expected)
    unwanted = await create_service(provider, name=decoy)

    response = await client_browser.get("/services", params={"q": query})
    page = await response.text()

    assert response.status == 200
    assert f'data-service-id="{wanted}"' in page
    assert f'data-service-id="{unwanted}"' not in page
    assert "1 result for" in page


async def test_quotes_and_sql_in_a_service_are_stored_shown_and_searched_verbatim(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    service_id = await create_service(provider, name=SQLISH)

    row = await service_row(db, service_id)
    assert row["name"] == SQLISH
    assert await db.fetch_value("SELECT count(*) FROM services") == 1
    detail = await client_browser.page(f"/services/{service_id}")
    assert f"<h1>{escape(SQLISH)}</h1>" in detail
    assert "O&#39;Brien &#34;x&#34;" in detail

    response = await client_browser.get("/services", params={"q": 'O\'Brien "x" ;'})
    found = await response.text()
    assert f'data-service-id="{service_id}"' in found
    # The query is echoed back in the search box and summary, escaped.
    assert 'value="O&#39;Brien &#34;x&#34; ;"' in found
    missing = await client_browser.get("/services", params={"q": "' OR '1'='1"})
    assert "No services match your search." in await missing.text()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Name is required."),
        ("name", "x" * 121, "Name must be at most 120 characters."),
        ("price", "", "Enter an amount."),
        ("price", "-5", "The amount must be more than zero."),
        ("price", "0", "The amount must be more than zero."),
        ("price", "0.00", "The amount must be more than zero."),
        ("price", "NaN", "Enter an amount like 150 or 150.00."),
        ("price", "Infinity", "Enter an amount like 150 or 150.00."),
        ("price", "1e3", "Enter an amount like 150 or 150.00."),
        ("price", "12.345", "Use at most two decimal places."),
        ("price", "abc", "Enter an amount like 150 or 150.00."),
        ("price", "99999999999", "Enter an amount like 150 or 150.00."),
        ("price", "999999999", "The amount must be at most 1000000.00."),
        ("duration_minutes", "0", "Enter the duration in minutes, from 5 to 1440."),
        ("duration_minutes", "abc", "Enter the duration in minutes, from 5 to 1440."),
        ("duration_minutes", "1441", "Enter the duration in minutes, from 5 to 1440."),
    ],
)
async def test_a_new_service_with_bad_input_is_refused_with_the_error_next_to_the_field(
    provider: Browser, db: Database, field: str, value: str, message: str
) -> None:
    submitted = form(**{field: value})

    response = await provider.post("/services/new", submitted)
    page = await response.text()

    assert response.status == 400
    assert f'<p class="error" id="e-{field}">{message}</p>' in page
    assert f'aria-describedby="e-{field}"' in page
    # What the person typed is kept, in every field.
    for name in ("name", "price", "duration_minutes"):
        assert f'name="{name}" type="' in page
        assert f'value="{escape(submitted[name])}"' in page, name
    assert ">Inside and out.</textarea>" in page
    assert await service_count(db) == 0


async def test_an_edit_with_bad_input_is_refused_and_the_service_is_unchanged(
    provider: Browser, db: Database
) -> None:
    service_id = await create_service(provider)
    before = await service_row(db, service_id)

    response = await provider.post(
        f"/services/{service_id}/edit", form(name="", price="12.345", duration_minutes="0")
    )
    page = await response.text()

    assert response.status == 400
    assert '<p class="error" id="e-name">Name is required.</p>' in page
    assert '<p class="error" id="e-price">Use at most two decimal places.</p>' in page
    assert 'id="e-duration_minutes"' in page
    assert 'value="12.345"' in page
    assert await service_row(db, service_id) == before


async def test_another_user_cannot_edit_unpublish_or_publish_someone_elses_service(
    provider: Browser, stranger: Browser, db: Database
) -> None:
    published = await create_service(provider, name="Published One")
    hidden = await create_service(provider, name="Hidden One")
    assert (await provider.post(f"/services/{hidden}/unpublish")).status == 303
    before = [await service_row(db, published), await service_row(db, hidden)]

    edit_form = await stranger.get(f"/services/{published}/edit")
    edit = await stranger.post(f"/services/{published}/edit", form(name="Hijacked"))
    unpublish = await stranger.post(f"/services/{published}/unpublish")
    publish = await stranger.post(f"/services/{hidden}/publish")
    edit_hidden = await stranger.post(f"/services/{hidden}/edit", form(name="Hijacked"))

    assert [r.status for r in (edit_form, edit, unpublish, publish, edit_hidden)] == [404] * 5
    assert [await service_row(db, published), await service_row(db, hidden)] == before
    assert "Hijacked" not in await stranger.page("/services")
    assert "Published One" not in await stranger.page("/my/services")


async def test_a_script_in_a_service_name_and_description_is_shown_as_text_everywhere(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    response = await provider.post(
        "/services/new", form(name=f"Clean {XSS}", description=f"Desc {XSS}")
    )
    assert response.status == 303
    service_id = int(response.headers["Location"].rsplit("/", 1)[1])
    row = await service_row(db, service_id)
    assert (row["name"], row["description"]) == (f"Clean {XSS}", f"Desc {XSS}")

    pages = {
        "browse": await client_browser.page("/services"),
        "search": await client_browser.page("/services?q=alert"),
        "detail": await client_browser.page(f"/services/{service_id}"),
        "mine": await provider.page("/my/services"),
        "edit": await provider.page(f"/services/{service_id}/edit"),
    }
    for name, page in pages.items():
        assert XSS not in page, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, name
    assert "Desc &lt;script&gt;alert(1)&lt;/script&gt;" in pages["detail"]
    assert "Desc &lt;script&gt;alert(1)&lt;/script&gt;" in pages["browse"]
