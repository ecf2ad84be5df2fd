"""ShipEngine: ``data.events``; carrier_status is the event's status_detail_code or status_code.

``occurred_at`` is UTC even without an offset (in_transit), while the carrier-local
``carrier_occurred_at`` used when it is missing is read in the default zone (no_offset):
so the zone-less rule tested on no_offset is the default zone's.
"""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "shipengine"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "OS558201746BR",
        (
            # Newest first in the body; the delivery scan is repeated and kept once.
            Ev("2026-06-15T19:12:44+00:00", "São Paulo", "SP",
               "Objeto postado", S.INFO_RECEIVED, "COLLECTION_MADE"),
            # Empty description: carrier_status_description stands in.
            Ev("2026-06-16T22:30:00+00:00", "Curitiba", "PR",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "IN_TRANSIT"),
            Ev("2026-06-18T11:05:00+00:00", "Porto Alegre", "RS",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY, "OUT_FOR_DELIVERY"),
            Ev("2026-06-18T17:42:10+00:00", "Porto Alegre", "RS",
               "Objeto entregue ao destinatário", S.DELIVERED, "DELIVERED"),
        ),
        tracking_url="https://rastreio.example.com.br/OS558201746BR",
        references={"label_id": "se-284613907"},
    ),
    Case(
        CARRIER,
        "in_transit",
        "OT640381925BR",
        (
            # No status_detail_code: the status_code is the carrier status.
            Ev("2026-07-01T13:20:00+00:00", "Campinas", "SP",
               "Objeto postado após o horário limite da unidade", S.INFO_RECEIVED, "AC"),
            # occurred_at without an offset is UTC (documented), not São Paulo time.
            Ev("2026-07-02T09:47:31+00:00", "Belo Horizonte", "MG",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "HUB_SCAN_OUT"),
            Ev("2026-07-03T12:10:00+00:00", "Contagem", "MG",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY, "OUT_FOR_DELIVERY"),
            # status_code IT refined by the detail code: waiting at the pickup point.
            Ev("2026-07-03T19:55:00+00:00", "Contagem", "MG",
               "Objeto aguardando retirada no endereço indicado", S.OUT_FOR_DELIVERY,
               "AWAITING_COLLECTION_FROM_PICKUP_POINT"),
        ),
        tracking_url="https://rastreio.example.com.br/OT640381925BR",
    ),
    Case(
        CARRIER,
        "exception",
        "OU172946358BR",
        (
            Ev("2026-08-04T09:00:00+00:00", "", "",
               "Etiqueta emitida, aguardando postagem", S.INFO_RECEIVED,
               "AWAITING_ELECTRONIC_ADVICE"),
            Ev("2026-08-07T12:00:00+00:00", "Olinda", "PE",
               "Endereço incorreto", S.EXCEPTION, "ADDRESS_QUERY"),
            Ev("2026-08-08T18:40:00+00:00", "Recife", "PE",
               "Destinatário ausente - nova tentativa no próximo dia útil", S.EXCEPTION,
               "ATTEMPTED_DELIVERY"),
            # status_code EX refined by RETURN_TO_SENDER.
            Ev("2026-08-12T15:00:00+00:00", "Recife", "PE",
               "Objeto devolvido ao remetente", S.RETURNED, "RETURN_TO_SENDER"),
        ),
        tracking_url="https://rastreio.example.com.br/OU172946358BR",
        references={"label_id": "se-390174562"},
    ),
    Case(
        CARRIER,
        "no_offset",
        "OV803517264BR",
        (
            # occurred_at null or absent: carrier_occurred_at, local, read in São Paulo.
            Ev("2026-09-08T13:00:00+00:00", "Brasília", "DF",
               "Objeto postado", S.INFO_RECEIVED, "AC"),
            # status_code "" on an older event: unknown; the carrier's raw code is kept.
            Ev("2026-09-10T00:15:00+00:00", "Anápolis", "GO",
               "Objeto em trânsito - por favor aguarde", S.UNKNOWN, "RO"),
            # status_code "" on the newest event: the tracking's SP (delivered to the
            # collection point) is lent to it; carrier_status stays its own.
            Ev("2026-09-10T19:25:00+00:00", "Goiânia", "GO",
               # SP (at the pickup point) waits for the buyer, like AvailableForPickup.
               "Objeto entregue no ponto de retirada escolhido", S.OUT_FOR_DELIVERY, "LDI"),
        ),
        tracking_url="https://rastreio.example.com.br/OV803517264BR",
    ),
    Case(
        CARRIER,
        "missing_city",
        "OW295730481BR",
        (
            Ev("2026-12-01T14:00:00+00:00", "", "SC",
               "Objeto postado", S.INFO_RECEIVED, "AC"),
            # city_locality and state_province absent.
            Ev("2026-12-02T03:30:00+00:00", "", "",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "IT"),
            # Blank city and state.
            Ev("2026-12-02T20:45:00+00:00", "", "",
               "Objeto recebido na unidade de distribuição", S.IN_TRANSIT,
               "RECEIVED_LOCAL_DELIVERY_DEPOT"),
        ),
        tracking_url="https://rastreio.example.com.br/OW295730481BR",
        # A v1 label URL with a query string still names the label.
        references={"label_id": "se-512908331"},
    ),
    Case(
        CARRIER,
        "legacy",
        "OX418062953BR",
        (
            # 2019 field names: event_date; event_description stands in for an empty
            # description; no codes on events, so only the newest gets the tracking's DE.
            Ev("2026-11-04T07:30:00+00:00", "Manaus", "AM",
               "Objeto saiu para entrega ao destinatário", S.UNKNOWN, ""),
            Ev("2026-11-05T18:03:27.412000+00:00", "Manaus", "AM",
               "Objeto entregue ao destinatário", S.DELIVERED, ""),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("data", DROP),
    ("data", "se-284613907"),
    ("data.tracking_number", DROP),
    ("data.tracking_number", " "),
    ("data.events", {"status_code": "DE"}),
    ("data.events.0", 7),
    ("data.events.0.occurred_at", 1781804530),
    ("data.events.2.occurred_at", "18/06/2026 08:05"),
    # Event 3 has no carrier_occurred_at to fall back on.
    ("data.events.3.occurred_at", DROP),
    ("data.events.3.occurred_at", None),
]
