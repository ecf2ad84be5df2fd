"""Contract tests: DHL's published sample, replayed through its adapter.

The sample is read from ``$RELAY_REFERENCE_DIR/carriers/dhl/`` (see its SOURCE.md); it
is not copied into the project. It is a Shipment Tracking - Unified API *response*, not
a captured push: DHL publishes no push body, and both Unified Push and eCommerce
Americas say their callbacks carry that response format. So it is replayed as it is,
with no envelope to add: ``{shipments: [...]}`` is already the body, and the paging
fields around it (``url``, ``nextUrl``...) are ignored by the adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import dhl
from app.normalize.model import ParseContext, ShipmentUpdate, Status

FOLDER = "dhl"
RESPONSE = "unified-tracking-response-docs-sample.json"
UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def read(reference_dir: Path, name: str) -> Any:
    return json.loads((reference_dir / "carriers" / FOLDER / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = dhl.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_has_a_rule(reference_dir: Path) -> None:
    names = sorted(path.name for path in (reference_dir / "carriers" / FOLDER).glob("*.json"))

    assert names == [RESPONSE], "a new sample: replay it in this module"


def test_documented_unified_tracking_response(reference_dir: Path) -> None:
    update = parse_one(read(reference_dir, RESPONSE))

    assert update.tracking_number == "7777777770"  # a JSON number in the sample
    assert update.aliases == ()
    assert dict(update.references) == {"customer_reference": "YZ3892406173"}
    assert update.tracking_url == "http://www.dhl.de/de/privatkunden.html?piececode=7777777770"
    (event,) = update.events
    assert event.occurred_at.isoformat() == "2018-03-02T07:53:47+00:00"
    # "Oderweg 2, AMSTERDAM": the street before the comma is not the city; no region.
    assert (event.city, event.state) == ("AMSTERDAM", "")
    assert event.description == (
        "JESSICA - The shipment is pending completion of customs inspection."
    )
    # statusCode "pre-transit" wins over the contradicting status text "DELIVERED".
    assert (event.status, event.carrier_status) == (Status.INFO_RECEIVED, "pre-transit")
    # Neither the status text nor details.proofOfDelivery makes it delivered.
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)
    assert body["events"] == [
        {
            "city": "AMSTERDAM",
            "state": "",
            "description": event.description,
            "date": "2018-03-02",
        }
    ]


def test_documented_zone_less_event_time_is_read_in_the_default_zone(
    reference_dir: Path,
) -> None:
    # "2018-03-02T07:53:47" has no offset and DHL documents no zone; the event's
    # countryCode (NL) is not used to guess one.
    (event,) = parse_one(read(reference_dir, RESPONSE), SAO_PAULO).events

    assert event.occurred_at.isoformat() == "2018-03-02T10:53:47+00:00"
