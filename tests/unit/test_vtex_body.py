"""The VTEX tracking body of an invoice (SPEC §2)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.normalize.model import Status, TrackingEvent

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
T0 = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)


def event(
    at: datetime,
    status: Status = Status.IN_TRANSIT,
    description: str = "Objeto em trânsito",
    city: str = "Campinas",
    state: str = "SP",
) -> TrackingEvent:
    return TrackingEvent(
        occurred_at=at,
        status=status,
        carrier_status=status.value,
        description=description,
        city=city,
        state=state,
    )


HISTORY = [
    event(T0, Status.INFO_RECEIVED, "Etiqueta emitida", "Recife", "PE"),
    event(T0 + timedelta(hours=20), Status.IN_TRANSIT, "Em trânsito", "Campinas", "SP"),
    event(T0 + timedelta(days=2), Status.OUT_FOR_DELIVERY, "Saiu para entrega", "Natal", "RN"),
    event(T0 + timedelta(days=2, hours=5), Status.DELIVERED, "Entregue", "Natal", "RN"),
]


def descriptions(body: dict[str, Any]) -> list[str]:
    return [entry["description"] for entry in body["events"]]


def test_body_has_exactly_the_vtex_shape() -> None:
    body = build_tracking_body(HISTORY, UTC_ZONE)

    assert set(body) == {"isDelivered", "deliveredDate", "events"}
    for entry in body["events"]:
        assert set(entry) == {"city", "state", "description", "date"}
        assert all(isinstance(value, str) for value in entry.values())
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize("seed", range(5))
def test_events_are_sent_oldest_first_whatever_the_input_order(seed: int) -> None:
    shuffled = HISTORY[:]
    random.Random(seed).shuffle(shuffled)

    body = build_tracking_body(shuffled, UTC_ZONE)

    assert descriptions(body) == [
        "Etiqueta emitida",
        "Em trânsito",
        "Saiu para entrega",
        "Entregue",
    ]


def test_events_compare_by_instant_not_by_their_offset() -> None:
    # 21:00 at -03:00 is after 23:30 at +00:00 (00:00Z next day vs 23:30Z).
    later = event(
        datetime(2026, 3, 1, 21, 0, tzinfo=ZoneInfo("America/Sao_Paulo")), description="b"
    )
    earlier = event(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), description="a")

    assert descriptions(build_tracking_body([later, earlier], UTC_ZONE)) == ["a", "b"]


def test_events_at_the_same_time_keep_their_order() -> None:
    same = [event(T0, description=text) for text in ("primeiro", "segundo", "terceiro")]

    assert descriptions(build_tracking_body(same, UTC_ZONE)) == ["primeiro", "segundo", "terceiro"]


@pytest.mark.parametrize(
    ("description", "sent"),
    [
        ("  Objeto saiu para entrega \n", "Objeto saiu para entrega"),
        ("\tEntregue", "Entregue"),
        ("x" * 5000, "x" * 5000),
        ("  " + "x" * 5000 + "  ", "x" * 5000),  # trimmed first, so nothing is cut
        ("y" * 5001, "y" * 5000),
        ("ã" * 7000, "ã" * 5000),  # characters, not bytes
    ],
    ids=["trailing", "leading", "exactly-5000", "5000-padded", "5001", "non-ascii"],
)
def test_description_is_trimmed_and_cut_at_5000_characters(description: str, sent: str) -> None:
    body = build_tracking_body([event(T0, description=description)], UTC_ZONE)

    assert descriptions(body) == [sent]


@pytest.mark.parametrize(
    ("zone", "date"),
    [("UTC", "2026-03-01"), ("America/Sao_Paulo", "2026-02-28"), ("Asia/Tokyo", "2026-03-01")],
)
def test_date_is_the_day_in_the_configured_zone(zone: str, date: str) -> None:
    body = build_tracking_body([event(T0)], ZoneInfo(zone))

    assert body["events"][0]["date"] == date


@pytest.mark.parametrize(
    ("zone", "text"),
    [("UTC", "2026-03-01T01:30:00+00:00"), ("America/Sao_Paulo", "2026-02-28T22:30:00-03:00")],
)
def test_datetime_format_is_iso_8601_with_offset(zone: str, text: str) -> None:
    body = build_tracking_body([event(T0)], ZoneInfo(zone), "datetime")

    assert body["events"][0]["date"] == text
    assert datetime.fromisoformat(text) == T0


def test_not_delivered_has_no_delivered_date() -> None:
    body = build_tracking_body(HISTORY[:3], SAO_PAULO)

    assert body["isDelivered"] is False
    assert body["deliveredDate"] is None


def test_no_events_is_an_empty_undelivered_body() -> None:
    assert build_tracking_body([], UTC_ZONE) == {
        "isDelivered": False,
        "deliveredDate": None,
        "events": [],
    }


def test_delivered_date_is_the_first_delivered_event_in_the_zone() -> None:
    # The carrier reports delivery twice; the first one counts, whatever the input order.
    again = event(T0 + timedelta(days=3), Status.DELIVERED, "Entregue (confirmação)")
    history = [again, *HISTORY]

    assert build_tracking_body(history, UTC_ZONE)["deliveredDate"] == "2026-03-03 06:30"
    body = build_tracking_body(history, SAO_PAULO)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2026-03-03 03:30")


def test_delivered_date_crosses_midnight_in_the_zone() -> None:
    body = build_tracking_body([event(T0, Status.DELIVERED)], SAO_PAULO)

    assert body["deliveredDate"] == "2026-02-28 22:30"


@pytest.mark.parametrize("seed", range(20))
def test_delivered_stays_delivered_whatever_is_added(seed: int) -> None:
    rng = random.Random(seed)
    first_delivery = HISTORY[-1].occurred_at
    events = list(HISTORY)
    for _ in range(rng.randint(1, 8)):
        status = rng.choice([*Status])
        # Later deliveries, or anything else at any time (returns, scans, late-arriving history).
        offset = timedelta(minutes=rng.randint(1, 10_000))
        at = first_delivery + offset if status is Status.DELIVERED else T0 + offset
        events.append(event(at, status, f"evento {rng.random()}"))
        rng.shuffle(events)

        body = build_tracking_body(events, SAO_PAULO)

        assert body["isDelivered"] is True
        assert body["deliveredDate"] == "2026-03-03 03:30"
        assert len(body["events"]) == len(events)


@pytest.mark.parametrize("status", [Status.RETURNED, Status.IN_TRANSIT, Status.EXCEPTION])
def test_a_later_non_delivered_event_does_not_undeliver(status: Status) -> None:
    later = event(HISTORY[-1].occurred_at + timedelta(days=1), status, "Depois da entrega")

    body = build_tracking_body([*HISTORY, later], UTC_ZONE)

    assert body["isDelivered"] is True
    assert descriptions(body)[-1] == "Depois da entrega"


def test_unknown_city_and_state_are_empty_strings() -> None:
    body = build_tracking_body(
        [event(T0, city="", state=""), event(T0 + timedelta(hours=1), city="  ", state=" GO ")],
        UTC_ZONE,
    )

    assert [(e["city"], e["state"]) for e in body["events"]] == [("", ""), ("", "GO")]
