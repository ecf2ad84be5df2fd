"""The one JSON reader of every request body (SPEC §12): it returns a value or raises
:class:`~app.errors.InvalidJson`, never anything else, whatever the bytes.

orjson reads well-formed bodies (fast, refuses lone surrogates and invalid UTF-8, caps
depth at 1,024). What it refuses goes through a lenient second reading, because a carrier's
bug must not cost its customer the webhook: invalid UTF-8 and unpaired surrogates become
U+FFFD, raw control characters in strings are read, integers of any length are read
exactly (past 4,000 digits as infinity; orjson would round those past 64 bits).
``NaN``, ``Infinity`` and syntax errors are refused.

Every result is nested at most :data:`MAX_DEPTH` levels (the adapters, JMESPath and the
logs recurse; Python's own limit is about 1,000 frames) and holds no NUL or lone surrogate
in any string, so that it can be stored in SQLite and PostgreSQL as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from app.errors import InvalidJson

MAX_DEPTH = 64
"""Deeper than any carrier's payload (about 8 levels) by far, shallow enough to recurse."""

_BOM = b"\xef\xbb\xbf"
_MAX_INT_DIGITS = 4000  # below Python's int-from-text limit (4,300 digits)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
_SHAPE = bytes(  # digits → "d", brackets → "[", anything else → " "
    ord("d") if i in b"0123456789" else ord("[") if i in b"[{" else ord(" ") for i in range(256)
)
_LONG_DIGITS = b"d" * 20


def read_json(body: bytes) -> Any:
    """The JSON value of ``body``; raises :class:`InvalidJson` naming the problem."""
    if body.startswith(_BOM):
        body = body[len(_BOM) :]  # RFC 8259 §8.1 lets a reader ignore it
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            raise _too_deep() from None
        return _storable(_within_depth(_read_leniently(body)))
    # One C pass tells the cheap cases apart: each nesting level opens a bracket, so with
    # few brackets there is no depth to measure; orjson reads integers past 64 bits as
    # floats, so a run of 20 digits (an id, perhaps) is read again, exactly.
    shape = body.translate(_SHAPE)
    if _LONG_DIGITS in shape:
        value = _read_leniently(body)
    if shape.count(b"[") > MAX_DEPTH:
        _within_depth(value)
    if b"\\u0000" in body:  # orjson refuses a raw NUL, not its escape
        value = _storable(value)
    return value


def _read_leniently(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(
            text,
            strict=False,
            parse_int=_integer,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as error:
        raise InvalidJson(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:  # from the hooks below
        raise InvalidJson(str(error)) from None


def _integer(digits: str) -> int | float:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else float("inf")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> InvalidJson:
    return InvalidJson(f"JSON nested more than {MAX_DEPTH} levels deep is not read")


def _within_depth(value: Any) -> Any:
    """``value`` itself; raises when it is nested more than :data:`MAX_DEPTH` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)
    return value


def _storable(value: Any) -> Any:
    """``value`` with every NUL and unpaired surrogate, in keys and strings, as U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(_REPLACEMENT, value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value
