"""Edge cases of single adapters that the fixture tables do not show (found in review)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.ingest.carriers import BUILT_IN
from app.ingest.intake import read_updates
from app.normalize.carriers import dhl, fedex, seventeen_track, shippo, ups
from app.normalize.model import ParseContext, PayloadRejected, Status, event_identity
from app.settings import Settings

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


# --- FedEx ------------------------------------------------------------------------------


def fedex_result(payload: Any, entry: int = 0, result: int = 0) -> Any:
    return payload["output"]["completeTrackResults"][entry]["trackResults"][result]


def test_fedex_proof_of_delivery_push_brings_the_same_event_as_the_delivery() -> None:
    # With proof of delivery FedEx pushes a delivery twice, with the same delivery time.
    [delivered] = fedex.parse(load("fedex", "delivered"), SAO_PAULO)
    [proof] = fedex.parse(load("fedex", "proof_of_delivery"), SAO_PAULO)

    def identities(events: Any) -> set[str]:
        return {event_identity("fedex", delivered.tracking_number, event) for event in events}

    assert identities(proof.events) <= identities(delivered.events)
    both = build_tracking_body((*delivered.events, *proof.events), ZoneInfo("UTC"))
    alone = build_tracking_body(delivered.events, ZoneInfo("UTC"))
    assert (both["isDelivered"], both["deliveredDate"]) == (True, "2026-05-14 19:32")
    assert both["deliveredDate"] == alone["deliveredDate"]


def test_fedex_whole_history_resent_as_newest_event_only_is_the_same_events() -> None:
    whole = load("fedex", "delivered")
    [update] = fedex.parse(whole, SAO_PAULO)
    for index in range(len(fedex_result(whole)["scanEvents"])):
        one = copy.deepcopy(whole)
        fedex_result(one)["scanEvents"] = [fedex_result(whole)["scanEvents"][index]]

        [single] = fedex.parse(one, SAO_PAULO)

        assert set(single.events) <= set(update.events)


@pytest.mark.parametrize(
    ("event_type", "derived", "expected"),
    [
        ("DL", "DL", Status.DELIVERED),
        ("dl", None, Status.DELIVERED),
        (None, "DL", Status.DELIVERED),
        # A code FedEx adds later: its derivedStatusCode says what it means.
        ("ZZ", "DL", Status.DELIVERED),
        # A known eventType is the scan's own code and wins over its derived status.
        ("OD", "DL", Status.OUT_FOR_DELIVERY),
        ("AR", "DL", Status.IN_TRANSIT),
        ("RS", "DL", Status.RETURNED),
        ("CA", None, Status.EXCEPTION),
        ("HP", "IT", Status.OUT_FOR_DELIVERY),
        ("ZZ", "YY", Status.UNKNOWN),
        (None, None, Status.UNKNOWN),
    ],
)
def test_fedex_status_comes_from_the_codes_never_the_text(
    event_type: str | None, derived: str | None, expected: Status
) -> None:
    payload = load("fedex", "in_transit")
    scan = fedex_result(payload)["scanEvents"][0]
    scan.update(eventType=event_type, derivedStatusCode=derived)
    scan.update(eventDescription="Delivered", derivedStatus="Delivered")

    [update, _] = fedex.parse(payload, SAO_PAULO)

    [event] = [e for e in update.events if e.occurred_at.isoformat().startswith("2026-06-03T09")]
    assert event.status is expected
    assert event.carrier_status == (event_type or derived or "").upper()


def test_fedex_delivered_only_with_a_delivery_scan() -> None:
    # latestStatusDetail DL, ACTUAL_DELIVERY and deliveryDetails stay; the DL scan goes.
    payload = load("fedex", "delivered")
    del fedex_result(payload)["scanEvents"][0]

    [update] = fedex.parse(payload, SAO_PAULO)

    assert Status.DELIVERED not in {event.status for event in update.events}
    assert build_tracking_body(update.events, ZoneInfo("UTC"))["isDelivered"] is False


def test_fedex_track_results_of_one_number_make_one_update() -> None:
    # FedEx lists shipments that share a number as several trackResults of one entry.
    payload = load("fedex", "in_transit")
    entry = payload["output"]["completeTrackResults"][0]
    other = copy.deepcopy(entry["trackResults"][0])
    other["scanEvents"] = other["scanEvents"][:2]  # resent scans: duplicates
    other["scanEvents"].append({**other["scanEvents"][0], "date": "2026-06-05T10:00:00-05:00"})
    other["additionalTrackingInfo"]["packageIdentifiers"] = [
        {"type": "CUSTOMER_REFERENCE", "value": "second-one-loses"},
        {"type": "INVOICE", "value": ["NF-7781"]},
    ]
    entry["trackResults"].append(other)

    updates = fedex.parse(payload, SAO_PAULO)

    assert [u.tracking_number for u in updates] == ["785539106231", "785539106242"]
    times = [event.occurred_at for event in updates[0].events]
    assert len(times) == 6
    assert times == sorted(times)
    assert dict(updates[0].references) == {
        "customer_reference": "1190334120662-01",
        "department": "E-COMMERCE",
        "invoice": "NF-7781",
    }


def test_fedex_number_from_the_entry_when_the_track_result_has_none() -> None:
    payload = load("fedex", "delivered")
    del fedex_result(payload)["trackingNumberInfo"]

    [update] = fedex.parse(payload, SAO_PAULO)

    assert (update.tracking_number, update.aliases) == ("770412385516", ())


def test_fedex_a_track_result_without_any_number_is_rejected_naming_both_places() -> None:
    payload = load("fedex", "delivered")
    del fedex_result(payload)["trackingNumberInfo"]["trackingNumber"]
    del payload["output"]["completeTrackResults"][0]["trackingNumber"]

    with pytest.raises(PayloadRejected) as rejected:
        fedex.parse(payload, SAO_PAULO)

    assert "trackResults.0.trackingNumberInfo.trackingNumber" in rejected.value.detail
    assert "output.completeTrackResults.0.trackingNumber" in rejected.value.detail


@pytest.mark.parametrize(
    ("actual_delivery", "named"),
    [
        (None, "scanEvents.0.date"),
        ("27/09/2026", "trackResults.0.dateAndTimes.0.dateTime"),
    ],
)
def test_fedex_delivery_scan_without_a_usable_time_is_rejected(
    actual_delivery: str | None, named: str
) -> None:
    payload = load("fedex", "delivered")
    result = fedex_result(payload)
    del result["scanEvents"][0]["date"]
    result["dateAndTimes"] = (
        []
        if actual_delivery is None
        else [{"type": "ACTUAL_DELIVERY", "dateTime": actual_delivery}]
    )

    with pytest.raises(PayloadRejected) as rejected:
        fedex.parse(payload, SAO_PAULO)

    assert named in rejected.value.detail


def test_fedex_unreadable_estimates_never_reject_a_push() -> None:
    payload = load("fedex", "delivered")
    fedex_result(payload)["dateAndTimes"] = [
        {"type": "ESTIMATED_DELIVERY", "dateTime": "soon"},
        {"type": "ACTUAL_DELIVERY", "dateTime": "never"},  # the DL scan has its own date
        "2026-05-14",
        None,
    ]

    assert fedex.parse(payload, SAO_PAULO) == fedex.parse(load("fedex", "delivered"), SAO_PAULO)


@pytest.mark.parametrize(
    ("configured", "invoice"),
    [
        (
            {"order_id_from": "customer_reference", "invoice_number_from": "invoice"},
            ("1190334120551-01", "88412"),
        ),
        (
            {
                "order_id_from": "purchase_order",
                "reference_pattern": r"^(?P<order_id>PO-\d+)$",
                "invoice_number_from": "invoice",
            },
            ("PO-55120", "88412"),
        ),
    ],
)
def test_fedex_package_identifiers_register_the_shipment_per_the_settings(
    configured: dict[str, str], invoice: tuple[str, str]
) -> None:
    settings = Settings(_env_file=None, carriers={"fedex": configured})

    [update] = read_updates(BUILT_IN["fedex"], load("fedex", "delivered"), settings, SAO_PAULO)

    assert (update.order_id, update.invoice_number) == invoice
