"""The one JSON reader: a value that can be stored, or InvalidJson, whatever the bytes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.errors import InvalidJson
from app.json_reader import MAX_DEPTH, read_json
from app.problems import describe_problems, field_path


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    return 0


def strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for item in value.values() for s in strings_of(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings_of(item)]
    return []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, "x", null, true]}', {"a": [1, "x", None, True]}),
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
        (b'{"a": 1, "a": 2}', {"a": 2}),
        (b'"text"', "text"),
        (b"null", None),
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),
        (b'{"a": "\\udfff", "b\\ud800": "x"}', {"a": "\ufffd", "b\ufffd": "x"}),
        (b'{"a": "\\u0000"}', {"a": "\ufffd"}),
        (b'{"a": "tr\xe2nsito"}', {"a": "tr\ufffdnsito"}),
        (b'{"a": "\xed\xa0\x80"}', {"a": "\ufffd\ufffd\ufffd"}),
        (b'{"a": "line\nbreak\x01"}', {"a": "line\nbreak\x01"}),
        (
            b'{"id": ' + b"9" * 50 + b', "n": "' + b"1" * 44 + b'"}',
            {"id": int("9" * 50), "n": "1" * 44},
        ),
        (b"[" + b"9" * 5000 + b"]", [float("inf")]),
        (b"[1e999]", [float("inf")]),
    ],
    ids=[
        "plain",
        "bom",
        "duplicate-keys",
        "string",
        "null",
        "surrogate-pair",
        "lone-surrogates",
        "nul",
        "invalid-utf8",
        "raw-surrogate-bytes",
        "raw-control-characters",
        "long-integer",
        "huge-integer",
        "huge-float",
    ],
)
def test_what_can_be_read_is_read_storably(body: bytes, expected: Any) -> None:
    assert read_json(body) == expected


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "Expecting value at line 1 column 1"),
        (b"{not json", "line 1 column 2"),
        (b"[NaN]", "NaN is not a JSON value"),
        (b"[-Infinity]", "-Infinity is not a JSON value"),
        ('{"a": 1}'.encode("utf-16"), "Expecting value"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested more than 64 levels"),
        (b'{"a":' * 60_000 + b"1" + b"}" * 60_000, "nested more than 64 levels"),
        (b'["\\udfff",' + b"[" * 3000 + b"]" * 3000 + b"]", "nested more than 64 levels"),
    ],
    ids=["empty", "syntax", "nan", "infinity", "utf16", "too-deep", "very-deep", "deep-lenient"],
)
def test_what_cannot_be_read_is_invalid_json_saying_why(body: bytes, detail: str) -> None:
    with pytest.raises(InvalidJson) as refused:
        read_json(body)

    assert detail in refused.value.detail
    assert refused.value.status_code == 400


def test_the_deepest_body_read_is_max_depth() -> None:
    body = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH

    assert depth_of(read_json(body)) == MAX_DEPTH


@hypothesis_settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(
    st.binary(max_size=300)
    | st.builds(
        lambda parts: b"".join(parts),
        st.lists(
            st.sampled_from(
                [b"[", b"]", b"{", b"}", b'"a":', b",", b'"', b"\\u", b"d800", b"0000", b"1e9"]
            )
            | st.binary(max_size=4),
            max_size=80,
        ),
    )
)
def test_any_bytes_give_a_storable_value_or_invalid_json(body: bytes) -> None:
    try:
        value = read_json(body)
    except InvalidJson:
        return
    assert depth_of(value) <= MAX_DEPTH
    for text in strings_of(value):
        text.encode("utf-8")  # no lone surrogate
        assert "\x00" not in text


@hypothesis_settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_json_without_surrogates_or_nul_reads_back_as_written(value: Any) -> None:
    if any("\x00" in s or re.search("[\ud800-\udfff]", s) for s in strings_of(value)):
        return  # NUL and lone surrogates are replaced on purpose (tested above)
    assert read_json(json.dumps(value, ensure_ascii=False).encode()) == value


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            {"type": "model_type", "loc": ("body",), "ctx": {"class_name": "_Hook"}},
            "body: must be an object",
        ),
        ({"type": "missing", "loc": ("body", "events", 0, "time")}, "events.0.time: is required"),
        ({"type": "string_type", "loc": ("orderId",)}, "orderId: must be text"),
        (
            {"type": "literal_error", "loc": ("state",), "ctx": {"expected": "'a' or 'b'"}},
            "state: must be one of 'a' or 'b'",
        ),
        (
            {"type": "string_too_short", "loc": ("q",), "ctx": {"min_length": 1}},
            "q: must not be empty",
        ),
        (
            {"type": "string_too_long", "loc": ("path", "id"), "ctx": {"max_length": 128}},
            "id: must be at most 128 characters",
        ),
        (
            {"type": "less_than_equal", "loc": ("query", "limit"), "ctx": {"le": 1000}},
            "limit: must be at most 1000",
        ),
        (
            {"type": "value_error", "loc": ("x",), "msg": "Value error, contains '/'"},
            "x: contains '/'",
        ),
        (
            {"type": "some_new_pydantic_type", "loc": ("x",), "msg": "Input should be a _Secret"},
            "x: is not valid",
        ),
    ],
)
def test_validation_problems_are_said_in_the_senders_terms(
    error: dict[str, Any], said: str
) -> None:
    assert describe_problems([error]) == said


def test_field_paths_use_the_adapters_notation() -> None:
    assert field_path(("body", "events", 0, "time")) == "events.0.time"
    assert field_path(("body",)) == "body"
    assert field_path(()) == "body"
