"""The WebSocket wire protocol: frames the server sends, and strict parsing of client frames.

Server -> client (JSON text; notification frames carry the stored id, control frames id null):

| type                | fields                                                          |
| ------------------- | --------------------------------------------------------------- |
| welcome             | user_id, heartbeat (s), unread, last_id, last_seq               |
| booking_update ...  | id, seq, key, unread, data, created_at (a stored notification)  |
| replay_truncated    | skipped, last_id, last_seq (only the newest are replayed)       |
| replay_done         | count, last_id, last_seq (the replay after a resume is complete) |
| ping / pong         |                                                                 |
| notification_read   | ids (null: all), unread                                         |
| notification_seen   | ids                                                             |
| ack                 | client_msg_id (that client message was applied, once)           |
| reconnect           | delay_ms (server shutting down: reconnect after this delay)     |
| error               | code, message                                                   |

| typing / presence   | ephemeral, never stored (docs/conversations.md)                 |

Client -> server: ping, pong, resume {last_seq or last_id}, ack {id}, mark_read {ids},
mark_seen {ids}, mark_all_read, and the conversation frames send_message, read, typing, view
(docs/conversations.md); any of them may carry client_msg_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import strictjson
from app.realtime.messages import DeliveryGroup

MAX_FRAME_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_IDS = 500
MAX_CLIENT_MSG_ID = 64
CLIENT_TYPES = frozenset(
    {
        "ping",
        "pong",
        "resume",
        "ack",
        "mark_read",
        "mark_seen",
        "mark_all_read",
        # conversations (docs/conversations.md)
        "send_message",
        "read",
        "typing",
        "view",
    }
)


_dumps = strictjson.dumps


def control(type: str, **fields: Any) -> str:
    return _dumps({"type": type, "id": None, **fields})


PING = control("ping")
PONG = control("pong")


def welcome(
    user_id: int,
    heartbeat: float,
    unread: int,
    last_id: int,
    last_seq: int,
    counts: tuple[tuple[str, int], ...] = (),
) -> str:
    """`counts`: the store's other per-user counters (`unread_messages`), as extra fields."""
    heartbeat = int(heartbeat) if float(heartbeat).is_integer() else heartbeat
    return control(
        "welcome",
        user_id=user_id,
        heartbeat=heartbeat,
        unread=unread,
        last_id=last_id,
        last_seq=last_seq,
        **dict(counts),
    )


def error(code: str, message: str, client_msg_id: str | None = None) -> str:
    """A refusal; one that names a `client_msg_id` tells the client's outbox to drop it."""
    if client_msg_id is None:
        return control("error", code=code, message=message)
    return control("error", code=code, message=message, client_msg_id=client_msg_id)


class FrameTemplate:
    """The text every frame of one delivery group shares, encoded once: a fan-out to 5,000
    sockets formats 5,000 short strings and encodes nothing."""

    __slots__ = ("_head", "_tail")

    def __init__(self, group: DeliveryGroup) -> None:
        self._head = f',"type":{_dumps(group.type)},"key":{_dumps(group.key)},"unread":'
        self._tail = f',"data":{group.raw_data},"created_at":{_dumps(group.created_at)}}}'

    def render(self, notification_id: int, seq: int, unread: int) -> str:
        """A stored notification's frame; `data` is its stored JSON text, passed through."""
        return f'{{"id":{notification_id},"seq":{seq}{self._head}{unread}{self._tail}'


class BadFrame(Exception):
    """A client frame we refuse; `code` goes into the error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ClientFrame:
    type: str
    body: dict[str, Any]
    client_msg_id: str | None

    def ids(self) -> list[int]:
        raw = self.body.get("ids")
        if not isinstance(raw, list) or len(raw) > MAX_IDS or not all(_is_id(i) for i in raw):
            raise BadFrame("bad_frame", f"'ids' must be a list of at most {MAX_IDS} ids")
        return list(raw)

    def has(self, name: str) -> bool:
        return name in self.body

    def text_field(self, name: str, max_length: int) -> str:
        value = self.body.get(name)
        if not isinstance(value, str) or len(value) > max_length:
            raise BadFrame("bad_frame", f"'{name}' must be a string")
        return value

    def id_list(self, name: str, max_items: int) -> list[int]:
        raw = self.body.get(name)
        if not isinstance(raw, list) or len(raw) > max_items or not all(_is_id(i) for i in raw):
            raise BadFrame("bad_frame", f"'{name}' must be a list of at most {max_items} ids")
        return list(raw)

    def id_field(self, name: str) -> int:
        value = self.body.get(name)
        if not isinstance(value, int) or not _is_id(value):
            raise BadFrame("bad_frame", f"'{name}' must be a non-negative integer")
        return value


def _is_id(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63


def parse_client_frame(text: str) -> ClientFrame:
    if len(text) > MAX_FRAME_BYTES:
        raise BadFrame("too_big", "the frame is too big")
    try:
        value = strictjson.loads(text, MAX_DEPTH)
    except strictjson.JSONRejected as exc:
        raise BadFrame("bad_json", f"bad JSON: {exc.message}") from None
    if not isinstance(value, dict):
        raise BadFrame("bad_frame", "a frame is a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise BadFrame("unknown_type", f"unknown frame type {str(kind)[:40]!r}")
    msg_id = value.get("client_msg_id")
    if msg_id is not None and (
        not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_CLIENT_MSG_ID
    ):
        raise BadFrame("bad_frame", "'client_msg_id' must be a short string")
    return ClientFrame(kind, value, msg_id)
