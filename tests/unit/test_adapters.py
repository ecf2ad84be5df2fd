"""Every carrier adapter against our own fixtures, written in that carrier's published format.

The expectations live in ``tests/unit/adapter_cases/<carrier>.py`` (see its package
docstring), so a new adapter adds a case module and fixture files, not another copy of
this module. Every carrier of the built-in registry must have them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.ingest.carriers import BUILT_IN
from app.normalize.carriers import easypost
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status
from tests.unit import adapter_cases
from tests.unit.adapter_cases import DROP, Ev

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
CONTEXT = ParseContext(default_zone=SAO_PAULO)

Adapter = Callable[[Any, ParseContext], list[ShipmentUpdate]]
ADAPTERS: dict[str, Adapter] = {name: carrier.parse for name, carrier in BUILT_IN.items()}
REQUIRED_FIXTURES = ("delivered", "in_transit", "exception")

CASE_MODULES = {module.CARRIER: module for module in adapter_cases.modules()}
CASES = tuple(case for module in CASE_MODULES.values() for case in module.CASES)
REJECTIONS = [
    (module.CARRIER, where, value)
    for module in CASE_MODULES.values()
    for where, value in module.REJECTIONS
]


def load(carrier: str, fixture: str) -> Any:
    return json.loads((FIXTURES / carrier / f"{fixture}.json").read_text(encoding="utf-8"))


def parse_one(carrier: str, payload: Any, context: ParseContext = CONTEXT) -> ShipmentUpdate:
    updates = ADAPTERS[carrier](payload, context)
    assert len(updates) == 1
    return updates[0]


def fixtures_of(carrier: str) -> list[str]:
    return sorted(path.stem for path in (FIXTURES / carrier).glob("*.json"))


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
def test_fixture_yields_the_expected_events(case: adapter_cases.Case) -> None:
    updates = ADAPTERS[case.carrier](load(case.carrier, case.fixture), CONTEXT)
    update = updates[case.update]

    assert update.tracking_number == case.tracking_number
    assert actual_events(update) == list(case.events)
    assert all(event.occurred_at.tzinfo is UTC for event in update.events)
    assert (update.tracking_url, update.order_id, update.invoice_number) == (
        case.tracking_url,
        case.order_id,
        case.invoice_number,
    )
    assert (update.aliases, dict(update.references)) == (case.aliases, dict(case.references))
    # Every update of a webhook is described by a case.
    described = {c.update for c in CASES if (c.carrier, c.fixture) == (case.carrier, case.fixture)}
    assert described == set(range(len(updates)))


@pytest.mark.parametrize("carrier", ADAPTERS)
def test_every_carrier_has_every_fixture_and_every_fixture_is_checked(carrier: str) -> None:
    assert carrier in CASE_MODULES, f"no tests/unit/adapter_cases module for {carrier}"
    in_table = {case.fixture for case in CASES if case.carrier == carrier}
    assert set(REQUIRED_FIXTURES) <= in_table
    assert set(fixtures_of(carrier)) == in_table
    assert CASE_MODULES[carrier].REJECTIONS, f"{carrier} has no rejection cases"


def test_every_case_module_belongs_to_a_registered_carrier() -> None:
    assert set(CASE_MODULES) <= set(ADAPTERS)


ZONELESS = {
    carrier: getattr(module, "ZONELESS_TIMES", "default_zone")
    for carrier, module in CASE_MODULES.items()
    if "no_offset" in fixtures_of(carrier)
}


@pytest.mark.parametrize("carrier", [c for c, rule in ZONELESS.items() if rule == "default_zone"])
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


@pytest.mark.parametrize("carrier", [c for c, rule in ZONELESS.items() if rule == "documented"])
def test_time_without_offset_is_read_in_the_carriers_documented_zone(carrier: str) -> None:
    payload = load(carrier, "no_offset")
    as_utc = parse_one(carrier, payload, ParseContext(default_zone=ZoneInfo("UTC")))
    in_tokyo = parse_one(carrier, payload, ParseContext(default_zone=ZoneInfo("Asia/Tokyo")))

    assert [e.occurred_at for e in in_tokyo.events] == [e.occurred_at for e in as_utc.events]


@pytest.mark.parametrize("carrier", ADAPTERS)
def test_time_with_an_offset_ignores_the_default_zone(carrier: str) -> None:
    payload = load(carrier, "delivered")
    context = ParseContext(default_zone=ZoneInfo("Asia/Tokyo"))

    assert ADAPTERS[carrier](payload, context) == ADAPTERS[carrier](payload, CONTEXT)


# --- rejections -------------------------------------------------------------------------


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
    for fixture in fixtures_of(carrier):
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
