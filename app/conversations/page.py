"""The conversation section of the booking page: what its template needs."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from app import keys
from app.conversations import store
from app.forms import cursor


async def conversation_context(
    request: web.Request, booking_id: int, user_id: int, *, draft: str = "", error: str = ""
) -> dict[str, Any]:
    """What the booking page's conversation section needs."""
    db = request.config_dict[keys.DB]
    parties = await store.parties(db, booking_id, user_id)
    before = cursor(request.query.get("before"))
    thread = await store.thread(db, parties, before=before)
    tracker = request.config_dict[keys.PRESENCE]
    states = await tracker.states([parties.other])
    mine = [m.seq for m in thread.messages if m.sender_id == user_id]
    seen = max((seq for seq in mine if seq <= thread.other_read_seq), default=0)
    return {
        "conversation": {
            "parties": parties,
            "thread": thread,
            "presence": states.get(parties.other),
            "seen_seq": seen,
            "paged": before is not None,
            "draft": draft,
            "error": error,
            # A double submit of one rendered form posts once.
            "client_msg_id": secrets.token_urlsafe(16),
        }
    }
