"""Properties of the parsers that read what strangers send: the WebSocket frame parser and the
form number parsers. For any input each one returns a value it documents or refuses with its
own error; no other exception escapes, and only ASCII digits are ever read as a number.

Examples are derandomized and no example database is kept, so every run (and CI) tries the
same inputs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.forms import MAX_PAGE, NumberError, page_number, parse_int
from app.marketplace.forms import (
    MAX_DURATION,
    MIN_DURATION,
    validate_booking,
    validate_payment,
    validate_service,
)
from app.marketplace.payments import luhn_valid
from app.money import MAX_CENTS, MoneyError, parse_cents
from app.realtime.protocol import (
    CLIENT_TYPES,
    MAX_CLIENT_MSG_ID,
    MAX_DEPTH,
    BadFrame,
    ClientFrame,
    parse_client_frame,
)

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# Text that UTF-8 can carry (no lone surrogates): what a well-behaved client sends.
clean_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
ascii_digits = st.from_regex(r"[0-9]{1,25}", fullmatch=True)
# At least one character outside ASCII, anywhere in the string.
with_non_ascii = st.tuples(st.text(), st.characters(min_codepoint=128), st.text()).map("".join)
# Digits of other scripts (full-width, Arabic-Indic, superscripts...): int() reads many of them.
foreign_digits = st.text(
    st.characters(categories=["Nd", "No"], min_codepoint=128), min_size=1, max_size=8
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

# The same without NaN, Infinity or lone surrogates: values every JSON parser agrees on.
clean_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | clean_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(clean_text, inner, max_size=4),
    max_leaves=20,
)


def parses_cleanly(text: str) -> ClientFrame | BadFrame:
    """The frame, or the BadFrame it raised; any other exception fails the property."""
    try:
        frame = parse_client_frame(text)
    except BadFrame as exc:
        assert exc.code in {"bad_json", "bad_frame", "unknown_type", "too_big"}
        assert isinstance(exc.message, str) and exc.message
        return exc
    assert frame.type in CLIENT_TYPES
    assert isinstance(frame.body, dict)
    assert frame.client_msg_id is None or 0 < len(frame.client_msg_id) <= MAX_CLIENT_MSG_ID
    return frame


# --- (a) the WebSocket frame parser --------------------------------------------------------


@PROPERTY
@given(st.text())
def test_any_text_is_a_client_frame_or_a_bad_frame(text: str) -> None:
    parses_cleanly(text)


@PROPERTY
@given(json_values)
def test_any_json_value_is_a_client_frame_or_a_bad_frame(value: Any) -> None:
    parses_cleanly(json.dumps(value))  # NaN and Infinity come out as their bare tokens


@PROPERTY
@given(
    st.one_of(st.sampled_from(sorted(CLIENT_TYPES)), st.text(max_size=12), json_scalars),
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
)
def test_any_object_with_any_type_and_fields_is_a_client_frame_or_a_bad_frame(
    kind: Any, fields: dict[str, Any]
) -> None:
    parses_cleanly(json.dumps({**fields, "type": kind}))


@PROPERTY
@given(st.integers(min_value=0, max_value=5000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_refused_as_bad_json_without_a_recursion_error(
    depth: int, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    result = parses_cleanly('{"type":"ping","x":' + opener * depth + "1" + closer * depth + "}")
    if depth + 1 > MAX_DEPTH:
        assert isinstance(result, BadFrame) and result.code == "bad_json"


@PROPERTY
@given(
    st.lists(st.tuples(clean_text, clean_values), max_size=5),
    st.sampled_from(["type", "client_msg_id", "ids", "x"]),
    st.booleans(),
)
def test_a_duplicate_key_at_any_depth_is_bad_json(
    pairs: list[tuple[str, Any]], duplicated: str, nested: bool
) -> None:
    # Built as raw text: a dict cannot hold the same key twice.
    members = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs]
    members += [f'"{duplicated}":1', f'"{duplicated}":2']
    inner = "{" + ",".join(members) + "}"
    text = '{"type":"ping","x":' + inner + "}" if nested else inner
    result = parses_cleanly(text)
    assert isinstance(result, BadFrame) and result.code == "bad_json", text
    assert "duplicate key" in result.message


@PROPERTY
@given(st.sampled_from(["NaN", "Infinity", "-Infinity"]), st.sampled_from(sorted(CLIENT_TYPES)))
def test_nan_and_infinity_tokens_are_bad_json(token: str, kind: str) -> None:
    result = parses_cleanly(f'{{"type":"{kind}","x":[{token}]}}')
    assert isinstance(result, BadFrame) and result.code == "bad_json"


@PROPERTY
@given(st.characters(categories=["Cs"]), st.booleans(), st.booleans())
def test_a_lone_surrogate_is_bad_json(surrogate: str, escaped: bool, in_key: bool) -> None:
    spelled = f"\\u{ord(surrogate):04x}" if escaped else surrogate
    member = f'"{spelled}":1' if in_key else f'"x":"{spelled}"'
    result = parses_cleanly('{"type":"ping",' + member + "}")
    assert isinstance(result, BadFrame) and result.code == "bad_json"


ids = st.integers(min_value=0, max_value=2**63 - 1)
valid_frames = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["ping", "pong", "mark_all_read"])}),
    st.fixed_dictionaries({"type": st.just("ack"), "id": ids}),
    st.fixed_dictionaries({"type": st.just("resume"), "last_id": ids}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["mark_read", "mark_seen"]), "ids": st.lists(ids, max_size=20)}
    ),
).flatmap(
    lambda frame: st.fixed_dictionaries(
        {k: st.just(v) for k, v in frame.items()},
        optional={
            "client_msg_id": st.text(
                st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64
            ),
            "extra": st.one_of(clean_text, st.lists(clean_text, max_size=3)),
        },
    )
)


@PROPERTY
@given(valid_frames, st.booleans())
def test_a_valid_frame_round_trips_to_the_same_type_and_body(
    frame: dict[str, Any], ascii_only: bool
) -> None:
    parsed = parse_client_frame(json.dumps(frame, ensure_ascii=ascii_only))
    assert parsed.type == frame["type"]
    assert parsed.body == frame
    assert parsed.client_msg_id == frame.get("client_msg_id")
    if "ids" in frame:
        assert parsed.ids() == frame["ids"]
    for name in ("id", "last_id"):
        if name in frame:
            assert parsed.id_field(name) == frame[name]


# --- (b) the form number parsers -----------------------------------------------------------

ranges = st.tuples(
    st.integers(min_value=0, max_value=10**20), st.integers(min_value=0, max_value=10**20)
).map(sorted)


@PROPERTY
@given(st.text(), ranges)
def test_parse_int_returns_a_number_in_range_or_raises_number_error(
    text: str, bounds: list[int]
) -> None:
    low, high = bounds
    try:
        number = parse_int(text, minimum=low, maximum=high)
    except NumberError as exc:
        assert str(exc)
        return
    assert low <= number <= high
    assert text.isascii() and text.isdigit() and number == int(text)


@PROPERTY
@given(ascii_digits, ranges)
def test_parse_int_reads_ascii_digits_as_int_exactly_when_in_range(
    text: str, bounds: list[int]
) -> None:
    low, high = bounds
    if low <= int(text) <= high:
        assert parse_int(text, minimum=low, maximum=high) == int(text)
    else:
        with pytest.raises(NumberError):
            parse_int(text, minimum=low, maximum=high)


@PROPERTY
@given(st.one_of(with_non_ascii, foreign_digits))
def test_parse_int_refuses_any_non_ascii_character(text: str) -> None:
    with pytest.raises(NumberError):
        parse_int(text, minimum=0, maximum=10**30)


@PROPERTY
@given(st.text())
def test_parse_cents_returns_an_amount_in_range_or_raises_money_error(text: str) -> None:
    try:
        cents = parse_cents(text)
    except MoneyError as exc:
        assert str(exc)
        return
    assert 0 < cents <= MAX_CENTS
    assert text.isascii()


@PROPERTY
@given(ascii_digits, st.one_of(st.none(), st.from_regex(r"[0-9]{1,2}", fullmatch=True)))
def test_parse_cents_reads_ascii_amounts_exactly(whole: str, fraction: str | None) -> None:
    text = whole if fraction is None else f"{whole}.{fraction}"
    expected = int(whole) * 100 + int((fraction or "").ljust(2, "0"))
    if len(whole) <= 9 and 0 < expected <= MAX_CENTS:
        assert parse_cents(text) == expected
    else:
        with pytest.raises(MoneyError):
            parse_cents(text)


@PROPERTY
@given(st.one_of(with_non_ascii, foreign_digits))
def test_parse_cents_refuses_any_non_ascii_character(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_cents(text)


def duration_of(raw: str) -> int | None:
    """The duration the service form accepts for `raw`, or None when it is refused."""
    form = {"name": "Tutoring", "price": "40", "duration_minutes": raw, "online": "1"}
    data, errors = validate_service(form)
    assert set(errors) <= {"duration_minutes"}, errors
    if data is None:
        assert "duration_minutes" in errors
        return None
    return data.duration_minutes


@PROPERTY
@given(st.one_of(st.text(), ascii_digits, with_non_ascii, foreign_digits))
def test_the_duration_field_accepts_5_to_1440_ascii_minutes_and_refuses_the_rest(
    raw: str,
) -> None:
    duration = duration_of(raw)
    # The form strips surrounding whitespace from every field; what is left is the number.
    value = raw.strip()
    if value.isascii() and value.isdigit() and MIN_DURATION <= int(value) <= MAX_DURATION:
        assert duration == int(value)
    else:
        assert duration is None
    if not value.isascii():
        assert duration is None


@PROPERTY
@given(st.one_of(st.text(), ascii_digits, with_non_ascii, foreign_digits))
def test_a_page_number_is_always_a_page_and_only_ascii_digits_choose_it(raw: str) -> None:
    page = page_number(raw)
    assert 1 <= page <= MAX_PAGE
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE:
        assert page == int(raw)
    else:
        assert page == 1


def card_of(raw: str) -> str | None:
    """The card number the payment form accepts for `raw`, or None when it is refused."""
    form = {"amount": "1.50", "card_number": raw, "idempotency_key": "k" * 16}
    request, errors = validate_payment(form, 150, "USD")
    assert set(errors) <= {"card_number"}, errors
    return None if request is None else request.card_number


def with_luhn_digit(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("some check digit always fits")


@PROPERTY
@given(st.one_of(st.text(), with_non_ascii, foreign_digits, ascii_digits))
def test_the_card_field_accepts_only_12_to_19_ascii_digits_that_pass_luhn(raw: str) -> None:
    card = card_of(raw)
    if card is not None:
        assert card.isascii() and card.isdigit() and 12 <= len(card) <= 19
        assert luhn_valid(card)
    if not raw.strip().isascii():
        assert card is None


@PROPERTY
@given(
    st.from_regex(r"[0-9]{11,18}", fullmatch=True),
    st.sampled_from(["", " ", "-"]),
    st.sampled_from([None, 0xFF10, 0x0660]),
)
def test_a_luhn_valid_card_is_accepted_in_ascii_digits_only(
    body: str, separator: str, zero: int | None
) -> None:
    number = with_luhn_digit(body)
    grouped = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    if zero is None:
        assert card_of(grouped) == number
    else:
        foreign = grouped.translate({ord("0") + n: zero + n for n in range(10)})
        assert card_of(foreign) is None


@PROPERTY
@given(st.one_of(st.text(), with_non_ascii))
def test_the_booking_time_is_a_form_error_never_an_exception(raw: str) -> None:
    request, errors = validate_booking({"scheduled_at": raw, "note": ""})
    if request is None:
        assert set(errors) == {"scheduled_at"}
    if not raw.strip().isascii():
        assert request is None
