"""Declarative carriers: a carrier's webhook format described by data instead of code.

An operator describes the payload with JMESPath expressions (``RELAY_CARRIERS_FILE``,
read by :mod:`app.ingest.declared`): where the tracking number and the list of events
are, and, relative to each event, its time, status code, description and place. This
module is the pure half: :class:`DeclarativeSpec` holds the compiled description and
:func:`parse` applies it to one payload, with the contract of every other adapter.

Errors name the carrier's own configuration field and the expression, so that an
operator can tell a payload problem from a configuration one:
``shipments.0.events.2.time (expression 'data_hora') is missing or empty``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from jmespath.parser import ParsedResult

from app.normalize.fields import optional_text, require_object, require_text, text_or_number
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    Status,
    TrackingEvent,
    oldest_first,
)
from app.normalize.times import EARLIEST, LATEST, parse_timestamp

EPOCH_SECONDS: Final = "epoch"
EPOCH_MILLISECONDS: Final = "epoch_ms"
"""Keywords of :attr:`DeclarativeSpec.time_format` for Unix times instead of a strptime format."""

# JMESPath's built-in functions raise plain TypeError/ValueError/OverflowError on values of
# the wrong type (``max_by`` over mixed keys, ``floor`` of infinity...), besides their own
# JMESPathError (a ValueError). Operator-written expressions meet arbitrary JSON, so any of
# these is the payload not matching the description, never a crash.
_EVALUATION_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError)


@dataclass(frozen=True)
class EventSpec:
    """Where each field of one event is, relative to the event."""

    time: ParsedResult
    status: ParsedResult
    description: ParsedResult
    city: ParsedResult | None = None
    state: ParsedResult | None = None


@dataclass(frozen=True)
class DeclarativeSpec:
    """A carrier's webhook format: compiled expressions, status table, time format and zone.

    ``shipments``, when set, selects a list of shipments and every other expression is
    relative to each of them; otherwise the whole body is one shipment. ``time_format`` is
    a :func:`~datetime.datetime.strptime` format, :data:`EPOCH_SECONDS`,
    :data:`EPOCH_MILLISECONDS`, or ``None`` for ISO 8601. ``timezone`` reads times without
    an offset; ``None`` defers to :attr:`ParseContext.default_zone`.
    """

    tracking_number: ParsedResult
    events: ParsedResult
    event: EventSpec
    statuses: Mapping[str, Status]
    default_status: Status = Status.UNKNOWN
    shipments: ParsedResult | None = None
    tracking_url: ParsedResult | None = None
    time_format: str | None = None
    timezone: ZoneInfo | None = None
    references: Mapping[str, ParsedResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views: the spec is shared by every request of the carrier.
        object.__setattr__(self, "statuses", MappingProxyType(dict(self.statuses)))
        object.__setattr__(self, "references", MappingProxyType(dict(self.references)))


def _where(path: str, expression: ParsedResult) -> str:
    return f"{path} (expression {expression.expression!r})"


def _search(expression: ParsedResult, data: Any, where: str) -> Any:
    try:
        return expression.search(data)
    except _EVALUATION_ERRORS as error:
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise PayloadRejected(f"{where} could not be evaluated: {message}") from None


def _require_found_list(value: Any, where: str) -> list[Any]:
    # Unlike built-in adapters, null is not an empty list here: JMESPath gives null for a
    # path that is absent, and a mistyped expression must not silently read no events.
    if not isinstance(value, list):
        found = "nothing" if value is None else f"a JSON {_json_type(value)}"
        raise PayloadRejected(f"{where} must be a JSON array, found {found}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _plausible(moment: datetime, where: str, text: str) -> datetime:
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PayloadRejected(f"{where} is not a plausible tracking time: {text[:40]!r}")
    return utc


def _epoch(value: Any, where: str, divisor: int) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadRejected(f"{where} is missing or not a Unix time")
    try:
        seconds = float(value) / divisor
        moment = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadRejected(f"{where} is not a Unix time: {str(value)[:40]!r}") from None
    return _plausible(moment, where, str(value))


def _time(spec: DeclarativeSpec, value: Any, where: str, zone: ZoneInfo) -> datetime:
    if spec.time_format is None:
        return parse_timestamp(value, zone, field=where)
    if spec.time_format == EPOCH_SECONDS:
        return _epoch(value, where, 1)
    if spec.time_format == EPOCH_MILLISECONDS:
        return _epoch(value, where, 1000)
    text = require_text(value, where)
    try:
        parsed = datetime.strptime(text, spec.time_format)
    except ValueError:
        raise PayloadRejected(
            f"{where} does not match the format {spec.time_format!r}: {text[:40]!r}"
        ) from None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=zone)
    return _plausible(parsed, where, text)


def _event(spec: DeclarativeSpec, item: Any, where: str, zone: ZoneInfo) -> TrackingEvent:
    fields = spec.event

    def read(name: str, expression: ParsedResult) -> tuple[Any, str]:
        path = _where(f"{where}.{name}", expression)
        return _search(expression, item, path), path

    occurred_at = _time(spec, *read("time", fields.time), zone)
    code = require_text(*read("status", fields.status))
    description = require_text(*read("description", fields.description))
    return TrackingEvent(
        occurred_at=occurred_at,
        status=spec.statuses.get(code, spec.default_status),
        carrier_status=code,
        description=description,
        city=optional_text(read("city", fields.city)[0]) if fields.city else "",
        state=optional_text(read("state", fields.state)[0]) if fields.state else "",
    )


def _shipment(spec: DeclarativeSpec, shipment: Any, prefix: str, zone: ZoneInfo) -> ShipmentUpdate:
    tracking_where = _where(f"{prefix}tracking_number", spec.tracking_number)
    tracking_number = require_text(
        _search(spec.tracking_number, shipment, tracking_where), tracking_where
    )
    events_where = _where(f"{prefix}events", spec.events)
    items = _require_found_list(_search(spec.events, shipment, events_where), events_where)
    events = [
        _event(spec, item, f"{prefix}events.{index}", zone) for index, item in enumerate(items)
    ]
    # Carriers resend whole histories and some list newest first.
    unique = oldest_first(events)
    link = None
    if spec.tracking_url is not None:
        link_where = _where(f"{prefix}tracking_url", spec.tracking_url)
        link = optional_text(_search(spec.tracking_url, shipment, link_where)) or None
    references: dict[str, str] = {}
    for name, expression in spec.references.items():
        value = _search(expression, shipment, _where(f"{prefix}references.{name}", expression))
        if text := text_or_number(value):
            references[name] = text
    return ShipmentUpdate(tracking_number, tuple(unique), tracking_url=link, references=references)


def parse(spec: DeclarativeSpec, payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read one webhook of a declared carrier: one update per shipment it describes."""
    body = require_object(payload, "body")
    zone = spec.timezone or context.default_zone
    if spec.shipments is None:
        return [_shipment(spec, body, "", zone)]
    where = _where("shipments", spec.shipments)
    shipments = _require_found_list(_search(spec.shipments, body, where), where)
    return [
        _shipment(spec, shipment, f"shipments.{index}.", zone)
        for index, shipment in enumerate(shipments)
    ]
