"""Intelipost: one volume state change per POST; carrier_status is ``MACRO/micro code``."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "intelipost"

NFE_48213 = "35260412345678000190550010000482131004821317"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "SM1190457702391V1BR",
        (
            Ev("2026-04-16T18:42:00+00:00", "", "",
               "Entrega realizada - recebido por Ana Souza", S.DELIVERED, "DELIVERED/5"),
        ),
        tracking_url="https://status.example.com.br/rastreio/SM1190457702391V1BR",
        references={
            "order_number": "1190457702391-01",
            "sales_order_number": "1190457702391-01",
            "invoice_number": "48213",
            "invoice_series": "1",
            "invoice_key": NFE_48213,
            "volume_number": "1",
        },
    ),
    Case(
        CARRIER,
        "in_transit",
        # Volume 2 of the delivered fixture's order: its own tracking code, its own shipment.
        "SM1190457702391V2BR",
        (
            # Empty provider_message: the micro state's name; its code is a JSON number.
            Ev("2026-04-14T09:05:33+00:00", "", "",
               "CARGA REDESPACHADA", S.IN_TRANSIT, "IN_TRANSIT/27"),
        ),
        references={
            "order_number": "1190457702391-01",
            "invoice_number": "48213",  # numbers as text
            "invoice_series": "1",
            "invoice_key": NFE_48213,
            "volume_number": "2",
        },
    ),
    Case(
        CARRIER,
        "exception",
        "SM1190512233480V1BR",
        (
            # No provider_message, micro state without a name: its description, trimmed.
            Ev("2026-05-07T14:20:00+00:00", "", "",
               "Destinatário ausente no momento da entrega.", S.EXCEPTION,
               "DELIVERY_FAILED/40"),
        ),
        references={
            "order_number": "1190512233480-01",
            "invoice_number": "51877",
            "invoice_series": "2",
            "invoice_key": "41260598765432000110550020000518771005187712",
            "volume_number": "1",
        },
    ),
    Case(
        CARRIER,
        "epoch_only",
        "SM1190533391122V1BR",
        (
            # No event_date_iso: event_date 1779274080000 ms; no micro state.
            Ev("2026-05-20T10:48:00+00:00", "", "",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY,
               "TO_BE_DELIVERED"),
        ),
        # The empty invoice_key is left out.
        references={
            "order_number": "1190533391122-01",
            "invoice_number": "53002",
            "invoice_series": "1",
            "volume_number": "1",
        },
    ),
    Case(
        CARRIER,
        "returned",
        "SM1190545566771V1BR",
        (
            # A DELIVERY_FAILED whose micro state is a return ("devolução").
            Ev("2026-06-02T20:10:00+00:00", "", "",
               "EM DEVOLUÇÃO AO REMETENTE", S.RETURNED, "DELIVERY_FAILED/62"),
        ),
        references={
            "order_number": "1190545566771-01",
            "invoice_number": "54410",
            "invoice_series": "1",
            "invoice_key": "31260611122233000144550010000544101005441019",
            "volume_number": "1",
        },
    ),
    Case(
        CARRIER,
        "info_received",
        "SM1190558899001V1BR",
        (
            # No message, no micro state: the localized macro state.
            Ev("2026-06-10T12:00:00+00:00", "", "", "Novo", S.INFO_RECEIVED, "NEW"),
        ),
        # No invoice yet.
        references={"order_number": "1190558899001-01", "volume_number": "1"},
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("history", DROP),
    ("history", ["DELIVERED"]),
    ("tracking_code", DROP),
    ("tracking_code", " "),
    ("history.shipment_order_volume_state", None),
    ("history.shipment_order_volume_state", ""),
    ("history.event_date_iso", "16/04/2026 15:42"),
    ("history.event_date_iso", 1776364920000),
    ("history.event_date_iso", "1970-01-01T00:00:00Z"),
]
