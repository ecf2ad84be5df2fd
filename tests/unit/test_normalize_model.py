"""The normalized model, event identity, timestamp reading and the shared field readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.normalize.fields import (
    optional_text,
    read_each,
    require_list,
    require_object,
    require_text,
)
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    Status,
    TrackingEvent,
    event_identity,
)
from app.normalize.times import parse_timestamp

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
T0 = datetime(2026, 3, 3, 19, 20, tzinfo=UTC)
BASE = TrackingEvent(
    occurred_at=T0,
    status=Status.DELIVERED,
    carrier_status="Delivered_001",
    description="Objeto entregue ao destinatário",
    city="Belo Horizonte",
    state="MG",
)


def variant(**changes: Any) -> TrackingEvent:
    fields = {
        "occurred_at": BASE.occurred_at,
        "status": BASE.status,
        "carrier_status": BASE.carrier_status,
        "description": BASE.description,
        "city": BASE.city,
        "state": BASE.state,
    }
    return TrackingEvent(**{**fields, **changes})


def identity(event: TrackingEvent, carrier: str = "aftership", number: str = "LB1BR") -> str:
    return event_identity(carrier, number, event)


# --- model ------------------------------------------------------------------------------


def test_event_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        variant(occurred_at=datetime(2026, 3, 3, 19, 20))


def test_event_location_defaults_to_empty_text() -> None:
    event = TrackingEvent(T0, Status.UNKNOWN, "x", "y")

    assert (event.city, event.state) == ("", "")


def test_parse_context_defaults_to_utc() -> None:
    assert ParseContext().default_zone == ZoneInfo("UTC")


def test_rejection_carries_its_detail() -> None:
    rejected = PayloadRejected("msg.tracking_number is missing or empty")

    assert rejected.detail == str(rejected) == "msg.tracking_number is missing or empty"


# --- event identity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "same",
    [
        variant(description="  objeto ENTREGUE   ao\tdestinatário \n"),
        variant(city=" belo horizonte ", state="mg"),
        variant(carrier_status=" delivered_001"),
        variant(occurred_at=T0.astimezone(SAO_PAULO)),  # the same instant, another offset
        variant(occurred_at=T0 + timedelta(microseconds=999_999)),  # to the second
        variant(status=Status.DELIVERED),
    ],
    ids=[
        "description-spacing-case",
        "place-case",
        "status-code-case",
        "offset",
        "subsecond",
        "copy",
    ],
)
def test_identity_ignores_presentation(same: TrackingEvent) -> None:
    assert identity(same) == identity(BASE)


@pytest.mark.parametrize(
    "other",
    [
        variant(occurred_at=T0 + timedelta(seconds=1)),
        variant(occurred_at=T0 - timedelta(days=1)),
        variant(city="Contagem"),
        variant(state="SP"),
        variant(city=""),
        variant(carrier_status="Delivered_003"),
        variant(description="Objeto entregue ao vizinho"),
        # Text moved from one field to the next must not collide.
        variant(city="Belo", state="Horizonte MG"),
    ],
    ids=["second-later", "day-earlier", "city", "state", "no-city", "status", "text", "boundary"],
)
def test_identity_differs_by_meaning(other: TrackingEvent) -> None:
    assert identity(other) != identity(BASE)


def test_identity_includes_carrier_and_tracking_number() -> None:
    assert identity(BASE, carrier="easypost") != identity(BASE)
    assert identity(BASE, number="LB2BR") != identity(BASE)
    assert identity(BASE, number=" LB1BR ") == identity(BASE)


def test_identity_is_stable_across_releases() -> None:
    # Identities are stored; a change of their recipe would let every resent history
    # through as new events. Change this value only together with a data migration.
    assert identity(BASE) == "88104fb5c5f1de1c7a3359c9e5bc3a086095d75bd5cc15a92cdeac2e7f600b37"


# --- parse_timestamp --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "utc"),
    [
        ("2026-03-01T01:30:00Z", "UTC", "2026-03-01T01:30:00+00:00"),
        ("2026-02-28T22:30:00-03:00", "Asia/Tokyo", "2026-03-01T01:30:00+00:00"),
        ("2026-03-01T10:30:00+09:00", "America/Sao_Paulo", "2026-03-01T01:30:00+00:00"),
        ("2026-02-28T22:30:00", "America/Sao_Paulo", "2026-03-01T01:30:00+00:00"),
        ("2026-02-28T22:30:00", "UTC", "2026-02-28T22:30:00+00:00"),
        ("  2026-02-28T22:30:00.250Z ", "UTC", "2026-02-28T22:30:00.250000+00:00"),
        ("2026-03-01", "America/Sao_Paulo", "2026-03-01T03:00:00+00:00"),
        # Zone rules, not a fixed offset: New York is -05:00 in winter, -04:00 in summer.
        ("2026-01-15T12:00:00", "America/New_York", "2026-01-15T17:00:00+00:00"),
        ("2026-07-15T12:00:00", "America/New_York", "2026-07-15T16:00:00+00:00"),
    ],
)
def test_timestamp_becomes_utc(text: str, zone: str, utc: str) -> None:
    parsed = parse_timestamp(text, ZoneInfo(zone), field="checkpoint_time")

    assert parsed.isoformat() == utc
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", 1772366400, 17.5, ["2026-03-01"], "yesterday", "2026-13-01T00:00:00",
     "01/03/2026 10:00", "2026-03-01T25:00:00"],
)  # fmt: skip
def test_unreadable_timestamp_is_rejected_naming_the_field(value: object) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_timestamp(value, SAO_PAULO, field="result.tracking_details.3.datetime")

    assert "result.tracking_details.3.datetime" in rejected.value.detail


def test_rejection_quotes_at_most_40_characters_of_the_value() -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_timestamp("x" * 500, SAO_PAULO, field="time")

    assert "x" * 40 in rejected.value.detail
    assert "x" * 41 not in rejected.value.detail


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("0001-01-01T00:00:00+01:00", "UTC"),
        ("9999-12-31T23:59:59-01:00", "UTC"),
        ("0001-01-01T00:00:00", "Asia/Tokyo"),
    ],
)
def test_timestamp_outside_the_utc_range_is_a_rejection_not_a_crash(text: str, zone: str) -> None:
    # Valid ISO 8601 whose UTC instant datetime cannot hold: a 422, never a 500.
    with pytest.raises(PayloadRejected) as rejected:
        parse_timestamp(text, ZoneInfo(zone), field="events.0.time")

    assert "events.0.time" in rejected.value.detail


# --- field readers ----------------------------------------------------------------------


def test_require_object() -> None:
    assert require_object({"a": 1}, "msg") == {"a": 1}
    for value in ([], "x", None, 3):
        with pytest.raises(PayloadRejected) as rejected:
            require_object(value, "msg")
        assert rejected.value.detail == "msg must be a JSON object"


def test_require_list() -> None:
    assert require_list([1, 2], "msg.checkpoints") == [1, 2]
    assert require_list(None, "msg.checkpoints") == []
    for value in ({}, "[]", 0, False):
        with pytest.raises(PayloadRejected) as rejected:
            require_list(value, "msg.checkpoints")
        assert rejected.value.detail == "msg.checkpoints must be a JSON array"


def test_read_each_reads_every_object_with_its_path() -> None:
    def read(item: Any, where: str) -> tuple[Any, str]:
        return item["n"], where

    assert read_each([{"n": 1}, {"n": 2}], "msg.checkpoints", read) == (
        (1, "msg.checkpoints.0"),
        (2, "msg.checkpoints.1"),
    )
    assert read_each(None, "msg.checkpoints", read) == ()
    with pytest.raises(PayloadRejected) as rejected:
        read_each([{"n": 1}, "n"], "msg.checkpoints", read)
    assert rejected.value.detail == "msg.checkpoints.1 must be a JSON object"
    with pytest.raises(PayloadRejected) as rejected:
        read_each({"n": 1}, "msg.checkpoints", read)
    assert rejected.value.detail == "msg.checkpoints must be a JSON array"


@pytest.mark.parametrize(
    ("value", "text"), [(" LB1BR ", "LB1BR"), (123456789, "123456789"), (1.5, "1.5")]
)
def test_require_text_accepts_text_and_numbers(value: object, text: str) -> None:
    assert require_text(value, "msg.tracking_number") == text


@pytest.mark.parametrize("value", [None, "", " \t", True, False, [], {}])
def test_require_text_rejects_anything_else(value: object) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        require_text(value, "msg.tracking_number")

    assert rejected.value.detail == "msg.tracking_number is missing or empty"


@pytest.mark.parametrize(
    ("value", "text"),
    [(" Natal ", "Natal"), (None, ""), ("", ""), (42, ""), ({"city": "Natal"}, ""), ([], "")],
)
def test_optional_text_is_empty_when_unknown(value: object, text: str) -> None:
    assert optional_text(value) == text


def test_optional_text_takes_the_first_non_blank_value() -> None:
    assert optional_text(None, "  ", " Acceptance scan ", "ignored") == "Acceptance scan"
    assert optional_text("", None) == ""
