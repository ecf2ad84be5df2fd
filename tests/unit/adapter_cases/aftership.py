"""AfterShip: checkpoints; carrier_status is the subtag."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "aftership"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "LB482019377BR",
        (
            Ev("2026-02-10T12:12:00+00:00", "", "",
               "Objeto postado", S.INFO_RECEIVED, "InfoReceived_001"),
            Ev("2026-02-12T00:05:00+00:00", "São Paulo", "SP",
               "Objeto encaminhado para a unidade de distribuição em Fortaleza / CE",
               S.IN_TRANSIT, "InTransit_007"),
            Ev("2026-02-14T17:37:00+00:00", "Fortaleza", "CE",
               "Objeto entregue ao destinatário", S.DELIVERED, "Delivered_001"),
        ),
        tracking_url="https://rastreio.example.com.br/LB482019377BR",
        # Blank and non-scalar custom fields are left out; numbers become text.
        references={
            "order_id": "1400123450042-01",
            "order_number": "1042",
            "title": "Pedido 1042",
            "custom_fields.nota_fiscal": "000104299",
            "custom_fields.canal": "loja-sp",
            "custom_fields.prioridade": "2",
        },
    ),
    Case(
        CARRIER,
        "in_transit",
        "LC905512804BR",
        (
            # An empty message falls back to the subtag message.
            Ev("2026-03-20T08:00:00+00:00", "Belém", "PA",
               "Acceptance scan", S.IN_TRANSIT, "InTransit_002"),
            Ev("2026-03-21T09:15:00+00:00", "Belém", "PA",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY,
               "OutForDelivery_001"),
            Ev("2026-03-21T20:50:00+00:00", "Belém", "PA",
               "Objeto aguardando retirada na agência", S.OUT_FOR_DELIVERY,
               "AvailableForPickup_001"),
        ),
    ),
    Case(
        CARRIER,
        "exception",
        "LD130628845BR",
        (
            Ev("2026-04-02T14:20:00+00:00", "Natal", "RN",
               "Carteiro não atendido - entrega não realizada", S.EXCEPTION, "AttemptFail_001"),
            Ev("2026-04-03T13:05:00+00:00", "Natal", "RN",
               "Endereço incorreto", S.EXCEPTION, "Exception_007"),
            # Exception_010 is AfterShip's "returning to sender".
            Ev("2026-04-08T19:00:00+00:00", "Natal", "RN",
               "Objeto em devolução ao remetente", S.RETURNED, "Exception_010"),
        ),
        tracking_url="https://rastreio.example.com.br/LD130628845BR",
    ),
    Case(
        CARRIER,
        "missing_city",
        "LE774410296BR",
        (
            Ev("2026-05-05T10:30:00+00:00", "", "",
               "Objeto em trânsito", S.IN_TRANSIT, "InTransit_001"),
            # No city: the free-text location stands in.
            Ev("2026-05-05T22:10:00+00:00", "JOINVILLE SC", "SC",
               "Objeto recebido na unidade de distribuição", S.IN_TRANSIT, "InTransit_003"),
            # No city, state or location keys at all.
            Ev("2026-05-06T11:45:00+00:00", "", "",
               "Objeto em rota", S.IN_TRANSIT, "InTransit_001"),
        ),
    ),
    Case(
        CARRIER,
        "no_offset",
        "LF338105742BR",
        (
            Ev("2026-05-21T01:40:00+00:00", "Sorocaba", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "InTransit_007"),
            Ev("2026-05-22T13:03:00+00:00", "Sorocaba", "SP",
               "Objeto entregue - assinado pelo destinatário", S.DELIVERED, "Delivered_003"),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("msg", DROP),
    ("msg", ["not", "an", "object"]),
    ("msg.tracking_number", DROP),
    ("msg.tracking_number", "  "),
    ("msg.checkpoints", "none"),
    ("msg.checkpoints.2", "Delivered"),
    ("msg.checkpoints.0.checkpoint_time", None),
    ("msg.checkpoints.1.checkpoint_time", "ontem à noite"),
    ("msg.checkpoints.2.checkpoint_time", DROP),
]
