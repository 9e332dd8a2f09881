"""Ratings and reviews: a booking's client rates it once, after it is completed.

A review belongs to one booking (`reviews.booking_id` is UNIQUE) and copies the booking's
service and provider, so service and profile pages read one table. Leaving one is one
transaction: the insert and the provider's `new_review` notification commit together or not
at all. Of two racing submissions the UNIQUE key decides (`ON CONFLICT DO NOTHING`, which
waits for the other transaction on PostgreSQL and is serialised by the write lock on SQLite):
one review is stored and the other is refused as already reviewed.

Text is stored as the person wrote it (trimmed, line breaks normalised) and escaped wherever it
is shown: templates autoescape, the browser client sets text only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.clock import now_text
from app.conversations.text import preview
from app.db import Database, Row
from app.errors import BadRequest, Conflict, Forbidden
from app.forms import Errors, NumberError, check_length, cursor, parse_int, text
from app.marketplace.bookings import Role, Status, get_booking
from app.notifications.service import NotificationService

MIN_RATING = 1
MAX_RATING = 5
MAX_BODY = 2000
# How much of the review the provider's notification quotes.
MESSAGE_PREVIEW = 80
PAGE_SIZE = 10

RATING_MESSAGE = f"Choose a rating from {MIN_RATING} to {MAX_RATING} stars."
ALREADY_REVIEWED = "You have already reviewed this booking."

_SELECT = (
    "SELECT r.*, c.name AS client_name, s.name AS service_name FROM reviews r"
    " JOIN users c ON c.id = r.client_id JOIN services s ON s.id = r.service_id"
)


def first_name(name: str) -> str:
    """What a review shows of its author: the first word of the name they gave."""
    words = name.split()
    return words[0] if words else name


def rounded_average(value: Decimal | float | int) -> Decimal:
    """An average as shown: one decimal, half up (4.25 -> 4.3, where round() gives 4.2).
    Takes SQLite's float avg() and PostgreSQL's Decimal alike, so every page shows the same."""
    return Decimal(str(value)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def stars_text(rating: int) -> str:
    return "★" * rating + "☆" * (MAX_RATING - rating)


def stars_words(rating: int) -> str:
    return f"{rating} star{'' if rating == 1 else 's'}"


@dataclass(frozen=True)
class Review:
    id: int
    booking_id: int
    service_id: int
    service_name: str
    provider_id: int
    client_id: int
    client_name: str
    rating: int
    body: str
    created_at: str

    @classmethod
    def from_row(cls, row: Row) -> Review:
        return cls(
            id=row["id"],
            booking_id=row["booking_id"],
            service_id=row["service_id"],
            service_name=row["service_name"],
            provider_id=row["provider_id"],
            client_id=row["client_id"],
            client_name=row["client_name"],
            rating=row["rating"],
            body=row["body"],
            created_at=row["created_at"],
        )

    @property
    def author(self) -> str:
        return first_name(self.client_name)

    @property
    def stars(self) -> str:
        return stars_text(self.rating)

    @property
    def label(self) -> str:
        return f"Rated {self.rating} out of {MAX_RATING}"


@dataclass(frozen=True)
class Summary:
    """The rating of a service or a provider: how many reviews, and their average."""

    count: int
    total: int  # the sum of the ratings: integers on both stores, no float or Decimal drift

    @property
    def average(self) -> Decimal | None:
        """Rounded half up to one decimal (4.25 -> 4.3), None without reviews."""
        if not self.count:
            return None
        return rounded_average(Decimal(self.total) / self.count)

    @property
    def average_text(self) -> str:
        return "" if self.average is None else str(self.average)

    @property
    def label(self) -> str:
        if not self.count:
            return "No reviews yet"
        reviews = "review" if self.count == 1 else "reviews"
        return f"Rated {self.average} out of {MAX_RATING} from {self.count} {reviews}"


@dataclass(frozen=True)
class ReviewData:
    rating: int
    body: str


def clean_body(raw: str) -> str:
    """Line breaks as one `\\n` (browsers post `\\r\\n`, and count it as one character)."""
    return raw.replace("\r\n", "\n").replace("\r", "\n").strip()


def _problems(rating: int | None, body: str) -> Errors:
    errors: Errors = {}
    # bool is an int to Python, not a rating.
    if rating is None or isinstance(rating, bool) or not MIN_RATING <= rating <= MAX_RATING:
        errors["rating"] = RATING_MESSAGE
    check_length(errors, "body", body, "Your review", required=False, maximum=MAX_BODY)
    return errors


def validate_review(form: Mapping[str, Any]) -> tuple[ReviewData | None, Errors]:
    """The review form's fields (`rating`, `body`) checked, or a `field -> message` dict."""
    rating: int | None
    try:
        rating = parse_int(text(form, "rating"), minimum=MIN_RATING, maximum=MAX_RATING)
    except NumberError:
        rating = None
    raw = form.get("body", "")
    body = clean_body(raw if isinstance(raw, str) else "")
    errors = _problems(rating, body)
    if errors or rating is None:
        return None, errors
    return ReviewData(rating, body), errors


async def leave_review(
    db: Database,
    notifier: NotificationService,
    *,
    client_id: int,
    booking_id: int,
    rating: int,
    body: str,
) -> Review:
    """Store the client's review of a completed booking and notify its provider.

    NotFound for someone who is not a party to the booking, Forbidden for its provider,
    Conflict before it is completed or once it has a review, BadRequest for a rating outside
    1..5 or a body that is too long. A refusal changes nothing.
    """
    body = clean_body(body)
    problems = _problems(rating, body)
    if problems:
        raise BadRequest(next(iter(problems.values())))
    async with db.transaction() as tx:
        booking = await get_booking(db, booking_id, client_id)
        if booking.role_of(client_id) is not Role.CLIENT:
            raise Forbidden("Only the client who made the booking can review it.")
        if booking.status is not Status.COMPLETED:
            raise Conflict(
                f"This booking is {booking.status.value}. You can review it once"
                f" {first_name(booking.provider_name)} marks it as done."
            )
        review_id = await tx.fetch_value(
            "INSERT INTO reviews (booking_id, service_id, provider_id, client_id, rating, body,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (booking_id) DO NOTHING RETURNING id",
            (
                booking.id,
                booking.service_id,
                booking.provider_id,
                client_id,
                rating,
                body,
                now_text(),
            ),
        )
        if review_id is None:
            raise Conflict(ALREADY_REVIEWED)
        review = await _get(db, int(review_id))
        await notifier.send_booking_update(
            review.provider_id,
            {
                "type": "new_review",
                "booking_id": review.booking_id,
                "service_id": review.service_id,
                "service_name": review.service_name,
                "review_id": review.id,
                "rating": review.rating,
                "message": review_message(review),
            },
        )
    return review


def review_message(review: Review) -> str:
    """'Casey gave House Cleaning 5 stars: “Spotless, thank you”' (plain text: shown escaped)."""
    said = f"{review.author} gave {review.service_name} {stars_words(review.rating)}"
    if not review.body:
        return f"{said}."
    return f"{said}: “{preview(review.body, MESSAGE_PREVIEW)}”"


async def _get(db: Database, review_id: int) -> Review:
    row = await db.fetch_one(f"{_SELECT} WHERE r.id = ?", (review_id,))
    assert row is not None
    return Review.from_row(row)


# --- queries ------------------------------------------------------------------------------


async def for_booking(db: Database, booking_id: int) -> Review | None:
    """The booking's review, if it has one (callers have checked who may see the booking)."""
    row = await db.fetch_one(f"{_SELECT} WHERE r.booking_id = ?", (booking_id,))
    return None if row is None else Review.from_row(row)


async def _page(
    db: Database, column: str, value: int, limit: int, before: int | None
) -> list[Review]:
    where = f"r.{column} = ?"
    params: list[object] = [value]
    if before is not None:
        where += " AND r.id < ?"
        params.append(before)
    rows = await db.fetch_all(
        f"{_SELECT} WHERE {where} ORDER BY r.id DESC LIMIT ?", [*params, limit]
    )
    return [Review.from_row(row) for row in rows]


async def for_service(
    db: Database, service_id: int, limit: int = PAGE_SIZE, before: int | None = None
) -> list[Review]:
    """The service's reviews, newest first; `before` a review id, for the next page."""
    return await _page(db, "service_id", service_id, limit, before)


async def for_provider(
    db: Database, provider_id: int, limit: int = PAGE_SIZE, before: int | None = None
) -> list[Review]:
    """Every review of the provider's services, newest first."""
    return await _page(db, "provider_id", provider_id, limit, before)


async def _summary(db: Database, column: str, value: int) -> Summary:
    row = await db.fetch_one(
        f"SELECT count(*), coalesce(sum(rating), 0) FROM reviews WHERE {column} = ?", (value,)
    )
    assert row is not None
    return Summary(count=int(row[0]), total=int(row[1]))


async def service_summary(db: Database, service_id: int) -> Summary:
    return await _summary(db, "service_id", service_id)


async def provider_summary(db: Database, provider_id: int) -> Summary:
    return await _summary(db, "provider_id", provider_id)


async def page_context(
    db: Database,
    *,
    service_id: int | None = None,
    provider_id: int | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """What `_rating.html` and `_reviews.html` need on a service page (`service_id`) or a
    provider profile (`provider_id`): pass `request.query.get("reviews_before")` as `before`."""
    after = cursor(before)  # a mangled link shows the newest reviews
    if service_id is not None:
        found = await for_service(db, service_id, PAGE_SIZE + 1, after)
        summary = await service_summary(db, service_id)
    elif provider_id is not None:
        found = await for_provider(db, provider_id, PAGE_SIZE + 1, after)
        summary = await provider_summary(db, provider_id)
    else:
        raise ValueError("page_context needs a service_id or a provider_id")
    shown = found[:PAGE_SIZE]
    return {
        "reviews": shown,
        "review_summary": summary,
        # The id to page on for older reviews, when there are more.
        "reviews_older": shown[-1].id if len(found) > PAGE_SIZE else None,
        "reviews_paged": after is not None,
        "reviews_by_service": provider_id is not None and service_id is None,
    }
