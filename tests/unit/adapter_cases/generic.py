"""The relay's own format: status is already one of ours."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "generic"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "QB204815537BR",
        (
            Ev("2026-03-02T11:10:00+00:00", "Campinas", "SP",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "in_transit"),
            Ev("2026-03-03T12:45:00+00:00", "Belo Horizonte", "MG",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY, "out_for_delivery"),
            Ev("2026-03-03T19:20:00+00:00", "Belo Horizonte", "MG",
               "Objeto entregue ao destinatário", S.DELIVERED, "delivered"),
        ),
        tracking_url="https://rastreio.example.com.br/QB204815537BR",
        order_id="1400123450001-01",
        invoice_number="000104233",
    ),
    Case(
        CARRIER,
        "in_transit",
        "QC771093264BR",
        (
            Ev("2026-04-10T13:05:00+00:00", "Recife", "PE",
               "Etiqueta emitida", S.INFO_RECEIVED, "info_received"),
            Ev("2026-04-11T05:30:00+00:00", "Porto Alegre", "RS",
               "Objeto encaminhado para a unidade de tratamento", S.IN_TRANSIT, "in_transit"),
        ),
    ),
    Case(
        CARRIER,
        "exception",
        "QD390027718BR",
        (
            Ev("2026-05-04T13:00:00+00:00", "Salvador", "BA",
               "Objeto saiu para entrega", S.OUT_FOR_DELIVERY, "out_for_delivery"),
            Ev("2026-05-04T18:42:00+00:00", "Salvador", "BA",
               "Destinatário ausente - nova tentativa no próximo dia útil", S.EXCEPTION,
               "exception"),
            Ev("2026-05-09T14:00:00+00:00", "Salvador", "BA",
               "Objeto devolvido ao remetente", S.RETURNED, "returned"),
        ),
    ),
    Case(
        CARRIER,
        "missing_city",
        "QE118204550BR",
        (
            Ev("2026-06-15T12:00:00+00:00", "", "",
               "Pedido de coleta registrado", S.INFO_RECEIVED, "info_received"),
            Ev("2026-06-15T21:30:00+00:00", "", "GO",
               "Coletado pela transportadora", S.IN_TRANSIT, "in_transit"),
        ),
    ),
    Case(
        CARRIER,
        "no_offset",
        "QF602251893BR",
        (
            # 22:40 in São Paulo (-03:00) is the next day in UTC.
            Ev("2026-05-21T01:40:00+00:00", "Sorocaba", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "in_transit"),
            # A bare date is midnight in the default zone.
            Ev("2026-05-22T03:00:00+00:00", "Sorocaba", "SP",
               "Objeto entregue ao destinatário", S.DELIVERED, "delivered"),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("trackingNumber", DROP),
    ("trackingNumber", ""),
    ("trackingNumber", "   "),
    ("events", DROP),
    ("events", {"time": "2026-03-03T16:20:00-03:00"}),
    ("events.0.time", "03/03/2026 16:20"),
    ("events.1.time", DROP),
    ("events.2.time", "2026-02-30T10:00:00-03:00"),
    ("events.0.status", "lost_in_space"),
    ("invoiceNumber", DROP),
    ("invoiceNumber", " "),
    ("orderId", ""),
]
