"""The database side of presence (`app.realtime.presence.PresenceStore`): which node holds
whose sockets, which topics they are on, and when each person was last seen.

A node's rows count only while its heartbeat is fresh, so a process that died (SIGKILL, a lost
host) stops making anyone look online after `stale_seconds`, even before it is swept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from app.clock import now_text, to_text
from app.db import Database, Transaction, chunks, placeholders
from app.realtime.presence import PresenceChanges, PresenceState

_CHUNK = 400


_LIVE = (
    "EXISTS (SELECT 1 FROM presence p JOIN presence_nodes n ON n.node = p.node"
    " WHERE p.user_id = users.id AND n.heartbeat_at >= ?)"
)


class SqlPresenceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def beat(self, node: str, now: float) -> bool:
        async with self._db.transaction() as tx:
            result = await tx.execute(
                "UPDATE presence_nodes SET heartbeat_at = ? WHERE node = ?", (now, node)
            )
            if result.rowcount == 1:
                return True
            await tx.execute(
                "INSERT INTO presence_nodes (node, heartbeat_at) VALUES (?, ?)"
                " ON CONFLICT (node) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (node, now),
            )
            return False

    async def apply(self, changes: PresenceChanges) -> dict[int, PresenceState]:
        node = changes.node
        async with self._db.transaction() as tx:
            # Users in id order: on PostgreSQL, rows of `users` are locked in one order only.
            for chunk in chunks(sorted(changes.users_on), _CHUNK):
                await tx.execute(
                    "INSERT INTO presence (node, user_id) VALUES "
                    + ", ".join(["(?, ?)"] * len(chunk))
                    + " ON CONFLICT DO NOTHING",
                    [value for user_id in chunk for value in (node, user_id)],
                )
            for chunk in chunks(sorted(changes.users_off), _CHUNK):
                await tx.execute(
                    "DELETE FROM presence WHERE node = ?"
                    f" AND user_id IN ({placeholders(len(chunk))})",
                    [node, *chunk],
                )
                await _seen(tx, chunk, now_text())
            for user_id, topic in changes.topics_on:
                await tx.execute(
                    "INSERT INTO presence_topics (node, user_id, topic) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (node, user_id, topic),
                )
            for user_id, topic in changes.topics_off:
                await tx.execute(
                    "DELETE FROM presence_topics WHERE node = ? AND user_id = ? AND topic = ?",
                    (node, user_id, topic),
                )
            changed = sorted({*changes.users_on, *changes.users_off})
            return await self.states(changed, changes.stale_before)

    async def sweep(self, stale_before: float) -> dict[int, PresenceState]:
        async with self._db.transaction() as tx:
            dead = await tx.fetch_all(
                "DELETE FROM presence_nodes WHERE heartbeat_at < ? RETURNING node, heartbeat_at",
                (stale_before,),
            )
            if not dead:
                return {}
            users: set[int] = set()
            for row in dead:
                rows = await tx.fetch_all(
                    "DELETE FROM presence WHERE node = ? RETURNING user_id", (row["node"],)
                )
                await tx.execute("DELETE FROM presence_topics WHERE node = ?", (row["node"],))
                held = sorted(int(r[0]) for r in rows)
                # Last seen when the node last showed it was alive.
                last = to_text(datetime.fromtimestamp(float(row["heartbeat_at"]), UTC))
                for chunk in chunks(held, _CHUNK):
                    await _seen(tx, chunk, last)
                users.update(held)
            return await self.states(sorted(users), stale_before)

    async def leave(self, node: str, expires_at: float) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM presence_topics WHERE node = ?", (node,))
            await tx.execute(
                "UPDATE presence_nodes SET heartbeat_at = ? WHERE node = ?", (expires_at, node)
            )

    async def states(
        self, user_ids: Sequence[int], stale_before: float
    ) -> dict[int, PresenceState]:
        """Inside the caller's transaction when it has one (`Database.fetch_all`)."""
        found: dict[int, PresenceState] = {}
        for chunk in chunks(sorted(set(user_ids)), _CHUNK):
            rows = await self._db.fetch_all(
                f"SELECT id, last_seen_at, {_LIVE} AS online FROM users"
                f" WHERE id IN ({placeholders(len(chunk))})",
                [stale_before, *chunk],
            )
            found.update(
                (int(r["id"]), PresenceState(bool(r["online"]), r["last_seen_at"])) for r in rows
            )
        return found

    async def on_topic(self, user_id: int, topic: str, stale_before: float) -> bool:
        """True while a socket of the user, on any live node, is subscribed to the topic."""
        value = await self._db.fetch_value(
            "SELECT 1 FROM presence_topics t JOIN presence_nodes n ON n.node = t.node"
            " WHERE t.topic = ? AND t.user_id = ? AND n.heartbeat_at >= ? LIMIT 1",
            (topic, user_id, stale_before),
        )
        return value is not None


async def _seen(tx: Transaction, user_ids: Sequence[int], when: str) -> None:
    await tx.execute(
        f"UPDATE users SET last_seen_at = ? WHERE id IN ({placeholders(len(user_ids))})",
        [when, *user_ids],
    )
