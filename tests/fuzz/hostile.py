"""Hostile JSON (SPEC §12) as raw bytes: named samples, carrier payloads with a hostile value
placed inside, and hypothesis strategies drawing from both.

Everything is built as bytes, never through ``json.dumps``: an unpaired surrogate, a raw
control character or invalid UTF-8 cannot be written any other way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent.parent / "fixtures"
BOM = b"\xef\xbb\xbf"
_PLACEHOLDER = "@@hostile-value@@"

Location = tuple[str | int, ...]


def deep_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_mixed(depth: int) -> bytes:
    return b'[{"a":' * (depth // 2) + b"null" + b"}]" * (depth // 2)


VALUES: dict[str, bytes] = {
    # Nesting: Python's own limit is about 1,000 frames.
    "array-1000-deep": deep_arrays(1_000),
    "array-60000-deep": deep_arrays(60_000),
    "object-1000-deep": deep_objects(1_000),
    "object-60000-deep": deep_objects(60_000),
    "mixed-10000-deep": deep_mixed(10_000),
    "array-60000-unclosed": b"[" * 60_000,
    # Numbers of any length (Python refuses int() of more than 4,300 digits).
    "int-5000-digits": b"9" * 5_000,
    "negative-int-5000-digits": b"-" + b"1" * 5_000,
    "int-past-64-bits": b"18446744073709551617",
    "float-5000-digits": b"0." + b"3" * 5_000,
    "mantissa-5000-digits-exponent": b"1" * 5_000 + b".5e-5000",
    "1e999": b"1e999",
    "-1e999": b"-1e999",
    "1e-999": b"1e-999",
    "huge-exponent": b"1e99999999999999999999",
    "-0": b"-0",
    "-0.0": b"-0.0",
    "NaN": b"NaN",
    "-Infinity": b"-Infinity",
    # Unpaired surrogates, as escapes and as raw (CESU-8) bytes.
    "escaped-low-surrogate": b'"\\udfff"',
    "escaped-high-surrogate-at-end": b'"abc\\ud800"',
    "escaped-high-surrogate-then-ascii": b'"\\ud800A"',
    "escaped-reversed-pair": b'"\\udc00\\ud800"',
    "raw-high-surrogate": b'"\xed\xa0\x80"',
    "raw-low-surrogate": b'"x\xed\xbf\xbf"',
    # Control characters, raw and escaped.
    "escaped-nul": b'"a\\u0000b"',
    "raw-nul": b'"a\x00b"',
    "raw-controls": b'"' + bytes(range(1, 32)) + b'"',
    "escaped-controls": b'"\\u0001\\u001f\\u007f\\u0085\\u2028\\u2029"',
    # Invalid UTF-8.
    "invalid-utf8": b'"\xff\xfe\xfd"',
    "truncated-utf8": b'"\xe2\x82"',
    "overlong-utf8": b'"\xc0\xaf"',
    # Keys.
    "duplicate-keys": b'{"a":1,"a":2}',
    "surrogate-key": b'{"\\ud800":1}',
    "nul-key": b'{"\\u0000":1}',
    # Every top-level type, and strings no identifier should be.
    "null": b"null",
    "true": b"true",
    "false": b"false",
    "one": b"1",
    "string": b'"s"',
    "empty-array": b"[]",
    "empty-object": b"{}",
    "empty-string": b'""',
    "blank-string": b'"   "',
    "string-129-chars": b'"' + b"X" * 129 + b'"',
    "string-200000-chars": b'"' + b"X" * 200_000 + b'"',
}

# Whole bodies only: they are not values that fit inside a payload.
NOT_VALUES: dict[str, bytes] = {
    "empty-body": b"",
    "whitespace-body": b" \r\n\t ",
    "bom-only": BOM,
    "nul-byte-body": b"\x00",
    "two-documents": b"{}{}",
    "trailing-comma": b'{"a":1,}',
    "single-quotes": b"{'a':1}",
}


def fixtures(carrier: str) -> list[Any]:
    """The carrier's payloads from tests/fixtures/<carrier>/, parsed."""
    return [json.loads(path.read_bytes()) for path in sorted((FIXTURES / carrier).glob("*.json"))]


def locations(value: Any, prefix: Location = ()) -> Iterator[Location]:
    """Every place in ``value`` a hostile value can go: each key's value, each item."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*prefix, key)
        yield from locations(item, (*prefix, key))


def with_value(payload: Any, location: Location, value: bytes) -> bytes:
    """``payload`` as JSON text with ``value`` (JSON text, hostile) at ``location``."""
    copy = json.loads(json.dumps(payload))
    parent = copy
    for key in location[:-1]:
        parent = parent[key]
    parent[location[-1]] = _PLACEHOLDER
    text = json.dumps(copy, ensure_ascii=False).encode()
    return text.replace(json.dumps(_PLACEHOLDER).encode(), value, 1)


def duplicated_first_key(payload: dict[str, Any], value: bytes) -> bytes:
    """``payload`` with its first key repeated at the end, holding ``value``."""
    text = json.dumps(payload, ensure_ascii=False).encode()
    first = json.dumps(next(iter(payload))).encode()
    return text[:-1] + b"," + first + b":" + value + b"}"


def encodings(payload: Any) -> dict[str, bytes]:
    """A valid payload in the encodings and framings a careless sender uses."""
    text = json.dumps(payload, ensure_ascii=False)
    return {
        "utf8-bom": BOM + text.encode(),
        "utf16-bom": text.encode("utf-16"),
        "utf16le": text.encode("utf-16-le"),
        "utf32": text.encode("utf-32"),
        "latin1": text.encode("latin-1", errors="replace"),
        "trailing-garbage": text.encode() + b"}",
    }


# --- hypothesis --------------------------------------------------------------------------------


def fuzz_settings(max_examples: int) -> settings:
    """Repeatable runs (the same examples every time, nothing saved to .hypothesis), no
    deadline (a request's time is the relay's and the machine's, not the input's)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


_PIECES = [
    b"a",
    "é".encode(),
    b"\\ud800",
    b"\\udfff",
    b"\\ud83d\\ude00",
    b"\\u0000",
    b"\\u001f",
    b"\\u2028",
    b"\\\\",
    b'\\"',
    b"\\n",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xff",
    b"\xc0\xaf",
    b"\xe2\x82",
    BOM,
]


@st.composite
def hostile_strings(draw: st.DrawFn) -> bytes:
    """A JSON string of escapes and raw bytes no JSON reader likes."""
    pieces = draw(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12))
    return b'"' + b"".join(pieces) + b'"'


@st.composite
def hostile_numbers(draw: st.DrawFn) -> bytes:
    """A number of up to 6,000 digits, a long fraction, an exponent past any float."""
    digits = b"1" + b"0" * draw(st.integers(min_value=0, max_value=6_000))
    sign = draw(st.sampled_from([b"", b"-"]))
    fraction = draw(st.sampled_from([b"", b".5", b"." + b"9" * 3_000]))
    exponent = draw(
        st.none() | st.integers(min_value=-(10**20), max_value=10**20).map(str).map(str.encode)
    )
    return sign + digits + fraction + (b"e" + exponent if exponent is not None else b"")


@st.composite
def hostile_nesting(draw: st.DrawFn) -> bytes:
    """Arrays, objects or both, 1 to 60,000 levels deep (shrinks to the shallowest failing)."""
    build = draw(st.sampled_from([deep_arrays, deep_objects, deep_mixed]))
    return build(draw(st.integers(min_value=1, max_value=60_000)))


def hostile_values() -> st.SearchStrategy[bytes]:
    """A JSON value (or something a sender believes is one) nobody should send."""
    named = st.sampled_from(list(VALUES.values()))
    leaves = named | hostile_strings() | hostile_numbers() | hostile_nesting()
    return st.recursive(
        leaves,
        lambda inner: (
            inner.map(lambda v: b"[" + v + b"]")
            | st.tuples(hostile_strings(), inner).map(lambda kv: b"{" + kv[0] + b":" + kv[1] + b"}")
            | inner.map(lambda v: b'{"k":' + v + b',"k":' + v + b"}")
        ),
        max_leaves=3,
    )


@st.composite
def inside_payload(draw: st.DrawFn, payloads: list[Any]) -> bytes:
    """One of ``payloads`` with a hostile value at one of its places."""
    payload = draw(st.sampled_from(payloads))
    location = draw(st.sampled_from(list(locations(payload))))
    return with_value(payload, location, draw(hostile_values()))


def hostile_bodies(payloads: list[Any]) -> st.SearchStrategy[bytes]:
    """Bodies for a route whose valid payloads look like ``payloads``."""
    framed = st.sampled_from(payloads).flatmap(
        lambda payload: st.sampled_from(list(encodings(payload).values()))
    )
    return st.one_of(
        inside_payload(payloads),
        hostile_values(),
        st.sampled_from(list(NOT_VALUES.values())),
        framed,
        st.binary(max_size=512),
    )
