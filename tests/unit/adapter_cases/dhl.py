"""DHL Unified Push: one update per shipment; events newest first in the payload."""

from tests.unit.adapter_cases import DROP, Case, Ev, S

CARRIER = "dhl"

# fmt: off
CASES = (
    Case(
        CARRIER,
        "delivered",
        "5830146927",
        (
            # The remark repeats the description (but for its case): not appended.
            Ev("2026-08-12T13:00:00+00:00", "São Paulo", "",
               "Informações do envio recebidas", S.INFO_RECEIVED, "pre-transit"),
            Ev("2026-08-13T01:40:31+00:00", "Cajamar", "SP",
               "Em trânsito para o centro de distribuição - Processado no hub de Cajamar",
               S.IN_TRANSIT, "transit"),
            Ev("2026-08-14T11:05:00+00:00", "BELO HORIZONTE", "MG",
               "Saiu para entrega", S.IN_TRANSIT, "transit"),
            # Sent twice in the payload: kept once. The street before the comma is dropped.
            Ev("2026-08-14T18:22:10+00:00", "BELO HORIZONTE", "MG",
               "Entregue ao destinatário", S.DELIVERED, "delivered"),
        ),
        tracking_url="https://www.dhl.com/br-pt/home/rastreamento.html?tracking-id=5830146927",
        references={"customer_reference": "1190334120551-01", "shipper_reference": "NF-000481223"},
    ),
    Case(
        CARRIER,
        "in_transit",
        # A numeric id is its text.
        "5830146938",
        (
            Ev("2026-08-20T13:30:00+00:00", "Guarulhos", "SP",
               "Chegada ao centro de triagem", S.IN_TRANSIT, "transit"),
            Ev("2026-08-20T21:15:00+00:00", "Campinas", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "transit"),
        ),
        references={"customer_reference": "1190334120662-01"},
    ),
    Case(
        CARRIER,
        "in_transit",
        "JD014600009912734551",
        (
            # No statusCode: the status text is the code, mapped when it is one of DHL's five.
            Ev("2026-08-19T19:02:00+00:00", "São Paulo", "SP",
               "Objeto recebido pela DHL", S.IN_TRANSIT, "transit"),
            Ev("2026-08-21T12:40:00+00:00", "Recife", "PE",
               "Objeto em transferência", S.UNKNOWN, "Em transferência entre unidades"),
        ),
        # An untyped reference is "reference"; a blank number is skipped.
        references={"reference": "778812"},
        update=1,
    ),
    Case(
        CARRIER,
        "exception",
        "5830146949",
        (
            # No description nor remark: the status text.
            Ev("2026-09-05T17:45:00+00:00", "Curitiba", "PR",
               "SHIPMENT INFORMATION RECEIVED", S.INFO_RECEIVED, "Pre-Transit"),
            # A blank description: the remark stands in. No location.
            Ev("2026-09-07T12:00:00+00:00", "", "",
               "Aguardando atualização da transportadora", S.UNKNOWN, "unknown"),
            Ev("2026-09-08T14:02:00+00:00", "Curitiba", "PR",
               "Tentativa de entrega sem sucesso - Destinatário ausente",
               S.EXCEPTION, "failure"),
            # Returns have no code: a failure that says "devolvido" stays an exception.
            # No code of its own: the words name a return to the sender.
            Ev("2026-09-10T20:30:00+00:00", "Curitiba", "PR",
               "Devolvido ao remetente", S.RETURNED, "failure"),
        ),
        # serviceUrl is not a URL: no tracking link.
        references={"customer_reference": "1190334120773-01"},
    ),
    Case(
        CARRIER,
        "no_offset",
        "5830146950",
        (
            # Zone-less, read in the default zone (São Paulo in the table).
            Ev("2026-09-02T20:45:30+00:00", "São Paulo", "SP",
               "Informações do envio recebidas", S.INFO_RECEIVED, "pre-transit"),
            Ev("2026-09-03T12:12:00+00:00", "Campinas", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "transit"),
        ),
    ),
    Case(
        CARRIER,
        "missing_city",
        "5830146961",
        (
            # No location at all.
            Ev("2026-09-11T14:30:00+00:00", "", "",
               "Informações do envio recebidas", S.INFO_RECEIVED, "pre-transit"),
            # An address without addressLocality.
            Ev("2026-09-11T15:00:00+00:00", "", "",
               "Etiqueta emitida", S.INFO_RECEIVED, "pre-transit"),
            # A locality that is only a comma.
            Ev("2026-09-11T22:00:00+00:00", "", "",
               "Objeto em trânsito", S.IN_TRANSIT, "transit"),
            Ev("2026-09-12T10:20:00+00:00", "Guarulhos", "SP",
               "Objeto recebido no centro de triagem", S.IN_TRANSIT, "transit"),
        ),
    ),
)
# fmt: on

# (dotted path in the "delivered" fixture, new value): the rejection must name that path.
REJECTIONS = [
    ("shipments", DROP),
    ("shipments", {"id": "5830146927"}),
    ("shipments.0", "5830146927"),
    ("shipments.0.id", DROP),
    ("shipments.0.id", "   "),
    ("shipments.0.events", "none"),
    ("shipments.0.events.2", []),
    ("shipments.0.events.0.timestamp", None),
    ("shipments.0.events.4.timestamp", "14/08/2026 15:22"),
]
