"""UPS Track Alert: one flat event per POST; carrier_status is ``type/code/descriptionCode``."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "ups"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "1Z8A47E20391526048",
        (
            # gmtActivity* (17:32:10 UTC) agrees with the local 14:32:10 at -03.00 and with
            # actualDeliveryDate/Time; type D with an actual delivery date is delivered.
            Ev("2026-04-15T17:32:10+00:00", "SÃO PAULO", "SP",
               "Entregue", S.DELIVERED, "D/FS/011"),
        ),
        # The enhanced subscription's alternate number (Mail Innovations) is an alias.
        aliases=("92748901234567890123456789",),
    ),
    Case(
        CARRIER,
        "in_transit",
        "1Z8A47E20392637159",
        (
            # UTC fields win over the local 22:15 of the day before (no gmtOffset sent);
            # descriptionCode 5 sent as a number is written 005.
            Ev("2026-03-11T01:15:00+00:00", "Campinas", "SP",
               "Partida da unidade UPS", S.IN_TRANSIT, "I/DP/005"),
        ),
    ),
    Case(
        CARRIER,
        "exception",
        "1Z8A47E20393748260",
        (
            # No UTC fields: local 16:40:05 with gmtOffset "-04.00".
            Ev("2026-04-22T20:40:05+00:00", "Manaus", "AM",
               "O destinatário não estava disponível. Faremos nova tentativa no próximo dia "
               "útil.", S.EXCEPTION, "X/48/048"),
        ),
    ),
    Case(
        CARRIER,
        "no_offset",
        "1Z8A47E20394859371",
        (
            # Empty UTC fields, no gmtOffset: 09:00 read in the default zone (São Paulo);
            # an X event whose description says "devolução" is a return.
            Ev("2026-05-03T12:00:00+00:00", "Curitiba", "PR",
               "Objeto em devolução ao remetente", S.RETURNED, "X/RS/101"),
        ),
    ),
    Case(
        CARRIER,
        "missing_city",
        "1Z8A47E20395960482",
        (
            Ev("2026-06-01T13:30:12+00:00", "", "",
               "Informações de envio recebidas pela UPS", S.INFO_RECEIVED, "M/MP/001"),
        ),
    ),
    Case(
        CARRIER,
        "out_for_delivery",
        "1Z8A47E20396071593",
        (
            # Type D with an empty actualDeliveryDate: on the vehicle, not delivered.
            Ev("2026-07-02T10:31:45+00:00", "Belo Horizonte", "MG",
               "Carregado no veículo para entrega", S.OUT_FOR_DELIVERY, "D/OF/021"),
        ),
    ),
    Case(
        CARRIER,
        "manifest_void",
        "1Z8A47E20397182604",
        (
            # Manifest void: the label was voided; no descriptionCode.
            Ev("2026-07-08T21:15:00+00:00", "Porto Alegre", "RS",
               "Envio cancelado pelo remetente", S.EXCEPTION, "MV/MV"),
        ),
    ),
    Case(
        CARRIER,
        "returned",
        "1Z8A47E20398293715",
        (
            # Type I whose description says "Returning to shipper".
            Ev("2026-07-19T14:59:30+00:00", "RECIFE", "PE",
               "Returning to shipper: a caminho da unidade UPS", S.RETURNED, "I/RT/007"),
        ),
    ),
    Case(
        CARRIER,
        "rescheduled",
        "1Z8A47E20399304826",
        (
            # Type U (updated delivery date); local 08:20 at gmtOffset "+05.30".
            Ev("2026-07-24T02:50:00+00:00", "MUMBAI", "MH",
               "Data de entrega atualizada", S.IN_TRANSIT, "U/SD/067"),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("trackingNumber", DROP),
    ("trackingNumber", "  "),
    ("activityStatus", DROP),
    ("activityStatus", ["D", "FS"]),
    ("activityStatus.type", None),
    ("gmtActivityDate", "23/04/2026"),
    ("gmtActivityDate", True),
    ("gmtActivityTime", DROP),
    ("gmtActivityTime", "25h"),
    ("gmtActivityTime", "246000"),
]
