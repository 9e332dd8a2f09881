"""Client frames about conversations: `send_message`, `read`, `typing`, `view`
(docs/conversations.md). Refusals are `BadFrame`s, which the session turns into error frames
naming the frame's client_msg_id."""

from __future__ import annotations

from app.conversations.service import ConversationService, conversation_key
from app.conversations.store import others_of
from app.conversations.text import MAX_LENGTH, MessageRefused
from app.db import Database
from app.errors import NotFound
from app.realtime.connection import Connection, Outbound
from app.realtime.hub import Hub
from app.realtime.presence import PresenceTracker, presence_frame, presence_topic
from app.realtime.protocol import BadFrame, ClientFrame
from app.realtime.session import FrameHandler

MAX_VIEWS = 10
# Generous: the text's own limit is checked with a clear message after trimming.
_MAX_RAW_BODY = MAX_LENGTH * 2


class ConversationFrames:
    TYPES = frozenset({"send_message", "read", "typing", "view"})

    def __init__(
        self,
        db: Database,
        conversations: ConversationService,
        hub: Hub,
        presence: PresenceTracker,
    ) -> None:
        self._db = db
        self._conversations = conversations
        self._hub = hub
        self._presence = presence

    async def __call__(self, conn: Connection, frame: ClientFrame) -> None:
        try:
            if frame.type == "send_message":
                body = frame.text_field("body", _MAX_RAW_BODY)
                await self._conversations.send(
                    conn.user_id, frame.id_field("booking_id"), body, frame.client_msg_id
                )
            elif frame.type == "read":
                await self._conversations.read(
                    conn.user_id, frame.id_field("booking_id"), frame.id_field("seq")
                )
            elif frame.type == "typing":
                await self._typing(conn, frame.id_field("booking_id"))
            elif frame.type == "view":
                await self._view(conn, frame.id_list("booking_ids", MAX_VIEWS))
        except MessageRefused as exc:
            raise BadFrame(exc.code, exc.message) from None
        except NotFound as exc:
            raise BadFrame("not_found", exc.message) from None

    async def _typing(self, conn: Connection, booking_id: int) -> None:
        if not self._conversations.typing_allowed(conn.user_id, booking_id):
            return  # dropped quietly: the client throttles, extra ones carry nothing new
        parties = await self._conversations.parties(booking_id, conn.user_id)
        await self._conversations.typing(conn.user_id, parties.my_name, booking_id)

    async def _view(self, conn: Connection, booking_ids: list[int]) -> None:
        """The socket now shows exactly these conversations: it hears their typing and their
        other party's presence, and its person counts as looking at them."""
        wanted = sorted(set(booking_ids))
        others = await others_of(self._db, wanted, conn.user_id)
        if len(others) != len(wanted):
            raise NotFound("That booking does not exist.")
        topics = [conversation_key(b) for b in wanted]
        topics += [presence_topic(other) for other in sorted(set(others.values()))]
        self._hub.set_topics(conn, topics)
        await self._presence.flush()
        states = await self._presence.states(sorted(set(others.values())))
        for user_id, state in states.items():
            await conn.send(Outbound(presence_frame(user_id, state), droppable=True))


class FrameRouter:
    """The session's frame handler: each frame type to the side that owns it."""

    def __init__(self, default: FrameHandler, routes: dict[str, FrameHandler]) -> None:
        self._default = default
        self._routes = routes

    async def __call__(self, conn: Connection, frame: ClientFrame) -> None:
        await self._routes.get(frame.type, self._default)(conn, frame)
