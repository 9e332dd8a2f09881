"""Push subscriptions and the per-device claims that make each push happen once."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import now_text
from app.db import Database, placeholders

# A notification older than this is not pushed any more: news from yesterday is in the inbox.
MAX_AGE_SECONDS = 24 * 3600
BATCH = 200


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class DevicePush:
    """One notification due for one device."""

    notification_id: int
    user_id: int
    event: str
    key: str | None
    data: str
    subscription: Subscription


async def save(
    db: Database,
    *,
    user_id: int,
    session_id: int,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str,
) -> int:
    """Store (or move to this session and person) the subscription of this endpoint."""
    rows = await db.write_statement(
        "INSERT INTO push_subscriptions"
        " (user_id, session_id, endpoint, p256dh, auth, user_agent, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id,"
        " session_id = excluded.session_id, p256dh = excluded.p256dh, auth = excluded.auth,"
        " user_agent = excluded.user_agent RETURNING id",
        (user_id, session_id, endpoint, p256dh, auth, user_agent[:300], now_text()),
    )
    return int(rows[0][0])


async def remove(db: Database, user_id: int, endpoint: str) -> bool:
    rows = await db.write_statement(
        "DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ? RETURNING id",
        (user_id, endpoint),
    )
    return bool(rows)


async def forget(db: Database, subscription_id: int) -> None:
    """The push service said the subscription is gone (404, 410)."""
    await db.write_statement("DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,))


async def forget_sessions(db: Database, session_ids: list[int]) -> None:
    marks = placeholders(len(session_ids))
    await db.write_statement(
        f"DELETE FROM push_subscriptions WHERE session_id IN ({marks})", session_ids
    )


async def devices(db: Database, user_id: int) -> dict[int, list[str]]:
    """session id -> the push services its devices subscribed through (for the sessions page)."""
    rows = await db.fetch_all(
        "SELECT session_id, endpoint FROM push_subscriptions WHERE user_id = ? ORDER BY id",
        (user_id,),
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        host = str(row["endpoint"]).split("/")[2] if "//" in row["endpoint"] else "?"
        found.setdefault(int(row["session_id"]), []).append(host)
    return found


async def due(
    db: Database, older_than: str, newer_than: str, after: tuple[int, int] = (0, 0)
) -> list[DevicePush]:
    """Notifications no socket has acknowledged and nobody has read, created in
    (newer_than, older_than], for each live device of their person not yet claimed: a page of
    them in (notification id, subscription id) order, after `after`."""
    rows = await db.fetch_all(
        "SELECT n.id, n.user_id, n.event, n.key, n.data,"
        " s.id AS sid, s.endpoint, s.p256dh, s.auth"
        " FROM push_subscriptions s"
        " JOIN sessions ss ON ss.id = s.session_id AND ss.revoked_at IS NULL AND ss.expires_at > ?"
        " JOIN notifications n ON n.user_id = s.user_id"
        " WHERE n.delivered_at IS NULL AND n.read_at IS NULL AND n.type <> 'message'"
        " AND n.created_at <= ? AND n.created_at > ?"
        " AND (n.id > ? OR (n.id = ? AND s.id > ?))"
        " AND NOT EXISTS (SELECT 1 FROM push_deliveries d"
        "  WHERE d.notification_id = n.id AND d.subscription_id = s.id)"
        " ORDER BY n.id, s.id LIMIT ?",
        (now_text(), older_than, newer_than, after[0], after[0], after[1], BATCH),
    )
    return [
        DevicePush(
            notification_id=int(r["id"]),
            user_id=int(r["user_id"]),
            event=r["event"],
            key=r["key"],
            data=r["data"],
            subscription=Subscription(int(r["sid"]), r["endpoint"], r["p256dh"], r["auth"]),
        )
        for r in rows
    ]


# The status of a claim for a push not sent because its person turned push off for the event.
MUTED = -1


async def claim(
    db: Database, notification_id: int, subscription_id: int, status: int | None = None
) -> bool:
    """True for exactly one caller, whatever the number of processes."""
    rows = await db.write_statement(
        "INSERT INTO push_deliveries (notification_id, subscription_id, claimed_at, status)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING notification_id",
        (notification_id, subscription_id, now_text(), status),
    )
    return bool(rows)


async def record(db: Database, notification_id: int, subscription_id: int, status: int) -> bool:
    """Store the push service's answer; True when this was the notification's first push."""
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE push_deliveries SET status = ?"
            " WHERE notification_id = ? AND subscription_id = ?",
            (status, notification_id, subscription_id),
        )
        if 200 <= status < 300:
            result = await tx.execute(
                "UPDATE notifications SET pushed_at = ? WHERE id = ? AND pushed_at IS NULL",
                (now_text(), notification_id),
            )
            return result.rowcount == 1
    return False
