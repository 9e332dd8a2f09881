"""Quiet hours: a local-time window in which push and email wait (critical events do not).

The window may wrap past midnight (22:00-07:00). Times are the person's local time in their
IANA time zone, so it follows daylight saving time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from app.db import Database, placeholders

_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: str | None  # 'HH:MM'
    end: str | None
    time_zone: str = "UTC"

    @property
    def enabled(self) -> bool:
        return self.start is not None and self.end is not None and self.start != self.end

    def quiet_at(self, moment: datetime) -> bool:
        """True when `moment` (aware) falls in the window, in the person's local time."""
        if not self.enabled or self.start is None or self.end is None:
            return False
        local = moment.astimezone(zone(self.time_zone)).time()
        start, end = parse_time(self.start), parse_time(self.end)
        if start < end:
            return start <= local < end
        return local >= start or local < end  # wraps past midnight


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_time(text: str) -> time:
    match = _HH_MM.fullmatch(text)
    if match is None:
        raise ValueError("a time is HH:MM, 00:00 to 23:59")
    return time(int(match.group(1)), int(match.group(2)))


def validate(start: str, end: str, time_zone: str) -> dict[str, str]:
    """Field name -> message for what is wrong (empty start and end: quiet hours off)."""
    errors: dict[str, str] = {}
    if bool(start) != bool(end):
        errors["quiet_start" if not start else "quiet_end"] = "Give both times, or neither."
    for name, value in (("quiet_start", start), ("quiet_end", end)):
        if value and _HH_MM.fullmatch(value) is None:
            errors[name] = "Use HH:MM, for example 22:00."
    if time_zone not in zone_names():
        errors["time_zone"] = "Choose a time zone such as Europe/Paris or America/New_York."
    return errors


async def quiet_hours_of(db: Database, user_ids: Sequence[int]) -> dict[int, QuietHours]:
    """Each user's quiet hours (users without any are left out)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    marks = placeholders(len(wanted))
    rows = await db.fetch_all(
        "SELECT id, quiet_start, quiet_end, time_zone FROM users"
        f" WHERE id IN ({marks}) AND quiet_start IS NOT NULL",
        wanted,
    )
    return {
        int(r["id"]): QuietHours(r["quiet_start"], r["quiet_end"], r["time_zone"]) for r in rows
    }


async def save_quiet_hours(db: Database, user_id: int, hours: QuietHours) -> None:
    await db.write_statement(
        "UPDATE users SET quiet_start = ?, quiet_end = ?, time_zone = ? WHERE id = ?",
        (hours.start, hours.end, hours.time_zone, user_id),
    )
