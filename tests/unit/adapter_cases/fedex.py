"""FedEx AIV pushes: Track API track results; status from eventType, else derivedStatusCode."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "fedex"
TRACK = "output.completeTrackResults.0.trackResults.0"
DELIVERED_REFERENCES = {
    # A one-item array and a string read alike; of several values the first is kept.
    "customer_reference": "1190334120551-01",
    "invoice": "88412",
    "purchase_order": "PO-55120",
}

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "770412385516",
        (
            # Whole history, newest first in the push. No place but the country: "".
            Ev("2026-05-12T01:47:00+00:00", "", "",
               "Shipment information sent to FedEx", S.INFO_RECEIVED, "OC"),
            Ev("2026-05-12T21:05:00+00:00", "ATLANTA", "GA",
               "Picked up", S.IN_TRANSIT, "PU"),
            Ev("2026-05-13T00:10:00+00:00", "ATLANTA", "GA",
               "Left FedEx origin facility", S.IN_TRANSIT, "DP"),
            Ev("2026-05-14T00:55:00+00:00", "MEMPHIS", "TN",
               "Arrived at FedEx hub", S.IN_TRANSIT, "AR"),
            Ev("2026-05-14T03:40:00+00:00", "MEMPHIS", "TN",
               "Departed FedEx hub", S.IN_TRANSIT, "DP"),
            Ev("2026-05-14T11:12:00+00:00", "AUSTIN", "TX",
               "At local FedEx facility", S.IN_TRANSIT, "AR"),
            # eventType OD wins over its derivedStatusCode IT.
            Ev("2026-05-14T13:05:00+00:00", "AUSTIN", "TX",
               "On FedEx vehicle for delivery", S.OUT_FOR_DELIVERY, "OD"),
            Ev("2026-05-14T19:32:00+00:00", "AUSTIN", "TX",
               "Delivered", S.DELIVERED, "DL"),
        ),
        references=DELIVERED_REFERENCES,
    ),
    Case(
        CARRIER,
        "proof_of_delivery",
        "770412385516",
        (
            # The second push of the delivery (newest event only, with the proof): the same
            # DL scan as in "delivered", so the same event.
            Ev("2026-05-14T19:32:00+00:00", "AUSTIN", "TX",
               "Delivered", S.DELIVERED, "DL"),
        ),
        references=DELIVERED_REFERENCES,
    ),
    Case(
        CARRIER,
        "in_transit",
        "785539106231",
        (
            # Scans out of order in the push; no scanLocation at all for OC.
            Ev("2026-06-02T14:14:00+00:00", "", "",
               "Shipment information sent to FedEx", S.INFO_RECEIVED, "OC"),
            Ev("2026-06-02T20:40:00+00:00", "NEWARK", "NJ",
               "Picked up", S.IN_TRANSIT, "PU"),
            Ev("2026-06-03T05:20:00+00:00", "EDISON", "NJ",
               "Arrived at FedEx location", S.IN_TRANSIT, "AR"),
            Ev("2026-06-03T09:02:00+00:00", "EDISON", "NJ",
               "Departed FedEx location", S.IN_TRANSIT, "DP"),
            Ev("2026-06-04T04:55:00+00:00", "CHICAGO", "IL",
               "On the way", S.IN_TRANSIT, "IT"),
        ),
        # A blank first item of an array value is skipped.
        references={"customer_reference": "1190334120662-01", "department": "E-COMMERCE"},
    ),
    Case(
        CARRIER,
        "in_transit",
        "785539106242",
        (
            # PF is no code of the webhook's table: derivedStatusCode IT says in transit.
            Ev("2026-06-03T18:30:00+00:00", "INDIANAPOLIS", "IN",
               "Plane in flight", S.IN_TRANSIT, "PF"),
        ),
        # Asked about by its door tag: the package's own number, the door tag an alias.
        aliases=("DT106450118235",),
        update=1,
    ),
    # (The push's third number, 785539106253, is FedEx's NOTFOUND error: no update.)
    Case(
        CARRIER,
        "exception",
        "771894302215",
        (
            # Payload language pt-BR; blank exception fields are not appended.
            Ev("2026-07-06T20:30:00+00:00", "MEMPHIS", "TN",
               "Coletado", S.IN_TRANSIT, "PU"),
            Ev("2026-07-07T07:10:00+00:00", "MEMPHIS", "TN",
               "Saiu da unidade da FedEx", S.IN_TRANSIT, "DP"),
            # "Entregue" in the text of an AR scan: the code says in transit.
            Ev("2026-07-08T09:45:00+00:00", "CAMPINAS", "SP",
               "Entregue à unidade da FedEx em Campinas", S.IN_TRANSIT, "AR"),
            Ev("2026-07-08T14:20:00+00:00", "CAMPINAS", "SP",
               "Atraso na liberação - Documentação de importação pendente",
               S.EXCEPTION, "CD"),
            Ev("2026-07-09T19:05:00+00:00", "CAMPINAS", "SP",
               "Liberação internacional do envio", S.IN_TRANSIT, "CC"),
            Ev("2026-07-10T11:40:00+00:00", "SAO PAULO", "SP",
               "Em veículo da FedEx para entrega", S.OUT_FOR_DELIVERY, "OD"),
            Ev("2026-07-10T20:55:00+00:00", "SAO PAULO", "SP",
               "Exceção de entrega - Destinatário ausente ou empresa fechada",
               S.EXCEPTION, "DE"),
        ),
        references={"customer_reference": "1190334120773-01", "invoice": "NF-000481229"},
    ),
    Case(
        CARRIER,
        "returned",
        "771894302226",
        (
            Ev("2026-07-20T18:02:00+00:00", "ORLANDO", "FL",
               "Picked up", S.IN_TRANSIT, "PU"),
            Ev("2026-07-21T01:15:00+00:00", "ORLANDO", "FL",
               "Left FedEx origin facility", S.IN_TRANSIT, "DP"),
            Ev("2026-07-21T11:30:00+00:00", "MIAMI", "FL",
               "At local FedEx facility", S.IN_TRANSIT, "AR"),
            Ev("2026-07-21T13:05:00+00:00", "MIAMI", "FL",
               "On FedEx vehicle for delivery", S.OUT_FOR_DELIVERY, "OD"),
            Ev("2026-07-21T17:48:00+00:00", "MIAMI", "FL",
               "Delivery exception - Refused by recipient", S.EXCEPTION, "DE"),
            # RT (a delivery option: return requested) whose derivedStatusCode is DE.
            Ev("2026-07-21T20:10:00+00:00", "MIAMI", "FL",
               "Return to shipper requested", S.RETURNED, "RT"),
            Ev("2026-07-22T10:25:00+00:00", "MIAMI", "FL",
               "Returning package to shipper", S.RETURNED, "RS"),
        ),
        # A number value is its text; the second CUSTOMER_REFERENCE is ignored.
        references={
            "customer_reference": "1190334120884-01",
            "invoice": "88413",
            "return_materials_authorization": "RMA-20931",
            "returned_to_shipper_tracking_number": "771894309981",
        },
    ),
    Case(
        CARRIER,
        "no_offset",
        "785539106264",
        (
            # Zone-less scan times, read in the default zone (São Paulo in the table).
            Ev("2026-08-03T19:20:00+00:00", "CHARLOTTE", "NC",
               "Picked up", S.IN_TRANSIT, "PU"),
            Ev("2026-08-04T10:05:00+00:00", "RALEIGH", "NC",
               "At local FedEx facility", S.IN_TRANSIT, "AR"),
            # A DL scan without a date: dateAndTimes ACTUAL_DELIVERY (zone-less) dates it.
            Ev("2026-08-04T16:41:00+00:00", "RALEIGH", "NC",
               "Delivered", S.DELIVERED, "DL"),
        ),
    ),
    Case(
        CARRIER,
        "missing_city",
        "785539106275",
        (
            Ev("2026-08-10T15:00:00+00:00", "", "",
               "Shipment information sent to FedEx", S.INFO_RECEIVED, "OC"),
            Ev("2026-08-10T21:45:00+00:00", "", "",
               "Picked up", S.IN_TRANSIT, "PU"),
            # A blank city beside a state; no eventDescription: derivedStatus stands in.
            Ev("2026-08-11T13:30:00+00:00", "", "GA",
               "In transit", S.IN_TRANSIT, "AR"),
            Ev("2026-08-11T19:10:00+00:00", "", "",
               "Departed FedEx location", S.IN_TRANSIT, "DP"),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
# The push lists its scans newest first: scanEvents.0 is the DL scan.
REJECTIONS = [
    ("output", DROP),
    ("output", ["completeTrackResults"]),
    ("output.completeTrackResults", DROP),
    ("output.completeTrackResults", {"trackingNumber": "770412385516"}),
    ("output.completeTrackResults.0", "770412385516"),
    ("output.completeTrackResults.0.trackResults", "DL"),
    (TRACK, ["DL"]),
    (f"{TRACK}.scanEvents", {"eventType": "DL"}),
    (f"{TRACK}.scanEvents.1", "OD"),
    (f"{TRACK}.scanEvents.1.date", "14/05/2026 08:05"),
    (f"{TRACK}.scanEvents.2.date", DROP),
    (f"{TRACK}.scanEvents.0.date", "2026-05-14T25:32:00-05:00"),
    (f"{TRACK}.scanEvents.7.date", 20260511),
]
