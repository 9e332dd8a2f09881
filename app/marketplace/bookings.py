"""Bookings: the state machine, its queries, and the notifications each change sends.

    pending --accept--> accepted --complete--> completed
    pending --decline-> declined
    pending | accepted --cancel--> cancelled      (either party; not once paid)

Each change is a conditional `UPDATE ... WHERE status IN (...)` inside one transaction that
also stores the notification, so of two racing changes exactly one wins and exactly one
notification is written. The transaction first locks the booking (`booking:ID`, as paying
does), so the checks it makes before that update see every change committed before it: the
loser of a race is refused for the state the winner left, on PostgreSQL as on SQLite.

Only the two parties can see a booking: for anyone else it does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.clock import now_text, utc_now
from app.db import Database, Row
from app.errors import Conflict, Forbidden, NotFound
from app.notifications.service import NotificationService


class Status(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class Role(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[Status, ...]
    target: Status
    roles: tuple[Role, ...]
    event: str
    past: str  # "accepted", for refusals: "it cannot be accepted"
    # What the other party reads: "{actor} accepted {whose} booking of {service} on {when}."
    told: str

    def message(self, actor: str, actor_role: Role, service: str, when: str) -> str:
        # The recipient is the other party: the provider's booking is the client's own.
        whose = "their" if actor_role is Role.CLIENT else "your"
        return self.told.format(actor=actor, whose=whose, service=service, when=when)


TRANSITIONS = {
    t.action: t
    for t in (
        Transition(
            "accept",
            (Status.PENDING,),
            Status.ACCEPTED,
            (Role.PROVIDER,),
            "booking_accepted",
            "accepted",
            "{actor} accepted {whose} booking of {service} on {when}.",
        ),
        Transition(
            "decline",
            (Status.PENDING,),
            Status.DECLINED,
            (Role.PROVIDER,),
            "booking_declined",
            "declined",
            "{actor} declined {whose} booking of {service} on {when}.",
        ),
        Transition(
            "cancel",
            (Status.PENDING, Status.ACCEPTED),
            Status.CANCELLED,
            (Role.CLIENT, Role.PROVIDER),
            "booking_cancelled",
            "cancelled",
            "{actor} cancelled {whose} booking of {service} on {when}.",
        ),
        Transition(
            "complete",
            (Status.ACCEPTED,),
            Status.COMPLETED,
            (Role.PROVIDER,),
            "booking_completed",
            "marked as done",
            "{actor} marked {whose} booking of {service} on {when} as done.",
        ),
    )
}

_SELECT = (
    "SELECT b.*, c.name AS client_name, p.name AS provider_name,"
    " (SELECT status FROM payments WHERE booking_id = b.id ORDER BY id DESC LIMIT 1)"
    " AS payment_status,"
    " (SELECT id FROM payments WHERE booking_id = b.id ORDER BY id DESC LIMIT 1) AS payment_id"
    " FROM bookings b JOIN users c ON c.id = b.client_id JOIN users p ON p.id = b.provider_id"
)


@dataclass(frozen=True)
class Booking:
    id: int
    service_id: int
    client_id: int
    provider_id: int
    client_name: str
    provider_name: str
    service_name: str
    price_cents: int
    scheduled_at: str
    note: str
    status: Status
    created_at: str
    updated_at: str
    payment_status: str | None
    payment_id: int | None

    @classmethod
    def from_row(cls, row: Row) -> Booking:
        return cls(
            id=row["id"],
            service_id=row["service_id"],
            client_id=row["client_id"],
            provider_id=row["provider_id"],
            client_name=row["client_name"],
            provider_name=row["provider_name"],
            service_name=row["service_name"],
            price_cents=row["price_cents"],
            scheduled_at=row["scheduled_at"],
            note=row["note"],
            status=Status(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            payment_status=row["payment_status"],
            payment_id=row["payment_id"],
        )

    def role_of(self, user_id: int) -> Role:
        return Role.PROVIDER if user_id == self.provider_id else Role.CLIENT

    @property
    def is_paid(self) -> bool:
        return self.payment_status in ("succeeded", "pending")

    def actions_for(self, user_id: int) -> list[str]:
        """The actions `user_id` may take now, in display order."""
        role = self.role_of(user_id)
        allowed = [
            t.action for t in TRANSITIONS.values() if role in t.roles and self.status in t.sources
        ]
        if self.is_paid and "cancel" in allowed:
            allowed.remove("cancel")
        return allowed

    @property
    def payable(self) -> bool:
        return self.status in (Status.ACCEPTED, Status.COMPLETED) and self.payment_status in (
            None,
            "failed",
        )


def format_when(scheduled_at: str, *, weekday: bool = False, today: date | None = None) -> str:
    """'2026-12-03T10:00' -> '3 Dec, 10:00' ('Thu 3 Dec, 10:00' with `weekday`), with the year
    only when it is not this year: '3 Dec 2027, 10:00'.

    `scheduled_at` is the wall-clock time where the service happens (no zone), so it is shown
    as it is, never converted. Anything unexpected is shown as stored rather than failing."""
    try:
        moment = datetime.strptime(scheduled_at[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        return scheduled_at.replace("T", " ")
    day = f"{moment.day} {moment:%b}"
    if moment.year != (today or utc_now().date()).year:
        day += f" {moment.year}"
    if weekday:
        day = f"{moment:%a} {day}"
    return f"{day}, {moment:%H:%M}"


def booking_lock(booking_id: int) -> str:
    """The lock name serialising changes to one booking and its payments."""
    return f"booking:{booking_id}"


async def get_booking(db: Database, booking_id: int, user_id: int) -> Booking:
    """The booking if `user_id` is its client or provider; NotFound for anyone else."""
    row = await db.fetch_one(
        f"{_SELECT} WHERE b.id = ? AND (b.client_id = ? OR b.provider_id = ?)",
        (booking_id, user_id, user_id),
    )
    if row is None:
        raise NotFound("That booking does not exist.")
    return Booking.from_row(row)


async def list_bookings(db: Database, user_id: int, role: Role) -> list[Booking]:
    column = "b.provider_id" if role is Role.PROVIDER else "b.client_id"
    rows = await db.fetch_all(
        f"{_SELECT} WHERE {column} = ? ORDER BY b.id DESC LIMIT 200", (user_id,)
    )
    return [Booking.from_row(row) for row in rows]


async def create_booking(
    db: Database,
    notifier: NotificationService,
    *,
    client_id: int,
    service_id: int,
    scheduled_at: str,
    note: str,
) -> Booking:
    """Book a published service of someone else's; the provider hears of it."""
    now = now_text()
    async with db.transaction() as tx:
        service = await tx.fetch_one(
            "SELECT id, provider_id, name, price_cents FROM services"
            " WHERE id = ? AND published = 1",
            (service_id,),
        )
        if service is None:
            raise NotFound("That service does not exist or is no longer offered.")
        if service["provider_id"] == client_id:
            raise Conflict("You cannot book your own service.")
        booking_id = await tx.fetch_value(
            "INSERT INTO bookings (service_id, client_id, provider_id, service_name,"
            " price_cents, scheduled_at, note, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
            (
                service_id,
                client_id,
                service["provider_id"],
                service["name"],
                service["price_cents"],
                scheduled_at,
                note,
                now,
                now,
            ),
        )
        booking = await get_booking(db, int(booking_id), client_id)
        await notifier.send_booking_update(
            booking.provider_id,
            {
                "type": "new_booking",
                "booking_id": booking.id,
                "service_name": booking.service_name,
                "scheduled_at": booking.scheduled_at,
                "client_name": booking.client_name,
                "message": f"{booking.client_name} booked {booking.service_name}"
                f" for {format_when(booking.scheduled_at, weekday=True)}.",
            },
        )
    return booking


async def apply_action(
    db: Database, notifier: NotificationService, *, user_id: int, booking_id: int, action: str
) -> Booking:
    """Move the booking along `action`; Conflict when its state does not allow it now."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise NotFound()
    async with db.transaction() as tx:
        await tx.lock(booking_lock(booking_id))
        booking = await get_booking(db, booking_id, user_id)
        role = booking.role_of(user_id)
        if role not in transition.roles:
            raise Forbidden(f"Only the provider can {action} a booking.")
        if booking.status not in transition.sources:
            raise Conflict(
                f"This booking is {booking.status.value}, so it cannot be {transition.past}."
            )
        if action == "cancel" and booking.is_paid:
            raise Conflict(
                "This booking is paid. The provider can refund the payment first; "
                "then it can be cancelled."
            )
        placeholders = ", ".join("?" for _ in transition.sources)
        result = await tx.execute(
            f"UPDATE bookings SET status = ?, updated_at = ?,"
            f" cancelled_by = CASE WHEN ? = 'cancelled' THEN ? ELSE cancelled_by END"
            f" WHERE id = ? AND status IN ({placeholders})",
            (
                transition.target.value,
                now_text(),
                transition.target.value,
                user_id,
                booking_id,
                *(s.value for s in transition.sources),
            ),
        )
        if result.rowcount != 1:  # another process changed it between our read and write
            raise Conflict("This booking changed in the meantime. Reload and try again.")
        updated = await get_booking(db, booking_id, user_id)
        actor = updated.provider_name if role is Role.PROVIDER else updated.client_name
        recipient = updated.client_id if role is Role.PROVIDER else updated.provider_id
        await notifier.send_booking_update(
            recipient,
            {
                "type": transition.event,
                "booking_id": updated.id,
                "service_name": updated.service_name,
                "status": updated.status.value,
                "message": transition.message(
                    actor, role, updated.service_name, format_when(updated.scheduled_at)
                ),
            },
        )
    return updated
