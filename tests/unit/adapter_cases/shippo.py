"""Shippo: ``track_updated`` with a Track; carrier_status is the substatus code, else the status."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "shippo"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "NB370518264BR",
        (
            Ev("2026-06-01T13:05:00+00:00", "São Paulo", "SP",
               "Etiqueta emitida, aguardando postagem", S.INFO_RECEIVED, "information_received"),
            # Milliseconds kept; the padded status_details is trimmed.
            Ev("2026-06-02T00:47:31.250000+00:00", "Cajamar", "SP",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "package_departed"),
            Ev("2026-06-04T11:12:00+00:00", "Porto Alegre", "RS",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY, "out_for_delivery"),
            # tracking_status repeats this entry under another object_id: read once.
            Ev("2026-06-04T17:48:00+00:00", "Porto Alegre", "RS",
               "Objeto entregue ao destinatário", S.DELIVERED, "delivered"),
        ),
        tracking_url="https://rastreio.example.com.br/correios/NB370518264BR",
        references={"metadata": "Pedido 1384920551-01"},
    ),
    Case(
        CARRIER,
        "in_transit",
        "NC615092738BR",
        (
            # substatus null: the status is the carrier status.
            Ev("2026-07-06T14:55:00+00:00", "Belo Horizonte", "MG",
               "Objeto postado", S.INFO_RECEIVED, "PRE_TRANSIT"),
            Ev("2026-07-07T06:20:00+00:00", "Contagem", "MG",
               "Objeto recebido na unidade de tratamento", S.IN_TRANSIT, "package_accepted"),
            Ev("2026-07-08T22:40:00+00:00", "Contagem", "MG",
               "Objeto com atraso na entrega", S.IN_TRANSIT, "delayed"),
            # Empty status_details: the substatus text stands in.
            Ev("2026-07-10T15:58:00+00:00", "Salvador", "BA",
               "Package is available for pickup at carrier location.", S.OUT_FOR_DELIVERY,
               "pickup_available"),
        ),
        # A numeric metadata is kept as text.
        references={"metadata": "88140327"},
    ),
    Case(
        CARRIER,
        "exception",
        "ND204773156BR",
        (
            Ev("2026-08-14T20:15:00+00:00", "Recife", "PE",
               "Carteiro não atendido - entrega não realizada", S.EXCEPTION, "delivery_attempted"),
            # package_held alone is no exception; with action_required on TRANSIT it is.
            Ev("2026-08-15T12:00:00+00:00", "Recife", "PE",
               "Objeto aguardando retirada - prazo de 7 dias", S.EXCEPTION, "package_held"),
            Ev("2026-08-22T18:30:00+00:00", "Recife", "PE",
               "Objeto não retirado no prazo", S.EXCEPTION, "package_undeliverable"),
            Ev("2026-08-23T09:05:00+00:00", "Recife", "PE",
               "Objeto em devolução ao remetente", S.RETURNED, "return_to_sender"),
        ),
        tracking_url="https://rastreio.example.com.br/correios/ND204773156BR",
        references={"metadata": "Pedido 1385550127-01"},
    ),
    Case(
        CARRIER,
        "missing_city",
        "NE918406325BR",
        (
            # location is null.
            Ev("2026-09-01T10:00:00+00:00", "", "",
               "Etiqueta criada pelo remetente", S.UNKNOWN, "UNKNOWN"),
            # location is absent.
            Ev("2026-09-02T03:20:00+00:00", "", "",
               "Objeto em trânsito", S.IN_TRANSIT, "package_processing"),
            # city is null, state given.
            Ev("2026-09-02T19:35:00+00:00", "", "GO",
               "Objeto recebido na unidade de distribuição", S.IN_TRANSIT, "package_arrived"),
        ),
        # An empty metadata is no reference.
    ),
    Case(
        CARRIER,
        "status_only",
        # A Shippo test-mode number is a tracking number like any other.
        "SHIPPO_TRANSIT",
        (
            # Empty tracking_history: tracking_status alone is the event.
            Ev("2026-10-07T11:58:00+00:00", "Campinas", "SP",
               "Objeto encaminhado para a unidade de distribuição", S.IN_TRANSIT,
               "package_departed"),
        ),
        references={"metadata": "Pedido 1386000412-02"},
    ),
    # Nothing scanned yet: tracking_status UNKNOWN without a status_date gives no event.
    Case(CARRIER, "not_scanned", "NF530217849BR", ()),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("data", DROP),
    ("data", ["not", "a", "track"]),
    ("data.tracking_number", DROP),
    ("data.tracking_number", "   "),
    ("data.tracking_history", "none"),
    ("data.tracking_history.1", "TRANSIT"),
    ("data.tracking_history.0.status_date", None),
    ("data.tracking_history.2.status_date", "04/06/2026 11:12"),
    ("data.tracking_history.3.status_date", DROP),
    ("data.tracking_status", "DELIVERED"),
    ("data.tracking_status.status_date", "ontem"),
]
