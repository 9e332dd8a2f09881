"""Per-user notification preferences: which events pop up in the browser.

The server stores and delivers every notification whatever these say. They only tell the
browser client whether to show a toast (`in_app`) or a desktop notification (`desktop`) when
one arrives. No stored row means the default, both on. Critical events cannot be muted: they
read as on, and are stored as on whatever is submitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import Database, placeholders


@dataclass(frozen=True, slots=True)
class EventKind:
    """An event a person can get, as the settings page shows it."""

    name: str  # the notification's `event` (`data.type`)
    label: str
    always_on_reason: str = ""  # set for critical events, shown next to their boxes

    @property
    def critical(self) -> bool:
        return bool(self.always_on_reason)


# In display order.
EVENTS: tuple[EventKind, ...] = (
    EventKind("new_booking", "A client books one of your services"),
    EventKind("booking_accepted", "A provider accepts your booking"),
    EventKind("booking_declined", "A provider declines your booking"),
    EventKind(
        "booking_cancelled",
        "A booking is cancelled",
        "Always on: you need to know when a booking is cancelled",
    ),
    EventKind("booking_completed", "A provider marks your booking completed"),
    EventKind("payment_received", "You receive a payment"),
    EventKind("payment_confirmed", "Your payment goes through"),
    EventKind(
        "payment_failed",
        "Your payment fails",
        "Always on: you need to know when a payment fails",
    ),
    EventKind("payment_refunded", "A provider refunds your payment"),
    EventKind("new_review", "A client reviews one of your services"),
    EventKind("new_message", "Someone sends you a message about a booking"),
    EventKind("notification", "General notices"),
)
EVENT_NAMES: frozenset[str] = frozenset(event.name for event in EVENTS)
CRITICAL_EVENTS: frozenset[str] = frozenset(event.name for event in EVENTS if event.critical)


@dataclass(frozen=True, slots=True)
class Preference:
    in_app: bool
    desktop: bool
    push: bool = True
    email: bool = True


DEFAULT = Preference(in_app=True, desktop=True)
CHANNELS = ("in_app", "desktop", "push", "email")


def _effective(event: str, preference: Preference) -> Preference:
    return DEFAULT if event in CRITICAL_EVENTS else preference


async def get_preferences(db: Database, user_id: int) -> dict[str, Preference]:
    """Every event, in display order, with defaults filled in (one query)."""
    rows = await db.fetch_all(
        "SELECT event, in_app, desktop, push, email FROM notification_preferences"
        " WHERE user_id = ?",
        (user_id,),
    )
    stored = {
        row[0]: Preference(bool(row[1]), bool(row[2]), bool(row[3]), bool(row[4])) for row in rows
    }
    return {e.name: _effective(e.name, stored.get(e.name, DEFAULT)) for e in EVENTS}


async def save_preferences(db: Database, user_id: int, prefs: dict[str, Preference]) -> None:
    """Store the given events' preferences in one transaction; critical ones as on.

    Raises ValueError for an event that is not in `EVENTS` (callers filter what people send).
    """
    unknown = set(prefs) - EVENT_NAMES
    if unknown:
        raise ValueError(f"unknown notification events: {sorted(unknown)}")
    rows = [
        (user_id, event, int(pref.in_app), int(pref.desktop), int(pref.push), int(pref.email))
        for event, pref in ((e, _effective(e, p)) for e, p in prefs.items())
    ]
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO notification_preferences (user_id, event, in_app, desktop, push, email)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, event)"
            " DO UPDATE SET in_app = excluded.in_app, desktop = excluded.desktop,"
            " push = excluded.push, email = excluded.email",
            rows,
        )


async def muted_events(db: Database, channel: str, user_id: int) -> list[str]:
    """The events the person turned `channel` (push or email) off for; never a critical one."""
    if channel not in ("push", "email"):
        return []
    rows = await db.fetch_all(
        f"SELECT event FROM notification_preferences WHERE user_id = ? AND {channel} = 0",
        (user_id,),
    )
    return sorted(r[0] for r in rows if r[0] not in CRITICAL_EVENTS)


async def muted_channel(
    db: Database, channel: str, pairs: set[tuple[int, str]]
) -> set[tuple[int, str]]:
    """The (user, event) pairs among these whose person turned `channel` (push or email) off
    for that event; critical events are never muted."""
    if channel not in ("push", "email") or not pairs:
        return set()
    users = sorted({user_id for user_id, _ in pairs})
    marks = placeholders(len(users))
    rows = await db.fetch_all(
        f"SELECT user_id, event FROM notification_preferences WHERE {channel} = 0"
        f" AND user_id IN ({marks})",
        users,
    )
    return {
        (int(r[0]), r[1])
        for r in rows
        if (int(r[0]), r[1]) in pairs and r[1] not in CRITICAL_EVENTS
    }


def to_client(prefs: dict[str, Preference]) -> dict[str, dict[str, bool]]:
    """What the browser client gets: `{"new_booking": {"in_app": true, "desktop": false}, ...}`."""
    return {event: {"in_app": p.in_app, "desktop": p.desktop} for event, p in prefs.items()}
