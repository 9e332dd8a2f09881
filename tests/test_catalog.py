"""The catalogue: categories and places on the service form, pictures (checked by their bytes,
stored beside the database, served with safe headers, a generated placeholder otherwise), the
search filters, the home page and the provider profile. Each check looks at what a person
gets (the page, the picture's response) and at what is stored (the row, the files on disk)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData

from app.config import Settings
from app.db import Database
from app.marketplace.forms import validate_service
from app.marketplace.images import MAX_IMAGE_BYTES, sniff
from app.rendering import initials_filter, month_filter
from tests.conftest import Browser, BrowserFactory
from tests.images import png

XSS = "<script>alert(1)</script>"


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


def service_form(**overrides: str) -> dict[str, str]:
    values = {
        "name": "Window Washing",
        "description": "Inside and out.",
        "price": "80.50",
        "duration_minutes": "90",
        "category": "cleaning",
        "city": "Springfield",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


async def post_multipart(
    browser: Browser,
    path: str,
    fields: dict[str, str],
    image: tuple[bytes, str, str] | None = None,
    *,
    csrf: bool = True,
) -> ClientResponse:
    """A multipart form as the browser sends it; `image` is (content, filename, content type)."""
    form = FormData(default_to_multipart=True)
    if csrf:
        form.add_field("csrf_token", await browser.csrf())
    for name, value in fields.items():
        form.add_field(name, value)
    if image is not None:
        content, filename, content_type = image
        # A file object: aiohttp refuses to send bytes over 1 MiB as one part.
        form.add_field("image", io.BytesIO(content), filename=filename, content_type=content_type)
    return await browser.client.post(path, data=form, allow_redirects=False)


def stored_files(settings: Settings) -> list[Path]:
    folder = settings.uploads_dir / "services"
    return sorted(folder.iterdir()) if folder.exists() else []


async def row_of(db: Database, service_id: int) -> dict[str, Any]:
    row = await db.fetch_one("SELECT * FROM services WHERE id = ?", (service_id,))
    assert row is not None
    return dict(row)


async def count(db: Database) -> int:
    return int(await db.fetch_value("SELECT count(*) FROM services"))


def id_from(response: ClientResponse) -> int:
    assert response.status == 303, response.status
    return int(response.headers["Location"].rsplit("/", 1)[1])


async def create(
    browser: Browser, image: tuple[bytes, str, str] | None = None, **fields: str
) -> int:
    response = await post_multipart(browser, "/services/new", service_form(**fields), image)
    if response.status != 303:
        raise AssertionError((response.status, (await response.text())[:800]))
    return id_from(response)


# --- The form: category and place -----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"city": "", "online": ""}, "city", "Enter the city where you offer this service"),
        ({"city": "Leeds", "online": "1"}, "city", "Choose Online or enter a city, not both."),
        ({"city": "x" * 81}, "city", "City must be at most 80 characters."),
        ({"city": "Le\x00eds"}, "city", "City contains characters we cannot store."),
        ({"category": "weapons"}, "category", "Choose a category from the list."),
    ],
)
def test_the_service_form_needs_a_listed_category_and_a_city_or_online(
    overrides: dict[str, str], field: str, message: str
) -> None:
    data, errors = validate_service(service_form(**overrides))

    assert data is None
    assert errors[field].startswith(message), errors


def test_a_valid_place_is_a_city_or_online_and_the_category_defaults_to_other() -> None:
    data, errors = validate_service(service_form(city="  Leeds ", category="tutoring"))
    assert errors == {}
    assert data is not None and (data.category, data.city, data.online) == (
        "tutoring",
        "Leeds",
        False,
    )

    data, errors = validate_service(service_form(city="", online="1", category=""))
    assert errors == {}
    assert data is not None and (data.category, data.city, data.online) == ("other", "", True)


def test_pictures_are_recognised_by_their_first_bytes_only() -> None:
    assert sniff(png()) == ("image/png", "png")
    assert sniff(JPEG) == ("image/jpeg", "jpg")
    assert sniff(GIF) == ("image/gif", "gif")
    assert sniff(WEBP) == ("image/webp", "webp")
    for other in (
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"<html>",
        b"%PDF-1.7",
        b"RIFF0000WAVE",
        b"",
    ):
        assert sniff(other) is None


def test_initials_and_member_since() -> None:
    assert initials_filter("Pat Provider") == "PP"
    assert initials_filter("Cher") == "C"
    assert initials_filter("  ana  maría  de la cruz ") == "AC"
    assert initials_filter("(Bo) !") == "B"
    assert initials_filter("") == "?"
    assert month_filter("2026-12-03T10:00:00Z") == "Dec 2026"


async def test_a_service_is_created_with_its_category_and_place_and_shows_them(
    provider: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    service_id = await create(provider, category="tutoring", city="Leeds")
    online_id = await create(
        provider, name="Maths online", category="tutoring", city="", online="1"
    )

    assert {k: (await row_of(db, service_id))[k] for k in ("category", "city", "online")} == {
        "category": "tutoring",
        "city": "Leeds",
        "online": 0,
    }
    assert (await row_of(db, online_id))["online"] == 1
    anonymous = await new_browser()
    detail = await anonymous.page(f"/services/{service_id}")
    assert '<span class="tag">Leeds</span>' in detail and ">Tutoring</a>" in detail
    assert '<span class="tag">Online</span>' in await anonymous.page(f"/services/{online_id}")


async def test_a_form_error_on_the_place_keeps_what_was_typed_and_stores_nothing(
    provider: Browser, db: Database, settings: Settings
) -> None:
    response = await post_multipart(
        provider,
        "/services/new",
        service_form(city="", name="Kept name"),
        (png(), "a.png", "image/png"),
    )
    page = await response.text()

    assert response.status == 400
    assert 'id="e-city"' in page and "or tick Online" in page
    assert 'value="Kept name"' in page
    assert await count(db) == 0
    assert stored_files(settings) == []


async def test_the_edit_form_shows_the_stored_category_and_place(provider: Browser) -> None:
    service_id = await create(provider, category="pets", city="", online="1")

    page = await provider.page(f"/services/{service_id}/edit")

    assert 'enctype="multipart/form-data"' in page
    assert '<option value="pets" selected>' in page
    assert re.search(r'id="f-online" name="online" type="checkbox" value="1" checked', page)


# --- Pictures -------------------------------------------------------------------------------


async def test_a_picture_is_accepted_by_its_bytes_and_stored_beside_the_database(
    provider: Browser, db: Database, settings: Settings
) -> None:
    content = png()
    # The name and the type the browser claims are ignored: the bytes decide.
    service_id = await create(provider, (content, "holiday.txt", "text/plain"))

    row = await row_of(db, service_id)
    assert row["image_type"] == "image/png"
    assert re.fullmatch(r"services/[A-Za-z0-9_-]+\.png", row["image_file"])
    [stored] = stored_files(settings)
    assert stored == settings.uploads_dir / row["image_file"]
    assert stored.read_bytes() == content
    assert settings.uploads_dir.parent == settings.db_path.parent

    response = await provider.get(f"/services/{service_id}/image")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert await response.read() == content


@pytest.mark.parametrize(
    ("content", "media_type"),
    [(JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
async def test_jpeg_gif_and_webp_pictures_are_accepted(
    provider: Browser, db: Database, content: bytes, media_type: str
) -> None:
    service_id = await create(provider, (content, "photo.png", "image/png"))

    assert (await row_of(db, service_id))["image_type"] == media_type


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "a.svg",
            "image/svg+xml",
        ),
        (b"<html><script>alert(1)</script></html>", "photo.png", "image/png"),
        (b"%PDF-1.7 not a picture", "photo.jpg", "image/jpeg"),
        (b"x", "photo.gif", "image/gif"),
    ],
)
async def test_a_file_that_is_not_a_picture_is_refused_and_nothing_is_stored(
    provider: Browser,
    db: Database,
    settings: Settings,
    content: bytes,
    filename: str,
    content_type: str,
) -> None:
    response = await post_multipart(
        provider, "/services/new", service_form(), (content, filename, content_type)
    )
    page = await response.text()

    assert response.status == 400
    assert "The picture must be a JPEG, PNG, WebP or GIF image." in page
    assert 'id="e-image"' in page
    assert await count(db) == 0
    assert stored_files(settings) == []


async def test_a_picture_over_2_mb_is_a_form_error_and_nothing_is_stored(
    provider: Browser, db: Database, settings: Settings
) -> None:
    too_big = png() + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(png()))
    assert len(too_big) == MAX_IMAGE_BYTES + 1

    response = await post_multipart(
        provider, "/services/new", service_form(), (too_big, "a.png", "image/png")
    )

    assert response.status == 400
    assert "The picture must be at most 2 MB." in await response.text()
    assert await count(db) == 0
    assert stored_files(settings) == []


async def test_a_picture_of_exactly_2_mb_is_accepted(
    provider: Browser, db: Database, settings: Settings
) -> None:
    exactly = png() + b"\x00" * (MAX_IMAGE_BYTES - len(png()))

    service_id = await create(provider, (exactly, "a.png", "image/png"))

    assert (await row_of(db, service_id))["image_type"] == "image/png"
    assert [path.stat().st_size for path in stored_files(settings)] == [MAX_IMAGE_BYTES]


async def test_a_huge_upload_is_stopped_with_a_clear_message_and_nothing_is_stored(
    provider: Browser, db: Database, settings: Settings
) -> None:
    huge = png() + b"\x00" * (5 * 1024 * 1024)

    response = await post_multipart(
        provider, "/services/new", service_form(), (huge, "a.png", "image/png")
    )

    assert response.status == 413
    assert "pictures may be at most 2 MB" in await response.text()
    assert await count(db) == 0
    assert stored_files(settings) == []


async def test_other_forms_keep_the_small_body_limit(provider: Browser, db: Database) -> None:
    service_id = await create(provider)
    response = await provider.post(
        f"/services/{service_id}/book", {"scheduled_at": "2030-01-01T10:00", "note": "x" * 400_000}
    )

    assert response.status == 413
    assert await db.fetch_value("SELECT count(*) FROM bookings") == 0


async def test_a_multipart_form_without_its_csrf_token_is_refused(
    provider: Browser, db: Database, settings: Settings
) -> None:
    response = await post_multipart(
        provider, "/services/new", service_form(), (png(), "a.png", "image/png"), csrf=False
    )

    assert response.status == 403
    assert await count(db) == 0
    assert stored_files(settings) == []


async def test_a_new_picture_replaces_the_old_file_and_removing_deletes_it(
    provider: Browser, db: Database, settings: Settings
) -> None:
    service_id = await create(provider, (png(), "a.png", "image/png"))
    first = (await row_of(db, service_id))["image_file"]
    first_page = await provider.page(f"/services/{service_id}")

    response = await post_multipart(
        provider,
        f"/services/{service_id}/edit",
        service_form(name="Renamed"),
        (GIF, "b.gif", "image/gif"),
    )
    assert response.status == 303
    row = await row_of(db, service_id)
    assert row["name"] == "Renamed" and row["image_type"] == "image/gif"
    assert row["image_file"] != first
    assert stored_files(settings) == [settings.uploads_dir / row["image_file"]]
    # The page links the new picture under a new address, so no cache shows the old one.
    version = re.compile(r"/services/\d+/image\?v=([A-Za-z0-9_-]+)")
    new_page = await provider.page(f"/services/{service_id}")
    assert version.findall(new_page) and version.findall(new_page) != version.findall(first_page)

    # Saving without choosing a file keeps the picture.
    response = await post_multipart(provider, f"/services/{service_id}/edit", service_form())
    assert response.status == 303
    assert (await row_of(db, service_id))["image_file"] == row["image_file"]

    response = await post_multipart(
        provider, f"/services/{service_id}/edit", service_form(remove_image="1")
    )
    assert response.status == 303
    row = await row_of(db, service_id)
    assert (row["image_file"], row["image_type"]) == (None, None)
    assert stored_files(settings) == []
    image = await provider.get(f"/services/{service_id}/image")
    assert image.headers["Content-Type"] == "image/svg+xml"


async def test_choosing_a_picture_and_remove_at_once_is_a_form_error(
    provider: Browser, db: Database, settings: Settings
) -> None:
    service_id = await create(provider, (png(), "a.png", "image/png"))
    before = await row_of(db, service_id)

    response = await post_multipart(
        provider,
        f"/services/{service_id}/edit",
        service_form(name="Changed", remove_image="1"),
        (GIF, "b.gif", "image/gif"),
    )

    assert response.status == 400
    assert "Choose a new picture or remove the current one, not both." in await response.text()
    assert await row_of(db, service_id) == before
    assert stored_files(settings) == [settings.uploads_dir / before["image_file"]]


async def test_another_user_cannot_change_or_remove_a_services_picture(
    provider: Browser, stranger: Browser, db: Database, settings: Settings
) -> None:
    service_id = await create(provider, (png(), "a.png", "image/png"))
    before = await row_of(db, service_id)

    replace = await post_multipart(
        stranger, f"/services/{service_id}/edit", service_form(), (GIF, "b.gif", "image/gif")
    )
    remove = await post_multipart(
        stranger, f"/services/{service_id}/edit", service_form(remove_image="1")
    )

    assert (replace.status, remove.status) == (404, 404)
    assert await row_of(db, service_id) == before
    assert stored_files(settings) == [settings.uploads_dir / before["image_file"]]


async def test_the_picture_is_served_with_safe_headers_and_revalidates_with_its_etag(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    service_id = await create(provider, (png(), "a.png", "image/png"))
    anonymous = await new_browser()

    response = await anonymous.get(f"/services/{service_id}/image")

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert re.fullmatch(r"public, max-age=\d+", response.headers["Cache-Control"])
    assert "Set-Cookie" not in response.headers
    etag = response.headers["ETag"]
    again = await anonymous.get(f"/services/{service_id}/image", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    other = await anonymous.get(f"/services/{service_id}/image", headers={"If-None-Match": '"x"'})
    assert other.status == 200
    # Signed in, the owner's browser may cache the published picture too.
    own = await provider.get(f"/services/{service_id}/image")
    assert own.headers["Cache-Control"].startswith("public, max-age=")


async def test_without_a_picture_a_placeholder_svg_from_the_category_is_served(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    cleaning = await create(provider, name=f"Spotless {XSS}", category="cleaning")
    tutoring = await create(provider, category="tutoring")
    anonymous = await new_browser()

    response = await anonymous.get(f"/services/{cleaning}/image")
    svg = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "ETag" in response.headers and "max-age=" in response.headers["Cache-Control"]
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert ">C</text>" in svg
    assert "<script" not in svg and "Spotless" not in svg  # no user text inside
    other = await (await anonymous.get(f"/services/{tutoring}/image")).text()
    assert ">T</text>" in other and other != svg  # another category, another colour


async def test_an_unpublished_services_picture_is_hidden_from_everyone_but_its_owner(
    provider: Browser, stranger: Browser, new_browser: BrowserFactory
) -> None:
    with_picture = await create(provider, (png(), "a.png", "image/png"))
    without = await create(provider)
    for service_id in (with_picture, without):
        assert (await provider.post(f"/services/{service_id}/unpublish")).status == 303
    anonymous = await new_browser()

    for service_id in (with_picture, without):
        assert (await anonymous.get(f"/services/{service_id}/image")).status == 404
        assert (await stranger.get(f"/services/{service_id}/image")).status == 404
        own = await provider.get(f"/services/{service_id}/image")
        assert own.status == 200
        # Never kept by a shared cache: it is the owner's alone.
        assert own.headers["Cache-Control"] == "private, no-cache"
    assert (await anonymous.get("/services/999999/image")).status == 404


# --- Search ---------------------------------------------------------------------------------


def ids_on(page: str) -> set[int]:
    return {int(found) for found in re.findall(r'data-service-id="(\d+)"', page)}


async def test_search_filters_by_category_city_and_online(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    leeds_cleaning = await create(provider, name="Deep clean", category="cleaning", city="Leeds")
    york_cleaning = await create(provider, name="Quick clean", category="cleaning", city="York")
    online_tutoring = await create(provider, name="Maths", category="tutoring", city="", online="1")
    leeds_tutoring = await create(provider, name="Piano", category="tutoring", city="leeds")
    anonymous = await new_browser()

    async def found(query: str) -> set[int]:
        return ids_on(await anonymous.page(f"/services?{query}"))

    assert await found("category=cleaning") == {leeds_cleaning, york_cleaning}
    assert await found("city=LEEDS") == {leeds_cleaning, leeds_tutoring}
    assert await found("online=1") == {online_tutoring}
    assert await found("category=tutoring&city=Leeds") == {leeds_tutoring}
    assert await found("q=clean&city=york") == {york_cleaning}
    assert await found("category=cleaning&online=1") == set()
    page = await anonymous.page("/services?category=tutoring&city=Leeds&online=1&q=pi")
    assert '<option value="tutoring" selected>' in page
    assert 'name="city" type="text" value="Leeds"' in page
    assert re.search(r'name="online" type="checkbox" value="1" checked', page)
    assert 'value="pi"' in page


@pytest.mark.parametrize(
    "query",
    [
        "category=nope",
        "category=%00",
        "online=yes",
        "city=" + "x" * 300,
        "category[]=x&online=1&online=0",
        "city=%27%20OR%201%3D1%20--",
        "q=%25&category=cleaning&page=abc",
    ],
)
async def test_bad_filter_values_are_ignored_without_an_error(
    provider: Browser, new_browser: BrowserFactory, query: str
) -> None:
    await create(provider, category="cleaning", city="Leeds")
    anonymous = await new_browser()

    response = await anonymous.get(f"/services?{query}")

    assert response.status == 200, (await response.text())[:500]


async def test_an_unknown_category_shows_every_service(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    first = await create(provider, category="cleaning")
    second = await create(provider, category="pets")

    page = await (await new_browser()).page("/services?category=nope")

    assert ids_on(page) == {first, second}


async def test_pagination_keeps_the_filters(
    provider: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    provider_id = provider.user_id
    rows = [
        (provider_id, f"Clean {i}", "", 1000, 60, "cleaning", "Leeds", 0, 1, "2026-01-01T00:00:00Z")
        for i in range(22)
    ]
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO services (provider_id, name, description, price_cents, duration_minutes,"
            " category, city, online, published, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, row[-1]) for row in rows],
        )
    await create(provider, category="pets", city="Leeds")
    anonymous = await new_browser()

    first = await anonymous.page("/services?category=cleaning&city=leeds")
    assert "22 results" in first and "Page 1 of 2" in first
    match = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert match is not None
    next_url = match.group(1).replace("&amp;", "&")
    assert "category=cleaning" in next_url and "city=leeds" in next_url and "page=2" in next_url
    second = await anonymous.page(next_url)
    assert len(ids_on(second)) == 2 and "Page 2 of 2" in second


# --- Cards, home page, provider profile -----------------------------------------------------


async def test_cards_show_picture_category_place_price_and_provider(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    service_id = await create(provider, category="repairs", city="Leeds")

    page = await (await new_browser()).page("/services")

    card = page[page.index(f'data-service-id="{service_id}"') :]
    card = card[: card.index("</li>")]
    assert f'src="/services/{service_id}/image?v=' in card
    assert ">Home repairs</a>" in card and '<span class="tag">Leeds</span>' in card
    assert '<span class="price">80.50 USD</span> · 90 min' in card
    assert '<span class="avatar" aria-hidden="true">PP</span>' in card
    assert f'href="/providers/{provider.user_id}">Pat Provider</a>' in card
    assert re.search(r"Member since [A-Z][a-z]{2} \d{4}", card)
    assert 'class="rating"' not in card  # no reviews yet, no stars


async def test_the_home_page_says_what_the_site_is_and_offers_search_categories_and_services(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    anonymous = await new_browser()
    empty = await anonymous.page("/")
    assert 'class="empty-state"' in empty and 'href="/services/new"' in empty

    service_ids = [await create(provider, name=f"Service {i}") for i in range(8)]
    page = await anonymous.page("/")

    assert '<section class="hero"' in page and "<h1" in page
    assert re.search(r'<form method="get" action="/services"[^>]*role="search"', page)
    assert 'name="q"' in page
    for slug, label in (
        ("cleaning", "Cleaning"),
        ("beauty", "Beauty &amp; wellness"),
        ("tech", "Tech help"),
    ):
        assert f'href="/services?category={slug}">{label}</a>' in page
    # Six featured services, the newest first when none is reviewed.
    assert ids_on(page) == set(service_ids[-6:])
    assert 'class="empty-state"' not in page


async def test_the_home_page_features_the_best_rated_services_first(
    provider: Browser, client_browser: Browser, new_browser: BrowserFactory, db: Database
) -> None:
    rated = await create(provider, name="Rated")
    newer = [await create(provider, name=f"Newer {i}") for i in range(6)]
    [booking] = await db.write_statement(
        "INSERT INTO bookings (service_id, client_id, provider_id, service_name, scheduled_at,"
        " status, price_cents, created_at, updated_at)"
        " VALUES (?, ?, ?, 'Rated', '2030-01-01T10:00', 'completed', 8050, ?, ?) RETURNING id",
        (
            rated,
            client_browser.user_id,
            provider.user_id,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ),
    )
    booking_id = booking["id"]
    await db.write_statement(
        "INSERT INTO reviews (booking_id, service_id, provider_id, client_id, rating, body,"
        " created_at) VALUES (?, ?, ?, ?, 4, 'Good', ?)",
        (booking_id, rated, provider.user_id, client_browser.user_id, "2026-01-02T00:00:00Z"),
    )

    page = await (await new_browser()).page("/")

    order = [int(found) for found in re.findall(r'data-service-id="(\d+)"', page)]
    assert order[0] == rated and order[1:] == newer[::-1][:5]
    assert 'aria-label="Rated 4.0 out of 5 from 1 review"' in page


async def test_the_provider_profile_lists_their_published_services(
    provider: Browser, new_browser: BrowserFactory
) -> None:
    shown = await create(provider, name="Shown")
    hidden = await create(provider, name="Hidden")
    assert (await provider.post(f"/services/{hidden}/unpublish")).status == 303
    anonymous = await new_browser()

    page = await anonymous.page(f"/providers/{provider.user_id}")

    assert "<h1>Pat Provider</h1>" in page
    assert '<span class="avatar large" aria-hidden="true">PP</span>' in page
    assert re.search(r"Member since [A-Z][a-z]{2} \d{4}", page)
    assert "No reviews yet" in page
    assert ids_on(page) == {shown}


async def test_a_person_without_services_has_a_profile_that_says_so(
    client_browser: Browser, new_browser: BrowserFactory
) -> None:
    page = await (await new_browser()).page(f"/providers/{client_browser.user_id}")

    assert "<h1>Casey Client</h1>" in page
    assert "Casey Client offers no services at the moment." in page


async def test_an_unknown_provider_is_not_found(new_browser: BrowserFactory, db: Database) -> None:
    anonymous = await new_browser()

    assert (await anonymous.get("/providers/424242")).status == 404
    assert (await anonymous.get("/providers/99999999999999999999")).status == 404


async def test_names_are_escaped_on_cards_and_profiles(
    new_browser: BrowserFactory, db: Database
) -> None:
    browser = await new_browser()
    await browser.signup("xss@example.com", f"Eve {XSS}")
    service_id = await create(browser, name=f"Job {XSS}")

    for path in ("/", "/services", f"/providers/{browser.user_id}", f"/services/{service_id}"):
        page = await browser.page(path)
        assert XSS not in page, path
        assert "&lt;script&gt;" in page, path
