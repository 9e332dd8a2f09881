"""Users table."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import now_text
from app.db import ConflictError, Database


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    password_hash: str


class EmailTaken(Exception):
    pass


async def create_user(db: Database, email: str, name: str, password_hash: str) -> User:
    try:
        async with db.transaction() as tx:
            user_id = await tx.fetch_value(
                "INSERT INTO users (email, name, password_hash, created_at) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (email, name, password_hash, now_text()),
            )
    except ConflictError:
        raise EmailTaken(email) from None
    return User(int(user_id), email, name, password_hash)


async def find_user_by_email(db: Database, email: str) -> User | None:
    row = await db.fetch_one(
        f"SELECT id, email, name, password_hash FROM users WHERE {db.dialect.email_equals}",
        (email,),
    )
    return None if row is None else User(**dict(row))


async def find_user(db: Database, user_id: int) -> User | None:
    row = await db.fetch_one(
        "SELECT id, email, name, password_hash FROM users WHERE id = ?", (user_id,)
    )
    return None if row is None else User(**dict(row))


async def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
        )
