"""The broker's wire format: every message survives the trip, garbage is one clear error, and
messages are split by user shard (pure functions, no Redis needed)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.realtime import codec
from app.realtime.messages import (
    BrokerMessage,
    CatchUp,
    Delivery,
    DeliveryGroup,
    Ephemeral,
    Marked,
    SessionsEnded,
)
from app.realtime.redis_broker import Backoff, redacted, shard_messages

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
rows = st.tuples(ints, ints, ints, ints)
groups = st.builds(
    DeliveryGroup,
    type=st.text(),
    event=st.text(),
    key=st.none() | st.text(),
    raw_data=st.text(),  # any text: the codec never parses it
    created_at=st.text(),
    rows=st.lists(rows, max_size=8).map(tuple),
)
deliveries = st.builds(Delivery, st.lists(groups, max_size=4).map(tuple))
marks = st.builds(
    Marked,
    user_id=ints,
    mark=st.sampled_from(["read", "seen"]) | st.text(),
    ids=st.none() | st.lists(ints, max_size=8).map(tuple),
    unread=ints,
)
sessions = st.builds(SessionsEnded, st.lists(ints, max_size=8).map(tuple))
ephemerals = st.builds(
    Ephemeral, st.lists(st.tuples(st.text(), st.text()), max_size=4).map(tuple), ints
)
messages = deliveries | marks | sessions | ephemerals | st.just(CatchUp())
origins = st.text(min_size=1, max_size=20)


@given(messages, origins)
def test_every_message_survives_encode_and_decode(message: BrokerMessage, origin: str) -> None:
    data = codec.encode(message, origin)
    assert isinstance(data, bytes)
    assert codec.decode(data) == codec.Envelope(origin, message)
    # The own-message check reads only the first bytes.
    assert data.startswith(codec.own_prefix(origin))


@given(messages, origins, origins)
def test_another_origin_never_matches_the_own_prefix(
    message: BrokerMessage, mine: str, theirs: str
) -> None:
    data = codec.encode(message, theirs)
    assert data.startswith(codec.own_prefix(mine)) == (mine == theirs)


def test_raw_data_is_carried_as_text_exactly_as_published() -> None:
    raw = '{"b":1, "a":"caf\\u00e9",  "n":1.50}'  # odd spacing and escapes stay as they are
    group = DeliveryGroup("notification", "notification", None, raw, "2026-01-01T00:00:00Z", ())
    decoded = codec.decode(codec.encode(Delivery((group,)), "p1")).message
    assert isinstance(decoded, Delivery)
    assert decoded.groups[0].raw_data == raw


def test_the_encoding_is_compact_json_with_version_and_origin_first() -> None:
    group = DeliveryGroup("booking_update", "new_booking", "booking:4", "{}", "t", ((9, 7, 3, 2),))
    data = codec.encode(Delivery((group,)), "abc")
    assert data == (
        b'{"v":1,"o":"abc","t":"d","g":[["booking_update","new_booking","booking:4","t","{}",'
        b"[9,7,3,2]]]}"
    )


VALID = json.loads(codec.encode(Marked(7, "read", (1, 2), 0), "x"))
GARBAGE = [
    b"",
    b"not json",
    b"\xff\xfe",  # not UTF-8
    b"[" * 100_000,  # nesting deeper than the parser's recursion limit
    b"[]",
    b"42",
    b'"text"',
    b"{}",
    json.dumps({**VALID, "v": 2}).encode(),
    json.dumps({**VALID, "v": "1"}).encode(),
    json.dumps({**VALID, "v": True}).encode(),
    json.dumps({k: v for k, v in VALID.items() if k != "v"}).encode(),
    json.dumps({**VALID, "o": 5}).encode(),
    json.dumps({**VALID, "t": "x"}).encode(),
    json.dumps({**VALID, "u": "7"}).encode(),
    json.dumps({**VALID, "u": 7.0}).encode(),
    json.dumps({**VALID, "u": True}).encode(),
    json.dumps({**VALID, "i": [1, "2"]}).encode(),
    json.dumps({**VALID, "i": {"1": 2}}).encode(),
    json.dumps({k: v for k, v in VALID.items() if k != "i"}).encode(),
    json.dumps({**VALID, "m": None}).encode(),
    json.dumps({**VALID, "n": None}).encode(),
    b'{"v":1,"o":"x","t":"s","s":[1,null]}',
    b'{"v":1,"o":"x","t":"s"}',
    b'{"v":1,"o":"x","t":"d"}',
    b'{"v":1,"o":"x","t":"d","g":{}}',
    b'{"v":1,"o":"x","t":"d","g":[[]]}',
    b'{"v":1,"o":"x","t":"d","g":[["a","b",null,"t","{}",[1,2,3]]]}',  # not rows of four
    b'{"v":1,"o":"x","t":"d","g":[["a","b",null,"t","{}",[1,2,3,true]]]}',
    b'{"v":1,"o":"x","t":"d","g":[["a","b",null,"t","{}",[1,2,3,4.5]]]}',
    b'{"v":1,"o":"x","t":"d","g":[["a","b",null,"t",{},[1,2,3,4]]]}',  # data not a string
    b'{"v":1,"o":"x","t":"d","g":[["a","b",7,"t","{}",[1,2,3,4]]]}',  # key not a string
    b'{"v":1,"o":"x","t":"d","g":[[1,"b",null,"t","{}",[1,2,3,4]]]}',
    b'{"v":1,"o":"x","t":"d","g":[["a","b",null,"t","{}",[1,2,3,4],"extra"]]}',
]


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_one_error_type(data: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(data)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_decode_or_raise_the_codec_error_only(data: bytes) -> None:
    try:
        codec.decode(data)
    except codec.CodecError:
        pass


def test_encoding_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError):
        codec.encode("hello", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        codec.encode(Marked(True, "read", None, 0), "x")  # bool is not a user id


def _group(*rows: tuple[int, int, int, int]) -> DeliveryGroup:
    return DeliveryGroup("notification", "notification", None, '{"m":1}', "t", rows)


def test_a_delivery_is_split_by_user_shard_keeping_group_and_row_order() -> None:
    first = _group((10, 1, 5, 1), (11, 17, 2, 1), (12, 2, 9, 3))
    second = _group((13, 2, 10, 4), (14, 33, 1, 1))
    parts = dict(shard_messages(Delivery((first, second)), 16))
    assert set(parts) == {1, 2}
    assert parts[1] == Delivery((_group((10, 1, 5, 1), (11, 17, 2, 1)), _group((14, 33, 1, 1))))
    assert parts[2] == Delivery((_group((12, 2, 9, 3)), _group((13, 2, 10, 4))))


def test_a_group_within_one_shard_is_sent_as_it_is() -> None:
    group = _group((10, 3, 1, 1), (11, 19, 1, 1))
    assert shard_messages(Delivery((group,)), 16) == [(3, Delivery((group,)))]


def test_ephemeral_frames_go_on_the_control_channel() -> None:
    message = Ephemeral((("presence:7", '{"type":"presence"}'),), 3)
    assert shard_messages(message, 16) == [(-1, message)]


def test_marks_go_by_user_and_session_ends_by_session_id() -> None:
    assert shard_messages(Marked(21, "seen", None, 0), 16) == [(5, Marked(21, "seen", None, 0))]
    assert sorted(shard_messages(SessionsEnded((3, 19, 4)), 16)) == [
        (3, SessionsEnded((3, 19))),
        (4, SessionsEnded((4,))),
    ]
    assert shard_messages(CatchUp(), 16) == [(-1, CatchUp())]


@given(st.lists(st.lists(rows, min_size=1, max_size=6), max_size=5), st.integers(1, 32))
def test_splitting_loses_and_invents_no_row(row_lists: list[list[tuple[int, ...]]], n: int) -> None:
    delivery = Delivery(tuple(_group(*r) for r in row_lists))  # type: ignore[arg-type]
    parts = shard_messages(delivery, n)
    seen = []
    for shard, part in parts:
        assert isinstance(part, Delivery)
        for group in part.groups:
            assert all(row[1] % n == shard for row in group.rows)
            seen.extend(group.rows)
    assert sorted(seen) == sorted(row for group in delivery.groups for row in group.rows)


def test_backoff_grows_to_its_cap_with_jitter_and_starts_over_on_reset() -> None:
    backoff = Backoff(0.1, 2.0, random.Random(7))
    delays = [backoff.next() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        nominal = min(2.0, 0.1 * 2**attempt)
        assert nominal / 2 <= delay <= nominal
    assert max(delays) <= 2.0
    assert len(set(delays)) == len(delays)  # jittered, not in step
    backoff.reset()
    assert backoff.next() <= 0.1


def test_logged_redis_urls_hide_the_password() -> None:
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redacted("redis://:s3cret@10.0.0.5:6379/1") == "redis://:***@10.0.0.5:6379/1"
    assert redacted("redis://app:s3cret@10.0.0.5/1") == "redis://app:***@10.0.0.5/1"
