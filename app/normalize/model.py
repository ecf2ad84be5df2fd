"""The normalized shape every carrier adapter produces."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class Status(StrEnum):
    """The relay's small status enum; adapters map carrier codes onto it."""

    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TrackingEvent:
    """One scan of one shipment, as the carrier reported it, with its time in UTC."""

    occurred_at: datetime
    status: Status
    carrier_status: str
    description: str
    city: str = ""
    state: str = ""

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError("TrackingEvent.occurred_at must be timezone-aware")


def oldest_first(events: Iterable[TrackingEvent]) -> tuple[TrackingEvent, ...]:
    """Distinct events sorted by time; ties keep the payload's order.

    Carriers repeat events inside one payload (Shippo's current status repeats the newest
    history entry) and list them newest first (17TRACK, DHL).
    """
    return tuple(sorted(dict.fromkeys(events), key=lambda event: event.occurred_at))


@dataclass(frozen=True)
class ShipmentUpdate:
    """What one webhook says about one tracking number.

    ``order_id``/``invoice_number`` are set only when the payload names the VTEX
    invoice itself (the generic format); they register the shipment.

    ``aliases`` are other identifiers of the same shipment the carrier documents (Melhor
    Envio's label id and protocol): a shipment registered under one of them matches.
    ``references`` are the order references the payload carries, by the names the
    adapter documents (``order_id``, ``metadata``, ``tag``...); a carrier's settings may
    map them to a VTEX orderId and invoiceNumber.
    """

    tracking_number: str
    events: tuple[TrackingEvent, ...]
    order_id: str | None = None
    invoice_number: str | None = None
    tracking_url: str | None = None
    aliases: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParseContext:
    """What an adapter may know besides the payload: no settings, no clock."""

    default_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


MAX_IDENTIFIER_LENGTH = 128
"""Tracking numbers, aliases, orderIds and invoice numbers longer than this are not ids."""


def identifier_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not an identifier (SPEC §12: printable text of at most 128
    characters), as ``name: problem`` in the sender's terms, or None. U+FFFD counts as
    unprintable: it stands for what the JSON reader could not keep as sent."""
    if not value.strip():
        return f"{name}: is empty"
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return f"{name}: {value[:20]!r}... is longer than {MAX_IDENTIFIER_LENGTH} characters"
    if value.isprintable() and _UNREADABLE not in value:
        return None
    position, char = next(
        (i + 1, c) for i, c in enumerate(value) if not c.isprintable() or c == _UNREADABLE
    )
    if char == _UNREADABLE:
        return (
            f"{name}: contains U+FFFD at position {position}, a character that could not be "
            "read as sent (a NUL, an unpaired surrogate or invalid UTF-8)"
        )
    return f"{name}: contains U+{ord(char):04X} at position {position}, which is not printable"


_UNREADABLE = "\ufffd"


def checked_identifiers(update: ShipmentUpdate) -> ShipmentUpdate:
    """The update with aliases that are not identifiers dropped; raises
    :class:`PayloadRejected` when its tracking number, orderId or invoice number is not one."""
    for name, value in (
        ("tracking number", update.tracking_number),
        ("orderId", update.order_id),
        ("invoiceNumber", update.invoice_number),
    ):
        problem = value is not None and identifier_problem(name, value)
        if problem:
            raise PayloadRejected(problem)
    aliases = tuple(alias for alias in update.aliases if not identifier_problem("", alias))
    return update if aliases == update.aliases else replace(update, aliases=aliases)


def invoice_number_problem(invoice_number: str) -> str | None:
    """Why VTEX's tracking route could not address this invoice number, or None."""
    if "/" in invoice_number:
        return "invoiceNumber: contains '/', which VTEX's tracking route cannot address"
    return identifier_problem("invoiceNumber", invoice_number)


class PayloadRejected(Exception):
    """The adapter could not read a (verified) payload; ``detail`` names what was wrong."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def event_identity(carrier: str, tracking_number: str, event: TrackingEvent) -> str:
    """The event's identity by meaning: equal for the same scan however often it is resent.

    Carrier, tracking number, time (to the second, UTC), the carrier's status code,
    description and place; text is compared whitespace-trimmed and case-folded.
    """
    parts = (
        carrier,
        tracking_number.strip(),
        # "%Y-%m-%dT%H:%M:%SZ" (times are 1990-2100: four-digit years), half strftime's cost
        event.occurred_at.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z",
        event.carrier_status.strip().casefold(),
        " ".join(event.description.split()).casefold(),
        event.city.strip().casefold(),
        event.state.strip().casefold(),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
