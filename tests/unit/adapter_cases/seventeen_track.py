"""17TRACK: every provider's events merged; carrier_status is the sub_status, else the stage."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "17track"

EVENTS = "data.track_info.tracking.providers"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "TB618204973BR",
        (
            # The first-mile provider's events, newest first in the payload.
            Ev("2026-06-09T13:00:00+00:00", "São Paulo", "SP",
               "Etiqueta criada", S.INFO_RECEIVED, "InfoReceived"),
            Ev("2026-06-09T21:20:00+00:00", "São Paulo", "SP",
               "Pedido coletado no vendedor", S.IN_TRANSIT, "InTransit_PickedUp"),
            # The hand-over, reported by both providers: once.
            Ev("2026-06-10T17:30:00+00:00", "Cajamar", "SP",
               "Objeto recebido pelos Correios do Brasil", S.IN_TRANSIT, "InTransit_PickedUp"),
            # time_raw only (23:10 at -03:00); empty address: the location is split.
            Ev("2026-06-12T02:10:00+00:00", "SAO JOSE", "SC",
               "Objeto recebido na unidade de distribuição", S.IN_TRANSIT, "InTransit_Arrival"),
            Ev("2026-06-12T11:05:00+00:00", "FLORIANOPOLIS", "SC",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY,
               "OutForDelivery_Other"),
            Ev("2026-06-12T19:42:00+00:00", "FLORIANOPOLIS", "SC",
               "Objeto entregue ao destinatário", S.DELIVERED, "Delivered_Other"),
        ),
        references={"tag": "Pedido-1384930012-01"},
    ),
    Case(
        CARRIER,
        "in_transit",
        "TC903375128BR",
        (
            # The published sample's layout: tracking directly under data.
            # Two scans at the same time keep their real (reversed payload) order.
            Ev("2026-07-15T00:00:00+00:00", "Londrina", "PR",
               "Objeto postado", S.INFO_RECEIVED, "InfoReceived"),
            Ev("2026-07-15T00:00:00+00:00", "Londrina", "PR",
               "Objeto postado após o horário limite da unidade", S.IN_TRANSIT,
               "InTransit_PickedUp"),
            # time_iso null: time_utc.
            Ev("2026-07-15T13:40:00+00:00", "Curitiba", "PR",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "InTransit_Departure"),
            Ev("2026-07-16T13:15:00+00:00", "Ponta Grossa", "PR",
               "Objeto aguardando retirada no endereço indicado", S.OUT_FOR_DELIVERY,
               "AvailableForPickup_Other"),
        ),
        # A numeric tag is kept as text.
        references={"tag": "1384930877"},
    ),
    Case(
        CARRIER,
        "exception",
        "TD447120695BR",
        (
            Ev("2026-08-09T12:00:00+00:00", "Manaus", "AM",
               "Objeto postado", S.INFO_RECEIVED, "InfoReceived"),
            # Empty description: the description_translation stands in.
            Ev("2026-08-10T17:10:00+00:00", "Belém", "PA",
               "Carteiro não atendido", S.EXCEPTION, "DeliveryFailure_NoBody"),
            Ev("2026-08-11T18:45:00+00:00", "Belém", "PA",
               "Endereço incorreto ou insuficiente", S.EXCEPTION, "DeliveryFailure_InvalidAddress"),
            Ev("2026-08-12T12:30:00+00:00", "Belém", "PA",
               "Objeto em devolução ao remetente", S.RETURNED, "Exception_Returning"),
            Ev("2026-08-20T15:00:00+00:00", "Manaus", "AM",
               "Objeto devolvido ao remetente", S.RETURNED, "Exception_Returned"),
        ),
        references={"tag": "Pedido-1385001944-01"},
    ),
    Case(
        CARRIER,
        "no_offset",
        "TE260938417BR",
        (
            # Read in the default zone (São Paulo, -03:00 in these tests).
            # time_raw with an empty timezone.
            Ev("2026-09-04T22:00:00+00:00", "Sorocaba", "SP",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "InTransit_Other"),
            # time_raw with a null timezone and no seconds.
            Ev("2026-09-05T11:10:00+00:00", "Sorocaba", "SP",
               "Objeto saiu para entrega ao destinatário", S.OUT_FOR_DELIVERY,
               "OutForDelivery_Other"),
            # time_iso without an offset.
            Ev("2026-09-05T17:25:00+00:00", "Sorocaba", "SP",
               "Objeto entregue ao destinatário", S.DELIVERED, "Delivered_Other"),
        ),
    ),
    Case(
        CARRIER,
        "missing_city",
        "TF581402736BR",
        (
            # No address, no location, no stage, no sub_status.
            Ev("2026-10-01T19:45:00+00:00", "", "",
               "Informações enviadas pelo remetente", S.UNKNOWN, ""),
            # Empty address; the location is only the address's country.
            Ev("2026-10-02T14:00:00+00:00", "", "",
               "Objeto postado", S.INFO_RECEIVED, "InfoReceived"),
            # The address names a state: the location is not read.
            Ev("2026-10-03T01:30:00+00:00", "", "SP",
               "Objeto recebido na unidade de tratamento", S.IN_TRANSIT, "InTransit_Arrival"),
            # Address null; a two-part location is city and state.
            Ev("2026-10-03T12:00:00+00:00", "JUNDIAI", "SP",
               "Objeto em trânsito - por favor aguarde", S.IN_TRANSIT, "InTransit_Other"),
        ),
        references={"tag": "Pedido-1386100235-01"},
    ),
    # TRACKING_STOPPED: the number and its tag, no events.
    Case(CARRIER, "stopped", "TG174820593BR", (), references={"tag": "Pedido-1386220078-01"}),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("data", DROP),
    ("data", "TB618204973BR"),
    ("data.number", DROP),
    ("data.number", ""),
    ("data.track_info", ["tracking"]),
    ("data.track_info.tracking", "providers"),
    (EVENTS, {"events": []}),
    (f"{EVENTS}.1", 2151),
    (f"{EVENTS}.0.events", "none"),
    (f"{EVENTS}.1.events.2", "Etiqueta criada"),
    (f"{EVENTS}.0.events.0.time_iso", "12/06/2026 16:42"),
    (f"{EVENTS}.0.events.1.time_iso", 1781262300),
    # The only time of that event.
    (f"{EVENTS}.0.events.3.time_iso", None),
    (f"{EVENTS}.0.events.2.time_raw", "2026-06-11 23:10"),
    (f"{EVENTS}.0.events.2.time_raw.date", "ontem"),
    (f"{EVENTS}.0.events.2.time_raw.time", "noite"),
    (f"{EVENTS}.0.events.2.time_raw.timezone", "Horário de Brasília"),
]
