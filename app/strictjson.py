"""JSON from strangers: refuses what Python's json module would let through.

`json.loads` accepts NaN and Infinity (not JSON; other parsers reject what we would store),
lone surrogates (cannot be encoded as UTF-8, so cannot be stored or sent on), duplicate keys
in an object (it keeps the last; other parsers keep the first or refuse, so a filter that reads
one copy can be bypassed with the other), and raises RecursionError on deep nesting. Each of
those is a `JSONRejected` here.
"""

from __future__ import annotations

import json
from typing import Any


class JSONRejected(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reject_constant(name: str) -> None:
    raise JSONRejected(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: every object, nested ones too, with each key once."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _item in pairs:
            if key in seen:
                # repr() escapes lone surrogates, so the message can always be sent on.
                raise JSONRejected(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return value


def _check(value: object, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise JSONRejected("nested too deeply")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONRejected("holds an invalid character") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1, max_depth)
            _check(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1, max_depth)


def loads(text: str | bytes, max_depth: int = 16) -> Any:
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise JSONRejected("nested too deeply") from None
    except JSONRejected:
        raise
    except (ValueError, UnicodeDecodeError):
        raise JSONRejected("not valid JSON") from None
    _check(value, 0, max_depth)
    return value


def dumps(value: object) -> str:
    """Compact JSON; refuses NaN and Infinity."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
