"""Server-side sessions: the cookie carries a random token, the `sessions` table is the truth.

A session ends when revoked (logout, the sessions page), when unused for the idle limit, or at
its absolute expiry. Listeners registered with `on_revoke` hear of every revocation, so live
connections bound to that session can be closed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp_session import get_session, new_session

from app.clock import from_text, now_text, to_text, utc_now
from app.config import Settings
from app.db import Database
from app.realtime.coalesce import Coalescer

# last_seen_at is written at most this often per session, not on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
# Ids or hashes per `IN (...)` list: under SQLite's default limit of bound variables.
_IN_CHUNK = 900

RevokeListener = Callable[[list[int]], Awaitable[None]]


@dataclass(frozen=True)
class CurrentUser:
    id: int
    email: str
    name: str
    session_id: int


@dataclass(frozen=True)
class SessionInfo:
    id: int
    created_at: str
    last_seen_at: str
    expires_at: str
    user_agent: str
    ip: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._idle = timedelta(seconds=settings.session_idle_seconds)
        self._absolute = timedelta(seconds=settings.session_absolute_seconds)
        self._revoke_listeners: list[RevokeListener] = []
        self._lookups: Coalescer[str, CurrentUser] = Coalescer(self._lookup_many)

    def on_revoke(self, listener: RevokeListener) -> None:
        self._revoke_listeners.append(listener)

    async def create(self, user_id: int, user_agent: str, ip: str) -> str:
        """Open a session for `user_id`; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = utc_now()
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at,"
                " expires_at, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    hash_token(token),
                    user_id,
                    to_text(now),
                    to_text(now),
                    to_text(now + self._absolute),
                    user_agent[:300],
                    ip[:64],
                ),
            )
        return token

    async def lookup(self, token: str) -> CurrentUser | None:
        """The live session's user, or None when unknown, revoked, idle too long or expired.
        Look-ups made at the same moment share one query (a reconnect storm's handshakes)."""
        return await self._lookups.get(hash_token(token))

    async def _lookup_many(self, token_hashes: list[str]) -> dict[str, CurrentUser]:
        """The users of the live sessions among these, by token hash; last_seen_at of each
        moves on when it is more than TOUCH_INTERVAL old."""
        rows: list[Any] = []
        for start in range(0, len(token_hashes), _IN_CHUNK):
            chunk = token_hashes[start : start + _IN_CHUNK]
            rows += await self._db.fetch_all(
                "SELECT s.token_hash, s.id AS session_id, s.last_seen_at, s.expires_at,"
                " s.revoked_at, u.id AS user_id, u.email, u.name"
                " FROM sessions s JOIN users u ON u.id = s.user_id"
                f" WHERE s.token_hash IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        now = utc_now()
        found: dict[str, CurrentUser] = {}
        touch: list[int] = []
        for row in rows:
            if row["revoked_at"] is not None:
                continue
            last_seen = from_text(row["last_seen_at"])
            if from_text(row["expires_at"]) <= now or last_seen + self._idle <= now:
                continue
            if now - last_seen >= TOUCH_INTERVAL:
                touch.append(row["session_id"])
            found[row["token_hash"]] = CurrentUser(
                row["user_id"], row["email"], row["name"], row["session_id"]
            )
        if touch:
            async with self._db.transaction() as tx:
                await tx.executemany(
                    "UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                    [(to_text(now), session_id) for session_id in touch],
                )
        return found

    async def is_active(self, session_id: int) -> bool:
        row = await self._db.fetch_one(
            "SELECT last_seen_at, expires_at, revoked_at FROM sessions WHERE id = ?",
            (session_id,),
        )
        if row is None or row["revoked_at"] is not None:
            return False
        now = utc_now()
        return from_text(row["expires_at"]) > now and (
            from_text(row["last_seen_at"]) + self._idle > now
        )

    async def ended_among(self, session_ids: set[int]) -> set[int]:
        """Of these sessions (with open sockets), those that have ended. The rest count as in
        use: an open page is activity, so their last_seen_at moves on."""
        ids = sorted(session_ids)
        now = utc_now()
        ended: set[int] = set()
        touch: list[int] = []
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            rows = await self._db.fetch_all(
                "SELECT id, last_seen_at, expires_at, revoked_at FROM sessions"
                f" WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found = {row["id"] for row in rows}
            ended.update(set(chunk) - found)
            for row in rows:
                last_seen = from_text(row["last_seen_at"])
                if (
                    row["revoked_at"] is not None
                    or from_text(row["expires_at"]) <= now
                    or last_seen + self._idle <= now
                ):
                    ended.add(row["id"])
                elif now - last_seen >= TOUCH_INTERVAL:
                    touch.append(row["id"])
        if touch:
            async with self._db.transaction() as tx:
                await tx.executemany(
                    "UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                    [(to_text(now), session_id) for session_id in touch],
                )
        return ended

    async def list_active(self, user_id: int) -> list[SessionInfo]:
        idle_cutoff = to_text(utc_now() - self._idle)
        rows = await self._db.fetch_all(
            "SELECT id, created_at, last_seen_at, expires_at, user_agent, ip FROM sessions"
            " WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_seen_at > ?"
            " ORDER BY last_seen_at DESC, id DESC",
            (user_id, now_text(), idle_cutoff),
        )
        return [SessionInfo(**dict(row)) for row in rows]

    async def revoke(self, user_id: int, session_id: int) -> bool:
        """Revoke one of `user_id`'s sessions; False when it is not theirs or already over."""
        return await self._revoke("id = ? AND user_id = ?", (session_id, user_id))

    async def revoke_token(self, token: str) -> bool:
        """Revoke the session a cookie token belongs to; False when it is already over."""
        return await self._revoke("token_hash = ?", (hash_token(token),))

    async def _revoke(self, where: str, params: tuple[object, ...]) -> bool:
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"UPDATE sessions SET revoked_at = ? WHERE {where} AND revoked_at IS NULL"
                " RETURNING id",
                (now_text(), *params),
            )
        if not rows:
            return False
        for listener in self._revoke_listeners:
            await listener([row[0] for row in rows])
        return True


async def start_session(request: web.Request, store: SessionStore, user_id: int) -> None:
    """Sign `user_id` in with a fresh cookie (a new session id defeats session fixation).

    A session this browser already had ends: signing in again must not leave the old cookie
    valid (a copy of it would stay usable)."""
    previous = (await get_session(request)).get("sid")
    if isinstance(previous, str):
        await store.revoke_token(previous)
    token = await store.create(user_id, request.headers.get("User-Agent", ""), request.remote or "")
    session = await new_session(request)
    session["sid"] = token


async def end_session(request: web.Request, store: SessionStore, user: CurrentUser) -> None:
    await store.revoke(user.id, user.session_id)
    session = await get_session(request)
    session.invalidate()
