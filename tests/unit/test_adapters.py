"""Every carrier adapter against our own fixtures, written in that carrier's published format.

One table of (carrier, fixture, expected events) drives the checks, so a new adapter
adds rows and fixture files, not another copy of this module.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from app.normalize.carriers import aftership, easypost, generic
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
CONTEXT = ParseContext(default_zone=SAO_PAULO)

Adapter = Callable[[Any, ParseContext], list[ShipmentUpdate]]
ADAPTERS: dict[str, Adapter] = {
    "generic": generic.parse,
    "aftership": aftership.parse,
    "easypost": easypost.parse,
}
REQUIRED_FIXTURES = ("delivered", "in_transit", "exception", "missing_city", "no_offset")


class Ev(NamedTuple):
    """One expected event; ``utc`` is the ISO form of the UTC instant."""

    utc: str
    city: str
    state: str
    description: str
    status: Status
    carrier_status: str


@dataclass(frozen=True)
class Case:
    carrier: str
    fixture: str
    tracking_number: str
    events: tuple[Ev, ...]
    tracking_url: str | None = None
    order_id: str | None = None
    invoice_number: str | None = None

    @property
    def id(self) -> str:
        return f"{self.carrier}-{self.fixture}"


S = Status
# fmt: off
CASES = (
    # --- generic (the relay's own format: status is already one of ours) ---
    Case(
        "generic",
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
        "generic",
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
        "generic",
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
        "generic",
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
        "generic",
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
    # --- AfterShip (checkpoints; carrier_status is the subtag) ---
    Case(
        "aftership",
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
    ),
    Case(
        "aftership",
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
        "aftership",
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
        "aftership",
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
        "aftership",
        "no_offset",
        "LF338105742BR",
        (
            Ev("2026-05-21T01:40:00+00:00", "Sorocaba", "SP",
               "Objeto em trânsito", S.IN_TRANSIT, "InTransit_007"),
            Ev("2026-05-22T13:03:00+00:00", "Sorocaba", "SP",
               "Objeto entregue - assinado pelo destinatário", S.DELIVERED, "Delivered_003"),
        ),
    ),
    # --- EasyPost (Event wrapping a Tracker; carrier_status is the tracker status) ---
    Case(
        "easypost",
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
        "easypost",
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
        "easypost",
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
        "easypost",
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
        "easypost",
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


def load(carrier: str, fixture: str) -> Any:
    return json.loads((FIXTURES / carrier / f"{fixture}.json").read_text(encoding="utf-8"))


def parse_one(carrier: str, payload: Any, context: ParseContext = CONTEXT) -> ShipmentUpdate:
    updates = ADAPTERS[carrier](payload, context)
    assert len(updates) == 1
    return updates[0]


def actual_events(update: ShipmentUpdate) -> list[Ev]:
    return [
        Ev(
            event.occurred_at.isoformat(),
            event.city,
            event.state,
            event.description,
            event.status,
            event.carrier_status,
        )
        for event in update.events
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fixture_yields_the_expected_events(case: Case) -> None:
    update = parse_one(case.carrier, load(case.carrier, case.fixture))

    assert update.tracking_number == case.tracking_number
    assert actual_events(update) == list(case.events)
    assert all(event.occurred_at.tzinfo is UTC for event in update.events)
    assert (update.tracking_url, update.order_id, update.invoice_number) == (
        case.tracking_url,
        case.order_id,
        case.invoice_number,
    )


@pytest.mark.parametrize("carrier", ADAPTERS)
def test_every_carrier_has_every_fixture_and_every_fixture_is_checked(carrier: str) -> None:
    on_disk = {path.stem for path in (FIXTURES / carrier).glob("*.json")}
    in_table = {case.fixture for case in CASES if case.carrier == carrier}
    assert set(REQUIRED_FIXTURES) <= in_table
    assert on_disk == in_table


@pytest.mark.parametrize("carrier", [c for c in ADAPTERS if c != "easypost"])
@pytest.mark.parametrize(
    ("zone", "hours_behind_utc"),
    [("America/Sao_Paulo", 3), ("Asia/Tokyo", -9), ("America/Manaus", 4)],
)
def test_time_without_offset_is_read_in_the_default_zone(
    carrier: str, zone: str, hours_behind_utc: int
) -> None:
    payload = load(carrier, "no_offset")
    as_utc = parse_one(carrier, payload, ParseContext(default_zone=ZoneInfo("UTC")))
    in_zone = parse_one(carrier, payload, ParseContext(default_zone=ZoneInfo(zone)))

    assert [event.occurred_at for event in in_zone.events] == [
        event.occurred_at + timedelta(hours=hours_behind_utc) for event in as_utc.events
    ]


def test_easypost_time_without_offset_is_utc_its_documented_zone() -> None:
    payload = load("easypost", "no_offset")
    as_utc = parse_one("easypost", payload, ParseContext(default_zone=ZoneInfo("UTC")))
    in_tokyo = parse_one("easypost", payload, ParseContext(default_zone=ZoneInfo("Asia/Tokyo")))

    assert [e.occurred_at for e in in_tokyo.events] == [e.occurred_at for e in as_utc.events]


@pytest.mark.parametrize("carrier", ADAPTERS)
def test_time_with_an_offset_ignores_the_default_zone(carrier: str) -> None:
    payload = load(carrier, "delivered")
    tokyo = parse_one(carrier, payload, ParseContext(default_zone=ZoneInfo("Asia/Tokyo")))

    assert tokyo == parse_one(carrier, payload)


# --- rejections -------------------------------------------------------------------------

DROP = object()


def _path(dotted: str) -> tuple[str | int, ...]:
    return tuple(int(part) if part.isdigit() else part for part in dotted.split(".") if part)


def replaced(payload: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of ``payload`` with the node at ``path`` set to ``value`` (or removed: DROP)."""
    if not path:
        return value
    result = copy.deepcopy(payload)
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    if value is DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


# (carrier, dotted path in the "delivered" fixture, new value): the rejection's detail must
# name that path, so that an operator reading the 422 knows which field to look at.
REJECTIONS = [
    ("generic", "trackingNumber", DROP),
    ("generic", "trackingNumber", ""),
    ("generic", "trackingNumber", "   "),
    ("generic", "events", DROP),
    ("generic", "events", {"time": "2026-03-03T16:20:00-03:00"}),
    ("generic", "events.0.time", "03/03/2026 16:20"),
    ("generic", "events.1.time", DROP),
    ("generic", "events.2.time", "2026-02-30T10:00:00-03:00"),
    ("generic", "events.0.status", "lost_in_space"),
    ("generic", "invoiceNumber", DROP),
    ("generic", "invoiceNumber", " "),
    ("generic", "orderId", ""),
    ("aftership", "msg", DROP),
    ("aftership", "msg", ["not", "an", "object"]),
    ("aftership", "msg.tracking_number", DROP),
    ("aftership", "msg.tracking_number", "  "),
    ("aftership", "msg.checkpoints", "none"),
    ("aftership", "msg.checkpoints.2", "Delivered"),
    ("aftership", "msg.checkpoints.0.checkpoint_time", None),
    ("aftership", "msg.checkpoints.1.checkpoint_time", "ontem à noite"),
    ("aftership", "msg.checkpoints.2.checkpoint_time", DROP),
    ("easypost", "result", DROP),
    ("easypost", "result", "trk_123"),
    ("easypost", "result.tracking_code", DROP),
    ("easypost", "result.tracking_code", ""),
    ("easypost", "result.tracking_details", {"status": "delivered"}),
    ("easypost", "result.tracking_details.0", 7),
    ("easypost", "result.tracking_details.1.datetime", "21/01/2026 15:26"),
    ("easypost", "result.tracking_details.2.datetime", DROP),
]


@pytest.mark.parametrize(
    ("carrier", "where", "value"),
    REJECTIONS,
    ids=[f"{carrier}-{where}-{value!r:.20}" for carrier, where, value in REJECTIONS],
)
def test_unreadable_field_is_rejected_naming_the_field(
    carrier: str, where: str, value: Any
) -> None:
    payload = replaced(load(carrier, "delivered"), _path(where), value)

    with pytest.raises(PayloadRejected) as rejected:
        ADAPTERS[carrier](payload, CONTEXT)

    assert where in rejected.value.detail


@pytest.mark.parametrize("carrier", ADAPTERS)
@pytest.mark.parametrize("body", [[], "tracking_update", 42, None, True])
def test_body_that_is_not_an_object_is_rejected(carrier: str, body: Any) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        ADAPTERS[carrier](body, CONTEXT)

    assert "body" in rejected.value.detail


@pytest.mark.parametrize(
    "description", ["batch.created", "shipment.purchased", "refund.successful", None]
)
def test_easypost_event_about_something_else_yields_nothing(description: str | None) -> None:
    payload = replaced(load("easypost", "delivered"), ("description",), description)

    assert easypost.parse(payload, CONTEXT) == []


@pytest.mark.parametrize("description", [["tracker.updated"], {"name": "tracker.updated"}])
def test_easypost_event_with_a_non_text_description_yields_nothing(description: Any) -> None:
    # Not a tracker event, so nothing to do: a 202 with no events, not a crash (a 500).
    payload = replaced(load("easypost", "delivered"), ("description",), description)

    assert easypost.parse(payload, CONTEXT) == []


# --- robustness: any JSON yields updates or a typed rejection ----------------------------

JUNK: list[Any] = [DROP, None, True, 0, -7, 2.5, "", "  ", "texto", [], [1, "a"], {}, {"k": "v"}]


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield prefix
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _check_update(update: Any) -> None:
    assert isinstance(update, ShipmentUpdate)
    assert update.tracking_number
    assert update.tracking_number == update.tracking_number.strip()
    # orderId/invoiceNumber register a shipment: when present they must be usable.
    for reference in (update.order_id, update.invoice_number):
        assert reference is None or reference.strip()
    for event in update.events:
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert isinstance(event.status, Status)
        assert all(isinstance(text, str) for text in (event.city, event.state, event.description))


@pytest.mark.parametrize("carrier", ADAPTERS)
def test_every_single_field_mutation_yields_updates_or_a_rejection(carrier: str) -> None:
    """Each node of each fixture replaced by each kind of JSON value (or removed)."""
    failures: list[str] = []
    for fixture in REQUIRED_FIXTURES:
        original = load(carrier, fixture)
        for path in _paths(original):
            for value in JUNK:
                if value is DROP and not path:
                    continue
                payload = replaced(original, path, value)
                try:
                    for update in ADAPTERS[carrier](payload, CONTEXT):
                        _check_update(update)
                except PayloadRejected:
                    pass
                except Exception as error:
                    where = ".".join(map(str, path)) or "<body>"
                    shown = "<removed>" if value is DROP else repr(value)
                    failures.append(f"{fixture}: {where} = {shown}: {type(error).__name__} {error}")
    assert not failures, f"{len(failures)} mutations crashed, e.g.:\n" + "\n".join(failures[:10])
