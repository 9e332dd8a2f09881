"""Broker messages as bytes on a Redis channel, and back.

One compact JSON object per message, its first two keys always `v` (the format version) and `o`
(the publishing process), so a process recognises its own messages by their first bytes
(`own_prefix`) and skips them without parsing: every process subscribes to every channel and
hears its own publishes back, and it has already delivered those locally.

    Delivery       {"v":1,"o":O,"t":"d","g":[[type,event,key,created_at,raw_data,[rows]],..]}
    Marked         {"v":1,"o":O,"t":"m","u":user_id,"m":mark,"i":[ids] or null,"n":unread}
    SessionsEnded  {"v":1,"o":O,"t":"s","s":[session ids]}
    Ephemeral      {"v":1,"o":O,"t":"e","x":exclude_user,"i":[[topic,frame text],..]}
    CatchUp        {"v":1,"o":O,"t":"c"}

`rows` is flat, four integers a row (id, user id, seq, unread): a bulk publish is thousands of
rows, and nested lists cost more to build and to parse. `raw_data` travels as a JSON string,
never parsed here: measured on a 5,000-row delivery and on a single-row one, embedding it costs
the same as splicing it raw after a header (within 5 %), and a string keeps the format one JSON
document. `CatchUp` is encoded only as a broker's own notice to its peers ("messages I published
may not have reached you: catch up from the store"); locally it is what the broker hands its
subscribers whenever it may have missed something.

A reader on a shared Redis may see anything on these channels: `decode` checks every field's
type and shape and raises `CodecError` (one type) for whatever is not a message it understands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.realtime.messages import (
    BrokerMessage,
    CatchUp,
    Delivery,
    DeliveryGroup,
    Ephemeral,
    Marked,
    Row,
    SessionsEnded,
)

VERSION = 1
_ROW_WIDTH = 4
# ASCII output: any str encodes (lone surrogates too), and the bytes are valid UTF-8.
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class CodecError(ValueError):
    """Bytes that are not a broker message of a version this process understands."""


@dataclass(frozen=True, slots=True)
class Envelope:
    origin: str
    message: BrokerMessage


def own_prefix(origin: str) -> bytes:
    """The first bytes of every message `origin` encodes."""
    return f'{{"v":{VERSION},"o":{_dumps(origin)},'.encode()


def encode(message: BrokerMessage, origin: str) -> bytes:
    head = f'{{"v":{VERSION},"o":{_dumps(origin)},'
    if isinstance(message, Delivery):
        groups = [
            [
                g.type,
                g.event,
                g.key,
                g.created_at,
                g.raw_data,
                [value for row in g.rows for value in row],
            ]
            for g in message.groups
        ]
        body = f'"t":"d","g":{_dumps(groups)}}}'
    elif isinstance(message, Marked):
        ids = None if message.ids is None else list(message.ids)
        body = (
            f'"t":"m","u":{_int_text(message.user_id)},"m":{_dumps(message.mark)},'
            f'"i":{_dumps(ids)},"n":{_int_text(message.unread)}}}'
        )
    elif isinstance(message, SessionsEnded):
        body = f'"t":"s","s":{_dumps(list(message.session_ids))}}}'
    elif isinstance(message, Ephemeral):
        items = [[topic, text] for topic, text in message.items]
        body = f'"t":"e","x":{_int_text(message.exclude_user)},"i":{_dumps(items)}}}'
    elif isinstance(message, CatchUp):
        body = '"t":"c"}'
    else:
        raise TypeError(f"not a broker message: {type(message).__name__}")
    return (head + body).encode()


def _int_text(value: int) -> str:
    # json would write True for a bool that slipped in; a wrong type must fail here, loudly.
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return str(value)


def decode(data: bytes | str) -> Envelope:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("not a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != VERSION:
        raise CodecError(f"unsupported version {version!r}")
    origin = _str(obj, "o")
    kind = obj.get("t")
    message: BrokerMessage
    if kind == "d":
        message = Delivery(tuple(_group(item) for item in _list(obj, "g")))
    elif kind == "m":
        ids = obj.get("i", ...)
        if ids is ...:
            raise CodecError("missing 'i'")
        message = Marked(
            user_id=_int(obj, "u"),
            mark=_str(obj, "m"),
            ids=None if ids is None else _ints(ids, "i"),
            unread=_int(obj, "n"),
        )
    elif kind == "s":
        message = SessionsEnded(_ints(obj.get("s"), "s"))
    elif kind == "e":
        message = Ephemeral(_pairs(_list(obj, "i")), _int(obj, "x"))
    elif kind == "c":
        message = CatchUp()
    else:
        raise CodecError(f"unknown message type {kind!r}")
    return Envelope(origin, message)


def _group(item: Any) -> DeliveryGroup:
    if not isinstance(item, list) or len(item) != 6:
        raise CodecError("a delivery group is a list of six fields")
    type_, event, key, created_at, raw_data, flat = item
    for name, value in (("type", type_), ("event", event), ("created_at", created_at)):
        if not isinstance(value, str):
            raise CodecError(f"group {name} is not a string")
    if key is not None and not isinstance(key, str):
        raise CodecError("group key is neither a string nor null")
    if not isinstance(raw_data, str):
        raise CodecError("group data is not a string")
    if not isinstance(flat, list) or len(flat) % _ROW_WIDTH:
        raise CodecError("group rows are not a list of four integers each")
    # `type(v) is int`: JSON true/false decode to bools, which isinstance() takes for ints.
    if not all(type(value) is int for value in flat):
        raise CodecError("group rows hold something other than integers")
    rows: tuple[Row, ...] = tuple(zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4], strict=True))
    return DeliveryGroup(type_, event, key, raw_data, created_at, rows)


def _str(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise CodecError(f"{name!r} is not a string")
    return value


def _int(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if type(value) is not int:
        raise CodecError(f"{name!r} is not an integer")
    return value


def _list(obj: dict[str, Any], name: str) -> list[Any]:
    value = obj.get(name)
    if not isinstance(value, list):
        raise CodecError(f"{name!r} is not a list")
    return value


def _ints(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(item) is int for item in value):
        raise CodecError(f"{name!r} is not a list of integers")
    return tuple(value)


def _pairs(items: list[Any]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise CodecError("an ephemeral item is a list of two strings")
        pairs.append((item[0], item[1]))
    return tuple(pairs)
