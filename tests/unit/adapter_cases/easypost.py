"""EasyPost: an Event wrapping a Tracker; carrier_status is the tracker status."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "easypost"
ZONELESS_TIMES = "documented"  # EasyPost documents UTC

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "LX720559613BR",
        (
            Ev("2026-01-19T14:02:11+00:00", "", "",
               "Etiqueta criada", S.INFO_RECEIVED, "pre_transit"),
            Ev("2026-01-20T03:48:00+00:00", "Curitiba", "PR",
               "Objeto recebido na unidade", S.IN_TRANSIT, "in_transit"),
            Ev("2026-01-21T15:26:40+00:00", "Florianópolis", "SC",
               "Objeto entregue ao destinatário", S.DELIVERED, "delivered"),
        ),
        tracking_url="https://track.easypost.com/djE6dHJrX2ZpeHR1cmUx",
    ),
    Case(
        CARRIER,
        "in_transit",
        "LY518802147BR",
        (
            # An empty message falls back to the description.
            Ev("2026-02-02T10:00:00+00:00", "Londrina", "PR",
               "Objeto em trânsito para a unidade de distribuição", S.IN_TRANSIT, "in_transit"),
            Ev("2026-02-03T11:30:00+00:00", "Maringá", "PR",
               "Objeto saiu para entrega", S.OUT_FOR_DELIVERY, "out_for_delivery"),
            Ev("2026-02-03T20:10:00+00:00", "Maringá", "PR",
               "Objeto disponível para retirada na agência", S.OUT_FOR_DELIVERY,
               "available_for_pickup"),
        ),
        tracking_url="https://track.easypost.com/djE6dHJrX2ZpeHR1cmUy",
    ),
    Case(
        CARRIER,
        "exception",
        "LZ266031985BR",
        (
            Ev("2026-03-09T17:45:00+00:00", "Vitória", "ES",
               "Tentativa de entrega não efetuada", S.EXCEPTION, "failure"),
            Ev("2026-03-10T09:00:00+00:00", "Vitória", "ES",
               "Erro na leitura do código do objeto", S.EXCEPTION, "error"),
            Ev("2026-03-12T12:00:00+00:00", "Vitória", "ES",
               "Objeto devolvido ao remetente", S.RETURNED, "return_to_sender"),
        ),
        tracking_url="https://track.easypost.com/djE6dHJrX2ZpeHR1cmUz",
    ),
    Case(
        CARRIER,
        "missing_city",
        "LW401187720BR",
        (
            Ev("2026-04-14T13:00:00+00:00", "", "GO",
               "Objeto postado", S.IN_TRANSIT, "in_transit"),
            # tracking_location is null.
            Ev("2026-04-15T01:20:00+00:00", "", "",
               "Objeto em trânsito", S.IN_TRANSIT, "in_transit"),
            # tracking_location is absent.
            Ev("2026-04-15T09:00:00+00:00", "", "",
               "Situação não informada pela transportadora", S.UNKNOWN, "unknown"),
        ),
        tracking_url="https://track.easypost.com/djE6dHJrX2ZpeHR1cmU0",
    ),
    Case(
        CARRIER,
        "no_offset",
        "LV953364018BR",
        (
            # EasyPost documents UTC: a time without an offset is UTC, not the default zone.
            Ev("2026-05-20T22:40:00+00:00", "Sorocaba", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "in_transit"),
            Ev("2026-05-21T07:05:00+00:00", "Sorocaba", "SP",
               "Objeto saiu para entrega", S.OUT_FOR_DELIVERY, "out_for_delivery"),
        ),
        tracking_url="https://track.easypost.com/djE6dHJrX2ZpeHR1cmU1",
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("result", DROP),
    ("result", "trk_123"),
    ("result.tracking_code", DROP),
    ("result.tracking_code", ""),
    ("result.tracking_details", {"status": "delivered"}),
    ("result.tracking_details.0", 7),
    ("result.tracking_details.1.datetime", "21/01/2026 15:26"),
    ("result.tracking_details.2.datetime", DROP),
]
