"""Notifications: the service API that domain code calls (stored first, published only after
commit, rolled back with the change that caused it), and the inbox page with its read marks.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
from typing import Any

import pytest
from aiohttp import web

from app import keys
from app.db import Database, SqliteDatabase, current_transaction
from app.notifications.service import NotificationService
from app.realtime.messages import BrokerMessage, Delivery
from tests.conftest import Browser
from tests.flows import accepted_booking, act, book, create_service, id_from_location, pay

_BADGE = re.compile(r"data-unread-badge>(\d+)<")


def main_content(page: str) -> str:
    """The page's own content, without the header (whose dropdown repeats the latest)."""
    return page[page.index("<main") : page.index("</main>")]


def inbox_list(page: str) -> str:
    """The inbox's own list, without the header dropdown (which lists the latest too)."""
    start = page.index("data-inbox-list")
    return page[start : page.index("</ul>", start)]


def badge(page: str) -> int | None:
    """The unread count the header shows, or None when it shows no badge."""
    match = _BADGE.search(page)
    return None if match is None else int(match.group(1))


def notifier(app: web.Application) -> NotificationService:
    return app[keys.NOTIFIER]


def transaction_open(db: Database) -> bool:
    """Whether a write transaction is open right now: on SQLite its one writer connection says
    so; on PostgreSQL (a transaction per connection) the publishing task's own is what counts."""
    if isinstance(db, SqliteDatabase):
        return db.writer.in_transaction
    return current_transaction() is not None


def listen(app: web.Application, db: Database) -> list[tuple[list[int], bool]]:
    """Record each published batch (its ids) and whether a transaction was still open then."""
    heard: list[tuple[list[int], bool]] = []

    def subscriber(message: BrokerMessage) -> None:
        if isinstance(message, Delivery):
            ids = [row[0] for group in message.groups for row in group.rows]
            heard.append((ids, transaction_open(db)))

    app[keys.BROKER].subscribe(subscriber)
    return heard


async def stored(db: Database, notification_id: int) -> dict[str, Any] | None:
    row = await db.fetch_one("SELECT * FROM notifications WHERE id = ?", (notification_id,))
    return None if row is None else dict(row)


async def outside(db: Database, sql: str, *params: object) -> Any:
    """A read as another request would make it: not inside this task's transaction."""
    task = asyncio.get_running_loop().create_task(
        db.fetch_value(sql, params), context=contextvars.Context()
    )
    return await task


async def count_for(db: Database, user_id: int | None) -> int:
    return int(
        await db.fetch_value("SELECT count(*) FROM notifications WHERE user_id = ?", (user_id,))
    )


# --- the service API ----------------------------------------------------------------------


async def test_send_to_user_stores_the_notification_and_returns_it_with_its_id(
    app: web.Application, db: Database, provider: Browser
) -> None:
    data = {
        "message": "Grüße — 你好 ✓",
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
        "big": 2**53,
    }

    notification = await notifier(app).send_to_user(
        provider.user_id or 0, "notification", data, key="notice:welcome"
    )

    assert notification.id > 0
    assert (notification.user_id, notification.type, notification.event) == (
        provider.user_id,
        "notification",
        "notification",
    )
    assert notification.key == "notice:welcome"
    assert notification.data == data
    row = await stored(db, notification.id)
    assert row is not None
    assert (row["user_id"], row["type"], row["event"], row["key"]) == (
        provider.user_id,
        "notification",
        "notification",
        "notice:welcome",
    )
    assert json.loads(row["data"]) == data
    assert (row["read_at"], row["seen_at"]) == (None, None)


async def test_send_booking_update_keys_the_notification_by_its_booking(
    app: web.Application, db: Database, client_browser: Browser
) -> None:
    data = {"type": "booking_accepted", "booking_id": 42, "message": "Accepted."}

    notification = await notifier(app).send_booking_update(client_browser.user_id or 0, data)

    assert (notification.type, notification.event, notification.key) == (
        "booking_update",
        "booking_accepted",
        "booking:42",
    )
    assert notification.data == data
    row = await stored(db, notification.id)
    assert row is not None and (row["type"], row["event"], row["key"]) == (
        "booking_update",
        "booking_accepted",
        "booking:42",
    )
    assert json.loads(row["data"]) == data


async def test_send_payment_update_keys_the_notification_by_its_payment(
    app: web.Application, db: Database, client_browser: Browser
) -> None:
    data = {"type": "payment_received", "payment_id": 7, "booking_id": 42, "amount": "150.00"}

    notification = await notifier(app).send_payment_update(client_browser.user_id or 0, data)

    assert (notification.type, notification.event, notification.key) == (
        "payment_update",
        "payment_received",
        "payment:7",
    )
    row = await stored(db, notification.id)
    assert row is not None and json.loads(row["data"]) == data
    assert row["key"] == "payment:7"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"booking_id": True}, None),
        ({"booking_id": "42"}, None),
        ({"payment_id": 3.0}, None),
        ({}, None),
    ],
)
async def test_only_integer_ids_make_a_collapse_key(
    app: web.Application, provider: Browser, data: dict[str, Any], key: str | None
) -> None:
    notification = await notifier(app).send_to_user(provider.user_id or 0, "notification", data)

    assert notification.key == key


async def test_ids_and_seqs_increase_with_every_notification_of_each_user(
    app: web.Application, db: Database, provider: Browser, client_browser: Browser
) -> None:
    users = [provider.user_id or 0, client_browser.user_id or 0]

    one_by_one = [
        await notifier(app).send_to_user(users[i % 2], "notification", {"message": str(i)})
        for i in range(4)
    ]
    at_once = await asyncio.gather(
        *(
            notifier(app).send_to_user(users[i % 2], "notification", {"message": f"g{i}"})
            for i in range(6)
        )
    )
    together = await notifier(app).send_to_users(users, "notification", {"message": "both"})

    sent = [*one_by_one, *at_once, *together]
    assert len({n.id for n in sent}) == 12
    assert [n.user_id for n in together] == users
    for user in users:
        # Per user (what the wire protocol promises): ids and seqs grow in call order, and
        # seqs have no hole. Across users, a batch is stored in user order.
        mine = [n for n in sent if n.user_id == user]
        assert [n.id for n in mine] == sorted(n.id for n in mine)
        assert [n.seq for n in mine] == list(range(1, 7))
        rows = await db.fetch_all(
            "SELECT id, seq, data FROM notifications WHERE user_id = ? ORDER BY id", (user,)
        )
        assert [(r["id"], r["seq"]) for r in rows] == [(n.id, n.seq) for n in mine]
        assert [json.loads(r["data"])["message"] for r in rows] == [
            json.loads(n.raw_data)["message"] for n in mine
        ]


async def test_a_notification_that_cannot_be_stored_is_refused_and_nothing_is_written(
    app: web.Application, db: Database, provider: Browser
) -> None:
    with pytest.raises(ValueError, match="unknown notification type"):
        await notifier(app).send_to_user(provider.user_id or 0, "gossip", {"message": "x"})
    with pytest.raises(ValueError):
        await notifier(app).send_to_user(
            provider.user_id or 0, "notification", {"amount": float("nan")}
        )

    assert await count_for(db, provider.user_id) == 0


async def test_a_standalone_send_is_published_once_and_only_after_its_commit(
    app: web.Application, db: Database, provider: Browser
) -> None:
    heard = listen(app, db)

    notification = await notifier(app).send_to_user(
        provider.user_id or 0, "notification", {"message": "hi"}
    )

    assert heard == [([notification.id], False)]


async def test_a_send_inside_a_transaction_is_published_only_after_that_transaction_commits(
    app: web.Application, db: Database, provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    heard = listen(app, db)

    async with db.transaction() as tx:
        await tx.execute("UPDATE bookings SET status = 'accepted' WHERE id = ?", (booking_id,))
        notification = await notifier(app).send_booking_update(
            client_browser.user_id or 0, {"type": "booking_accepted", "booking_id": booking_id}
        )
        assert heard == []  # stored in this transaction, not yet told to anyone
        # Another request, outside this transaction, cannot see the row yet.
        assert (
            await outside(db, "SELECT count(*) FROM notifications WHERE id = ?", notification.id)
            == 0
        )

    assert heard == [([notification.id], False)]
    assert await db.fetch_value("SELECT status FROM bookings WHERE id = ?", (booking_id,)) == (
        "accepted"
    )
    row = await stored(db, notification.id)
    assert row is not None and row["event"] == "booking_accepted"


async def test_a_rolled_back_transaction_takes_its_notification_with_it_and_publishes_nothing(
    app: web.Application, db: Database, provider: Browser, client_browser: Browser
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    before = await count_for(db, client_browser.user_id)
    heard = listen(app, db)

    with pytest.raises(RuntimeError, match="card network down"):
        async with db.transaction() as tx:
            await tx.execute("UPDATE bookings SET status = 'accepted' WHERE id = ?", (booking_id,))
            notification = await notifier(app).send_booking_update(
                client_browser.user_id or 0, {"type": "booking_accepted", "booking_id": booking_id}
            )
            raise RuntimeError("card network down")

    assert heard == []
    assert await stored(db, notification.id) is None
    assert await count_for(db, client_browser.user_id) == before
    assert await db.fetch_value("SELECT status FROM bookings WHERE id = ?", (booking_id,)) == (
        "pending"
    )
    assert badge(await client_browser.page("/services")) is None


async def test_a_booking_change_whose_notification_fails_is_not_made(
    app: web.Application,
    db: Database,
    provider: Browser,
    client_browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booking_id = await book(client_browser, await create_service(provider))
    heard = listen(app, db)

    async def broken(self: NotificationService, user_id: int, data: dict[str, Any]) -> Any:
        raise RuntimeError("notification store unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(NotificationService, "send_booking_update", broken)
        response = await provider.post(f"/bookings/{booking_id}/accept")

    assert response.status == 500
    assert await db.fetch_value("SELECT status FROM bookings WHERE id = ?", (booking_id,)) == (
        "pending"
    )
    assert await count_for(db, client_browser.user_id) == 0
    assert heard == []
    # Nothing was left half-done or locked: the same click works once notifying works again.
    assert (await provider.post(f"/bookings/{booking_id}/accept")).status == 303
    assert await count_for(db, client_browser.user_id) == 1
    assert len(heard) == 1


# --- the inbox page -----------------------------------------------------------------------


async def test_the_inbox_lists_newest_first_and_marks_unread_ones(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    first = await book(client_browser, await create_service(provider, name="First Job"))
    second = await book(client_browser, await create_service(provider, name="Second Job"))

    page = await provider.page("/notifications")

    assert page.index("booked Second Job") < page.index("booked First Job")
    ids = [int(i) for i in re.findall(r'data-notification-id="(\d+)"', inbox_list(page))]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    assert page.count('class="card notification unread"') == 2
    assert page.count('<span class="tag">Unread</span>') == 2
    assert f'data-key="booking:{second}"' in page and f'data-key="booking:{first}"' in page
    assert f'href="/notifications/{ids[0]}"' in page


async def test_listing_the_inbox_marks_notifications_seen_but_not_read(
    app: web.Application, db: Database, provider: Browser
) -> None:
    user_id = provider.user_id or 0
    sent = [
        await notifier(app).send_to_user(user_id, "notification", {"message": f"n{i}"})
        for i in range(22)
    ]

    page = await provider.page("/notifications")

    assert badge(page) == 22
    rows = await db.fetch_all(
        "SELECT id, seen_at, read_at FROM notifications WHERE user_id = ? ORDER BY id", (user_id,)
    )
    on_page = {n.id for n in sent[2:]}
    assert all(r["read_at"] is None for r in rows)
    assert {r["id"] for r in rows if r["seen_at"] is not None} == on_page
    assert page.count('class="card notification unread"') == 20
    assert badge(await provider.page("/services")) == 22


async def test_the_inbox_shows_twenty_at_a_time_with_a_load_more_cursor(
    app: web.Application, provider: Browser
) -> None:
    sent = [
        await notifier(app).send_to_user(
            provider.user_id or 0, "notification", {"message": f"Notice number {i}."}
        )
        for i in range(1, 26)
    ]
    cursor = sent[5].id  # "Notice number 6.", the oldest on the first page

    first = await provider.page("/notifications")
    # Newer notifications arriving meanwhile do not shift the next page (a cursor, not a number).
    await notifier(app).send_to_user(provider.user_id or 0, "notification", {"message": "Late."})
    second = await provider.page(f"/notifications?before={cursor}")
    fragment = await provider.page(f"/notifications?before={cursor}&fragment=1")

    assert inbox_list(first).count("data-notification-id=") == 20
    assert inbox_list(second).count("data-notification-id=") == 5
    assert "Notice number 25." in first and "Notice number 6." in first
    assert "Notice number 5." not in first
    assert all(f"Notice number {i}." in inbox_list(second) for i in range(1, 6))
    assert "Notice number 6." not in inbox_list(second) and "Late." not in inbox_list(second)
    assert f'<a class="button" rel="next" href="/notifications?before={cursor}"' in first
    assert "Load more" not in second and "Back to the newest" in second
    # The fragment the script appends: the same items, no page around them.
    assert "<html" not in fragment and "data-rt-list" not in fragment
    assert fragment.count("data-notification-id=") == 5 and "Load more" not in fragment
    assert "Notice number 1." in fragment and "csrf_token" in fragment
    # A cursor that is not an id reads as the newest page.
    assert "Notice number 25." in await provider.page("/notifications?before=abc")


async def test_the_inbox_filters_by_kind_and_keeps_the_filter_across_pages(
    app: web.Application, provider: Browser
) -> None:
    user_id = provider.user_id or 0
    service = notifier(app)
    await service.send_booking_update(user_id, {"type": "new_booking", "message": "A booking."})
    for i in range(21):
        await service.send_payment_update(
            user_id, {"type": "payment_received", "message": f"Payment {i}."}
        )
    await service.send_to_user(user_id, "notification", {"message": "A notice."})

    payments = await provider.page("/notifications?kind=payment_update")
    bookings = await provider.page("/notifications?kind=booking_update")
    everything = await provider.page("/notifications?kind=nonsense")

    assert inbox_list(payments).count("data-notification-id=") == 20
    assert "A booking." not in inbox_list(payments) and "A notice." not in inbox_list(payments)
    assert "/notifications?kind=payment_update&amp;before=" in payments
    assert 'href="/notifications?kind=payment_update" aria-current="page"' in payments
    assert inbox_list(bookings).count("data-notification-id=") == 1 and "A booking." in bookings
    assert "A notice." in everything and "Load more" in everything


async def test_marking_one_notification_read_sets_read_at_and_lowers_the_badge(
    app: web.Application, db: Database, provider: Browser
) -> None:
    user_id = provider.user_id or 0
    one, two = [
        await notifier(app).send_to_user(user_id, "notification", {"message": m})
        for m in ("one", "two")
    ]
    assert badge(await provider.page("/notifications")) == 2

    response = await provider.post(
        f"/notifications/{one.id}/read",
        headers={"Referer": str(provider.client.make_url("/notifications?page=1"))},
    )

    assert response.status == 303
    assert response.headers["Location"] == "/notifications?page=1"
    row_one, row_two = await stored(db, one.id), await stored(db, two.id)
    assert row_one is not None and row_one["read_at"] is not None
    assert row_one["seen_at"] is not None
    assert row_two is not None and row_two["read_at"] is None
    page = await provider.page("/notifications")
    assert badge(page) == 1
    assert page.count('class="card notification unread"') == 1
    assert f'action="/notifications/{one.id}/read"' not in page
    assert f'action="/notifications/{two.id}/read"' in page


async def test_marking_read_never_redirects_to_another_site(
    app: web.Application, provider: Browser
) -> None:
    notification = await notifier(app).send_to_user(
        provider.user_id or 0, "notification", {"message": "x"}
    )

    response = await provider.post(
        f"/notifications/{notification.id}/read",
        headers={"Referer": "https://evil.example/notifications"},
    )

    assert response.status == 303
    assert response.headers["Location"] == "/notifications"


async def test_mark_all_read_clears_the_badge_on_every_page(
    provider: Browser, client_browser: Browser, db: Database
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    await pay(client_browser, booking_id)
    assert await act(provider, booking_id, "complete") == 303
    paths = ["/services", "/bookings", "/my/services", "/notifications", f"/bookings/{booking_id}"]
    before = [badge(await client_browser.page(path)) for path in paths]
    assert before == [3] * len(paths)
    assert "Mark all read" in main_content(await client_browser.page("/notifications"))
    provider_unread = badge(await provider.page("/services"))

    response = await client_browser.post("/notifications/read-all")

    assert response.status == 303
    assert response.headers["Location"] == "/notifications"
    assert [badge(await client_browser.page(path)) for path in paths] == [None] * len(paths)
    unread = await db.fetch_value(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND read_at IS NULL",
        (client_browser.user_id,),
    )
    assert unread == 0
    inbox = await client_browser.page("/notifications")
    assert "Mark all read" not in main_content(inbox) and "notification unread" not in inbox
    # The other person's unread notifications are untouched.
    assert badge(await provider.page("/services")) == provider_unread == 2


async def test_opening_a_notification_marks_it_read_and_goes_to_its_booking_or_payment(
    app: web.Application, db: Database, provider: Browser, client_browser: Browser
) -> None:
    booking_id = await accepted_booking(provider, client_browser)
    status, location = await pay(client_browser, booking_id)
    assert status == 303
    payment_id = id_from_location(location)
    rows = await db.fetch_all(
        "SELECT id, event FROM notifications WHERE user_id = ? ORDER BY id",
        (client_browser.user_id,),
    )
    by_event = {r["event"]: r["id"] for r in rows}
    notice = await notifier(app).send_to_user(
        client_browser.user_id or 0, "notification", {"message": "Welcome"}
    )

    to_booking = await client_browser.get(f"/notifications/{by_event['booking_accepted']}")
    to_payment = await client_browser.get(f"/notifications/{by_event['payment_confirmed']}")
    to_inbox = await client_browser.get(f"/notifications/{notice.id}")

    assert to_booking.status == to_payment.status == to_inbox.status == 303
    assert to_booking.headers["Location"] == f"/bookings/{booking_id}"
    assert to_payment.headers["Location"] == f"/payments/{payment_id}"
    assert to_inbox.headers["Location"] == "/notifications"
    for notification_id in (by_event["booking_accepted"], by_event["payment_confirmed"], notice.id):
        row = await stored(db, notification_id)
        assert row is not None and row["read_at"] is not None
    assert badge(await client_browser.page("/services")) is None


async def test_another_users_notification_cannot_be_opened_or_marked_read(
    app: web.Application, db: Database, provider: Browser, stranger: Browser
) -> None:
    notification = await notifier(app).send_to_user(
        provider.user_id or 0, "notification", {"message": "Private"}
    )
    before = await stored(db, notification.id)

    opened = await stranger.get(f"/notifications/{notification.id}")
    marked = await stranger.post(f"/notifications/{notification.id}/read")
    await stranger.post("/notifications/read-all")
    inbox = await stranger.page("/notifications")

    assert opened.status == marked.status == 404
    assert "That notification does not exist." in await opened.text()
    assert await stored(db, notification.id) == before
    assert "Private" not in inbox
    assert badge(await provider.page("/services")) == 1


async def test_a_script_in_a_notification_message_is_shown_as_text_in_the_inbox(
    app: web.Application, provider: Browser
) -> None:
    payload = "<img src=x onerror=alert(1)>"
    await notifier(app).send_to_user(provider.user_id or 0, "notification", {"message": payload})

    page = await provider.page("/notifications")

    assert payload not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
