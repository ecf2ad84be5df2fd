"""Edge cases of single adapters that the fixture tables do not show (found in review)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.normalize.carriers import dhl, seventeen_track, shippo, ups
from app.normalize.model import ParseContext, Status

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAO_PAULO = ParseContext(default_zone=ZoneInfo("America/Sao_Paulo"))


def load(carrier: str, fixture: str) -> Any:
    return json.loads((FIXTURES / carrier / f"{fixture}.json").read_text(encoding="utf-8"))


def dhl_newest_event(payload: Any) -> Any:
    """The delivered fixture's newest event, its repeat (the fixture sends it twice) dropped."""
    events = payload["shipments"][0]["events"]
    del events[1]
    return events[0]


def test_17track_time_iso_without_offset_yields_to_time_utc() -> None:
    payload = load("17track", "delivered")
    events = payload["data"]["track_info"]["tracking"]["providers"][0]["events"]
    events[0]["time_iso"] = "2026-06-12T16:42:00"  # its offset lost
    events[0]["time_utc"] = "2026-06-12T19:42:00Z"

    [update] = seventeen_track.parse(payload, SAO_PAULO)

    assert update.events[-1].occurred_at.isoformat() == "2026-06-12T19:42:00+00:00"


def test_17track_time_iso_without_offset_alone_is_read_in_the_default_zone() -> None:
    payload = load("17track", "delivered")
    events = payload["data"]["track_info"]["tracking"]["providers"][0]["events"]
    events[0]["time_iso"], events[0]["time_utc"] = "2026-06-12T16:42:00", None

    [update] = seventeen_track.parse(payload, SAO_PAULO)

    assert update.events[-1].occurred_at.isoformat() == "2026-06-12T19:42:00+00:00"


@pytest.mark.parametrize(
    ("status", "substatus", "expected"),
    [
        ("RETURNED", "information_received", Status.RETURNED),
        ("FAILURE", "information_received", Status.EXCEPTION),
        ("FAILURE", "out_for_delivery", Status.EXCEPTION),
        ("FAILURE", "return_to_sender", Status.RETURNED),
        ("DELIVERED", "delivery_attempted", Status.DELIVERED),
        ("TRANSIT", "out_for_delivery", Status.OUT_FOR_DELIVERY),
    ],
)
def test_shippo_substatus_never_softens_a_final_status(
    status: str, substatus: str, expected: Status
) -> None:
    payload = load("shippo", "exception")
    entry = copy.deepcopy(payload["data"]["tracking_history"][0])
    entry.update(status=status, substatus={"code": substatus, "action_required": False})
    payload["data"]["tracking_history"] = [entry]
    payload["data"]["tracking_status"] = entry

    [update] = shippo.parse(payload, SAO_PAULO)

    assert [event.status for event in update.events] == [expected]


@pytest.mark.parametrize(
    ("locality", "region", "place"),
    [
        ("Salt Lake City, UT, US", None, ("Salt Lake City", "UT")),
        ("Oderweg 2, AMSTERDAM", None, ("AMSTERDAM", "")),
        ("Av. Afonso Pena 3200, BELO HORIZONTE, MG, BR", None, ("BELO HORIZONTE", "MG")),
        ("Av. Afonso Pena 3200, BELO HORIZONTE", "MG", ("BELO HORIZONTE", "MG")),
        ("CURITIBA", None, ("CURITIBA", "")),
    ],
)
def test_dhl_free_text_locality_gives_city_and_state(
    locality: str, region: str | None, place: tuple[str, str]
) -> None:
    payload = load("dhl", "delivered")
    address = dhl_newest_event(payload)["location"]["address"]
    address["addressLocality"] = locality
    address.pop("addressRegion", None)
    if region:
        address["addressRegion"] = region

    [update, *_] = dhl.parse(payload, SAO_PAULO)

    newest = update.events[-1]
    assert (newest.city, newest.state) == place


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Shipment returned to shipper", Status.RETURNED),
        ("Objeto devolvido ao remetente", Status.RETURNED),
        ("Entregue ao destinatário", Status.DELIVERED),
        ("Delivered - return label included", Status.DELIVERED),
    ],
)
def test_dhl_delivered_back_to_the_shipper_is_a_return(description: str, expected: Status) -> None:
    payload = load("dhl", "delivered")
    dhl_newest_event(payload)["description"] = description

    [update, *_] = dhl.parse(payload, SAO_PAULO)

    assert update.events[-1].status is expected


@pytest.mark.parametrize("actual", ["00000000", "N/A", "20261340", "", None])
def test_ups_type_d_without_a_real_delivery_date_is_out_for_delivery(actual: Any) -> None:
    payload = load("ups", "delivered")
    payload["actualDeliveryDate"] = actual

    [update] = ups.parse(payload, SAO_PAULO)

    assert [event.status for event in update.events] == [Status.OUT_FOR_DELIVERY]
