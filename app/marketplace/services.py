"""Services that providers list: queries and changes. Only the owner may change a service;
an unpublished service is visible to its owner alone."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import now_text
from app.db import Database, Row
from app.errors import NotFound

SEARCH_PAGE_SIZE = 20

_SELECT = "SELECT s.*, u.name AS provider_name FROM services s JOIN users u ON u.id = s.provider_id"


@dataclass(frozen=True)
class ServiceData:
    name: str
    description: str
    price_cents: int
    duration_minutes: int


@dataclass(frozen=True)
class Service:
    id: int
    provider_id: int
    provider_name: str
    name: str
    description: str
    price_cents: int
    duration_minutes: int
    published: bool
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> Service:
        return cls(
            id=row["id"],
            provider_id=row["provider_id"],
            provider_name=row["provider_name"],
            name=row["name"],
            description=row["description"],
            price_cents=row["price_cents"],
            duration_minutes=row["duration_minutes"],
            published=bool(row["published"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


async def create_service(db: Database, provider_id: int, data: ServiceData) -> int:
    now = now_text()
    async with db.transaction() as tx:
        service_id = await tx.fetch_value(
            "INSERT INTO services (provider_id, name, description, price_cents,"
            " duration_minutes, published, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
            (
                provider_id,
                data.name,
                data.description,
                data.price_cents,
                data.duration_minutes,
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
    db: Database, service_id: int, provider_id: int, data: ServiceData
) -> None:
    async with db.transaction() as tx:
        result = await tx.execute(
            "UPDATE services SET name = ?, description = ?, price_cents = ?,"
            " duration_minutes = ?, updated_at = ? WHERE id = ? AND provider_id = ?",
            (
                data.name,
                data.description,
                data.price_cents,
                data.duration_minutes,
                now_text(),
                service_id,
                provider_id,
            ),
        )
    if result.rowcount != 1:
        raise NotFound("That service does not exist.")


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


async def search_services(
    db: Database, query: str, *, page: int = 1, size: int = SEARCH_PAGE_SIZE
) -> tuple[list[Service], int]:
    """Published services whose name or description contains `query`; (page, total)."""
    where = "s.published = 1"
    params: list[object] = []
    if query:
        like = db.dialect.like  # case-insensitive on both stores
        where += f" AND (s.name {like} ? ESCAPE '\\' OR s.description {like} ? ESCAPE '\\')"
        params += [_like_pattern(query)] * 2
    total = int(await db.fetch_value(f"SELECT count(*) FROM services s WHERE {where}", params))
    rows = await db.fetch_all(
        f"{_SELECT} WHERE {where} ORDER BY s.id DESC LIMIT ? OFFSET ?",
        [*params, size, (max(1, page) - 1) * size],
    )
    return [Service.from_row(row) for row in rows], total


async def list_provider_services(db: Database, provider_id: int) -> list[Service]:
    rows = await db.fetch_all(
        f"{_SELECT} WHERE s.provider_id = ? ORDER BY s.published DESC, s.id DESC", (provider_id,)
    )
    return [Service.from_row(row) for row in rows]
