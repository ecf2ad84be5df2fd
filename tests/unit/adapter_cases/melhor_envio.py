"""Melhor Envio: one event per label milestone; the label UUID is the tracking number."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "melhor_envio"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "9c3e51a2-7d4b-4f0e-8a61-2b9d0c7e4f13",
        (
            Ev("2026-05-11T13:02:44+00:00", "", "", "Etiqueta criada", S.INFO_RECEIVED, "created"),
            Ev("2026-05-11T13:05:10+00:00", "", "", "Etiqueta paga", S.INFO_RECEIVED, "released"),
            Ev("2026-05-11T13:06:02+00:00", "", "",
               "Etiqueta gerada", S.INFO_RECEIVED, "generated"),
            Ev("2026-05-12T18:41:00+00:00", "", "", "Objeto postado", S.IN_TRANSIT, "posted"),
            Ev("2026-05-15T16:27:35+00:00", "", "", "Objeto entregue", S.DELIVERED, "delivered"),
        ),
        tracking_url="https://www.melhorrastreio.com.br/rastreio/ME2605BX7K3Q",
        aliases=("NM481920375BR", "ORD-202605118830412", "ME2605BX7K3Q"),
        references={"tag": "1172452900788-01", "protocol": "ORD-202605118830412"},
    ),
    Case(
        CARRIER,
        "in_transit",
        # data.tracking is still null after posting: the label id names the shipment.
        "4f8a0d6e-2b71-4c39-9e05-7a1c3b8d5e22",
        (
            Ev("2026-06-02T19:48:12+00:00", "", "", "Etiqueta criada", S.INFO_RECEIVED, "created"),
            Ev("2026-06-02T19:50:41+00:00", "", "", "Etiqueta paga", S.INFO_RECEIVED, "released"),
            Ev("2026-06-02T19:51:03+00:00", "", "",
               "Etiqueta gerada", S.INFO_RECEIVED, "generated"),
            Ev("2026-06-03T14:09:57+00:00", "", "", "Objeto postado", S.IN_TRANSIT, "posted"),
        ),
        # "https: //..." as in Melhor Envio's documented sample, repaired.
        tracking_url="https://www.melhorrastreio.com.br/rastreio/ME2606CQ4R8T",
        aliases=("ORD-202606027715093", "ME2606CQ4R8T"),
        # The first tag is blank: the first non-blank one is the reference.
        references={"tag": "1183920014455-01", "protocol": "ORD-202606027715093"},
    ),
    Case(
        CARRIER,
        "exception",
        "d2b7c915-63e0-4a8f-b1d4-0e9f5a6c7b38",
        (
            Ev("2026-06-15T11:20:00+00:00", "", "", "Etiqueta criada", S.INFO_RECEIVED, "created"),
            Ev("2026-06-15T11:22:18+00:00", "", "", "Etiqueta paga", S.INFO_RECEIVED, "released"),
            Ev("2026-06-15T11:22:50+00:00", "", "",
               "Etiqueta gerada", S.INFO_RECEIVED, "generated"),
            Ev("2026-06-16T20:03:11+00:00", "", "", "Objeto postado", S.IN_TRANSIT, "posted"),
            # order.undelivered has no milestone: its event is at data.updated_at.
            Ev("2026-06-20T14:12:09+00:00", "", "",
               "Objeto não entregue", S.EXCEPTION, "undelivered"),
        ),
        # A tracking_url without a scheme is not a usable link.
        tracking_url=None,
        # A blank self_tracking is no alias; no tags, no tag reference.
        aliases=("10084452190371", "ORD-202606159902614"),
        references={"protocol": "ORD-202606159902614"},
    ),
    Case(
        CARRIER,
        "no_offset",
        "71e4a3c8-0f5d-4b26-a9e7-c3d8b1f20a95",
        (
            # Zone-less times, read in the default zone (São Paulo in the table).
            Ev("2026-07-01T12:15:00+00:00", "", "", "Etiqueta criada", S.INFO_RECEIVED, "created"),
            Ev("2026-07-01T12:16:30+00:00", "", "", "Etiqueta paga", S.INFO_RECEIVED, "released"),
            Ev("2026-07-02T14:00:00+00:00", "", "",
               "Etiqueta cancelada", S.EXCEPTION, "cancelled"),
        ),
        aliases=("ORD-202607014430871",),
        # A numeric tag is its text.
        references={"tag": "20260701", "protocol": "ORD-202607014430871"},
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("data", "9c3e51a2-7d4b-4f0e-8a61-2b9d0c7e4f13"),
    ("data.id", ["9c3e51a2-7d4b-4f0e-8a61-2b9d0c7e4f13"]),
    ("event", DROP),
    ("event", "  "),
    # order.delivered without its milestone says nothing readable.
    ("data.delivered_at", None),
    ("data.delivered_at", "ontem à tarde"),
    ("data.posted_at", 1715539260),
    ("data.created_at", "2026-02-30T10:00:00+00:00"),
    ("data.paid_at", True),
]
