"""Log lines are one JSON object each, whatever they carry and whatever the stream encodes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from app.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    configure_logging("json", "INFO")


def _lines(stream: io.TextIOWrapper) -> list[dict[str, object]]:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    text = raw.getvalue().decode(stream.encoding)
    return [json.loads(line) for line in text.split("\n") if line]  # as a log shipper reads


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
def test_a_line_with_any_text_is_written_in_any_stream_encoding(encoding: str) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    configure_logging("json", "INFO", stream)
    reason = 'São Paulo 🚚 \u2028 \x00 "quoted"'
    structlog.get_logger("relay.test").warning("webhook.quarantined", reason=reason)
    (line,) = _lines(stream)
    assert line["reason"] == reason
    assert line["event"] == "webhook.quarantined"
    assert line["logger"] == "relay.test"


def test_values_json_cannot_hold_are_written_as_text() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    configure_logging("json", "INFO", stream)
    huge = 2**70  # past orjson's 64 bits
    structlog.get_logger("relay.test").info("odd.values", huge=huge, thing=object, nested={1: "a"})
    (line,) = _lines(stream)
    assert line["huge"] == huge
    assert line["thing"] == repr(object)
    assert line["nested"] == {"1": "a"}
