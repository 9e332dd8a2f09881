"""Services that providers list: queries and changes. Only the owner may change a service;
an unpublished service is visible to its owner alone."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from app.clock import now_text
from app.db import Database, Row
from app.errors import NotFound
from app.marketplace import categories
from app.marketplace.categories import Category
from app.marketplace.reviews import rounded_average

SEARCH_PAGE_SIZE = 20
FEATURED_COUNT = 6

# One derived table, so filters and ordering may name the provider's and the reviews' columns
# like the service's own (both stores push the outer WHERE down into it). The review figures
# are per-row subqueries through `reviews_by_service`: a page lists at most a few dozen.
_SELECT = (
    "SELECT * FROM (SELECT s.*, u.name AS provider_name, u.created_at AS provider_since,"
    " (SELECT avg(r.rating) FROM reviews r WHERE r.service_id = s.id) AS rating_average,"
    " (SELECT count(*) FROM reviews r WHERE r.service_id = s.id) AS review_count"
    " FROM services s JOIN users u ON u.id = s.provider_id) AS s"
)


@dataclass(frozen=True)
class ServiceData:
    name: str
    description: str
    price_cents: int
    duration_minutes: int
    category: str = categories.DEFAULT
    city: str = ""  # '' when online
    online: bool = False


@dataclass(frozen=True)
class Service:
    id: int
    provider_id: int
    provider_name: str
    provider_since: str
    name: str
    description: str
    price_cents: int
    duration_minutes: int
    category: str
    city: str
    online: bool
    image_file: str | None
    image_type: str | None
    rating_average: float | None
    review_count: int
    published: bool
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> Service:
        average = row["rating_average"]
        return cls(
            id=row["id"],
            provider_id=row["provider_id"],
            provider_name=row["provider_name"],
            provider_since=row["provider_since"],
            name=row["name"],
            description=row["description"],
            price_cents=row["price_cents"],
            duration_minutes=row["duration_minutes"],
            category=row["category"],
            city=row["city"],
            online=bool(row["online"]),
            image_file=row["image_file"],
            image_type=row["image_type"],
            # PostgreSQL's avg() of integers is a Decimal; one decimal place is what is shown.
            rating_average=None if average is None else float(rounded_average(average)),
            review_count=int(row["review_count"]),
            published=bool(row["published"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def category_info(self) -> Category:
        return categories.category(self.category)

    @property
    def place(self) -> str:
        return "Online" if self.online else self.city

    @property
    def image_version(self) -> str:
        """Changes whenever the picture does (a new upload has a new random file name; the
        placeholder follows the category): the `?v=` of the picture's URL and its ETag."""
        if self.image_file:
            return self.image_file.rsplit("/", 1)[-1].split(".", 1)[0]
        return f"p1-{self.category_info.slug}"


@dataclass(frozen=True)
class StoredImage:
    """A picture on disk: its file name under the uploads folder, and its media type."""

    file: str
    media_type: str


class Keep(Enum):
    """An edit that leaves the picture as it is."""

    IMAGE = "keep"


async def create_service(
    db: Database, provider_id: int, data: ServiceData, image: StoredImage | None = None
) -> int:
    """A new published service, with its picture or (None) the generated placeholder."""
    now = now_text()
    image_file, image_type = (image.file, image.media_type) if image else (None, None)
    async with db.transaction() as tx:
        service_id = await tx.fetch_value(
            "INSERT INTO services (provider_id, name, description, price_cents,"
            " duration_minutes, category, city, online, image_file, image_type,"
            " published, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
            (
                provider_id,
                data.name,
                data.description,
                data.price_cents,
                data.duration_minutes,
                data.category,
                data.city,
                int(data.online),
                image_file,
                image_type,
                now,
                now,
            ),
        )
    return int(service_id)


async def get_service(db: Database, service_id: int, viewer_id: int | None) -> Service:
    """A published service, or the viewer's own; NotFound otherwise."""
    row = await db.fetch_one(
        f"{_SELECT} WHERE s.id = ? AND (s.published = 1 OR s.provider_id = ?)",
        (service_id, viewer_id),
    )
    if row is None:
        raise NotFound("That service does not exist or is no longer offered.")
    return Service.from_row(row)


async def get_own_service(db: Database, service_id: int, provider_id: int) -> Service:
    row = await db.fetch_one(
        f"{_SELECT} WHERE s.id = ? AND s.provider_id = ?", (service_id, provider_id)
    )
    if row is None:
        raise NotFound("That service does not exist.")
    return Service.from_row(row)


async def update_service(
    db: Database,
    service_id: int,
    provider_id: int,
    data: ServiceData,
    image: StoredImage | Keep | None = Keep.IMAGE,
) -> str | None:
    """Saves the owner's edit; `image` replaces the picture, None removes it. Returns the file
    the edit replaced or removed (for the caller to delete once this has committed)."""
    async with db.transaction() as tx:
        # Touching the row first locks it (PostgreSQL) and reads the picture it has now, so
        # two edits at once each learn exactly the file they replaced.
        current = await tx.fetch_one(
            "UPDATE services SET updated_at = ? WHERE id = ? AND provider_id = ?"
            " RETURNING image_file",
            (now_text(), service_id, provider_id),
        )
        if current is None:
            raise NotFound("That service does not exist.")
        old_file: str | None = current["image_file"]
        await tx.execute(
            "UPDATE services SET name = ?, description = ?, price_cents = ?,"
            " duration_minutes = ?, category = ?, city = ?, online = ? WHERE id = ?",
            (
                data.name,
                data.description,
                data.price_cents,
                data.duration_minutes,
                data.category,
                data.city,
                int(data.online),
                service_id,
            ),
        )
        if isinstance(image, Keep):
            return None
        await tx.execute(
            "UPDATE services SET image_file = ?, image_type = ? WHERE id = ?",
            (image.file if image else None, image.media_type if image else None, service_id),
        )
    return old_file


async def set_published(db: Database, service_id: int, provider_id: int, published: bool) -> None:
    async with db.transaction() as tx:
        result = await tx.execute(
            "UPDATE services SET published = ?, updated_at = ? WHERE id = ? AND provider_id = ?",
            (int(published), now_text(), service_id, provider_id),
        )
    if result.rowcount != 1:
        raise NotFound("That service does not exist.")


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class SearchFilters:
    """What a visitor searches for; empty values filter nothing."""

    query: str = ""
    category: str = ""  # a listed slug, or ''
    city: str = ""
    online: bool = False

    @property
    def active(self) -> bool:
        return bool(self.query or self.category or self.city or self.online)


async def search_services(
    db: Database,
    filters: SearchFilters,
    *,
    page: int = 1,
    size: int = SEARCH_PAGE_SIZE,
) -> tuple[list[Service], int]:
    """Published services matching the filters (text in the name or description, category,
    city case-insensitively, online), newest first; (page, total)."""
    like = db.dialect.like  # case-insensitive on both stores
    where = "s.published = 1"
    params: list[object] = []
    if filters.query:
        where += f" AND (s.name {like} ? ESCAPE '\\' OR s.description {like} ? ESCAPE '\\')"
        params += [_like_pattern(filters.query)] * 2
    if filters.category:
        where += " AND s.category = ?"
        params.append(filters.category)
    if filters.online:
        where += " AND s.online = 1"
    if filters.city:
        # The whole city, any case: lower() on both sides (SQLite's LIKE and lower() fold
        # ASCII only, so this is the portable exact match).
        where += " AND lower(s.city) = lower(?)"
        params.append(filters.city)
    total = int(await db.fetch_value(f"SELECT count(*) FROM services s WHERE {where}", params))
    rows = await db.fetch_all(
        f"{_SELECT} WHERE {where} ORDER BY s.id DESC LIMIT ? OFFSET ?",
        [*params, size, (max(1, page) - 1) * size],
    )
    return [Service.from_row(row) for row in rows], total


async def featured_services(db: Database, count: int = FEATURED_COUNT) -> list[Service]:
    """For the home page: the best rated published services, then the newest."""
    rows = await db.fetch_all(
        f"{_SELECT} WHERE s.published = 1 ORDER BY (s.rating_average IS NULL),"
        " s.rating_average DESC, s.review_count DESC, s.id DESC LIMIT ?",
        (count,),
    )
    return [Service.from_row(row) for row in rows]


async def list_provider_services(
    db: Database, provider_id: int, *, published_only: bool = False
) -> list[Service]:
    """A provider's services: all of them for the provider's own page (published first), the
    published ones for their public profile."""
    where = "s.provider_id = ?" + (" AND s.published = 1" if published_only else "")
    rows = await db.fetch_all(
        f"{_SELECT} WHERE {where} ORDER BY s.published DESC, s.id DESC", (provider_id,)
    )
    return [Service.from_row(row) for row in rows]


@dataclass(frozen=True)
class Provider:
    id: int
    name: str
    member_since: str


async def get_provider(db: Database, user_id: int) -> Provider:
    """Anyone with an account, seen as a provider (their rating is the reviews module's
    provider_summary, which the profile page shows)."""
    row = await db.fetch_one("SELECT id, name, created_at FROM users WHERE id = ?", (user_id,))
    if row is None:
        raise NotFound("There is no such provider.")
    return Provider(id=row["id"], name=row["name"], member_since=row["created_at"])
