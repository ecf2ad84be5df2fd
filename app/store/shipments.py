"""Shipments: first sight, registration to an invoice, aliases (statements in
``sql/shipments.sql``).

Every write that touches shipments goes through a :class:`ShipmentSet`: the rows it needs
are read in one query, changed in memory by the same rules for every caller, and written
back in at most two statements, however many shipments a commit group touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from app.store import deliveries
from app.store.queries import Statements, as_json
from app.store.records import Registration
from app.store.schema import read_time, stored_time

SQL = Statements("shipments")


@dataclass
class Shipment:
    """A shipment's row as the write in progress sees it."""

    number: str
    carrier: str | None
    url: str | None
    order_id: str | None
    invoice_number: str | None
    account: str | None
    registered_at: datetime | None
    touched_at: datetime | None = None
    """When this write changed the row (None: unchanged)."""
    new: bool = False

    @property
    def invoice(self) -> tuple[str, str] | None:
        if self.order_id is None or self.invoice_number is None:
            return None
        return self.order_id, self.invoice_number


class ShipmentSet:
    """The shipments one write (or commit group) touches."""

    def __init__(self, rows: Iterable[Shipment], pruned: Iterable[str] = ()) -> None:
        self._rows = {row.number: row for row in rows}
        self._pruned = set(pruned) - set(self._rows)

    def is_pruned(self, number: str) -> bool:
        """Whether the number belonged to an invoice pruned for its age (SPEC §11)."""
        return number in self._pruned

    @classmethod
    def read(cls, conn: Connection, numbers: Iterable[str]) -> ShipmentSet:
        """The stored rows of these tracking numbers (one query)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return cls(())
        found = SQL.run(conn, "shipments_of", {"numbers": as_json(wanted)}).fetchall()
        live = [row for row in found if not row[-1]]
        return cls((_shipment(*row[:-1]) for row in live), (row[0] for row in found if row[-1]))

    def get(self, number: str) -> Shipment | None:
        return self._rows.get(number)

    def see(self, number: str, carrier: str | None, url: str | None, now: datetime) -> Shipment:
        """The shipment, created unregistered on first sight; its link kept fresh, and its
        carrier filled in when it was registered before its first webhook."""
        row = self._rows.get(number)
        if row is None:
            row = Shipment(number, carrier, url, None, None, None, None, now, new=True)
            self._rows[number] = row
            return row
        if url and row.url != url:
            row.url, row.touched_at = url, now
        if carrier is not None and row.carrier is None:
            row.carrier, row.touched_at = carrier, now
        return row

    def register(
        self,
        number: str,
        order_id: str,
        invoice_number: str,
        carrier: str | None,
        account: str | None,
        now: datetime,
    ) -> bool:
        """Set a seen shipment's invoice; True when that changed where its events go."""
        row = self._rows[number]
        changed = (row.order_id, row.invoice_number) != (order_id, invoice_number) or (
            account is not None and row.account != account
        )
        if changed:
            row.order_id, row.invoice_number, row.registered_at = order_id, invoice_number, now
            if account is not None:
                row.account = account
            row.touched_at = now
        if carrier is not None and row.carrier != carrier:
            row.carrier, row.touched_at = carrier, now
        return changed

    def registered_among(self, numbers: Iterable[str]) -> Shipment | None:
        """Of these (read) tracking numbers, the one registered most recently, if any."""
        registered = [
            row
            for number in numbers
            if (row := self._rows.get(number)) is not None and row.order_id is not None
        ]
        return max(registered, key=_registration_order, default=None)

    def write(self, conn: Connection) -> None:
        """Store what changed: new rows in one statement, changed ones in another."""
        dialect = conn.dialect.name
        new = [
            {
                "number": row.number,
                "carrier": row.carrier,
                "url": row.url,
                "at": stored_time(row.touched_at, dialect),
            }
            for row in self._rows.values()
            if row.new and row.touched_at is not None
        ]
        SQL.run_set(conn, "add_shipments", new)
        changed = [
            _saved(row, dialect)
            for row in self._rows.values()
            if row.touched_at is not None and (not row.new or row.order_id is not None)
        ]
        SQL.run_set(conn, "save_shipments", changed)


def add_aliases(conn: Connection, aliases: Sequence[tuple[str, str]]) -> None:
    """Remember (alias, tracking number) pairs; known ones stay as they are."""
    rows = [{"alias": alias, "number": number} for alias, number in aliases]
    SQL.run_set(conn, "add_aliases", rows)


def numbers_aliased_as(conn: Connection, alias: str) -> list[str]:
    """The tracking numbers known by ``alias`` (Melhor Envio's carrier code)."""
    return [row[0] for row in SQL.run(conn, "numbers_aliased_as", {"alias": alias}).fetchall()]


def invoices_with_events(
    conn: Connection, numbers: Iterable[str]
) -> list[tuple[str, str, str, str | None]]:
    """(tracking number, orderId, invoice number, account) of each registered shipment
    among ``numbers`` that holds events."""
    wanted = sorted(set(numbers))
    if not wanted:
        return []
    cursor = SQL.run(conn, "invoices_with_events", {"numbers": as_json(wanted)})
    return [tuple(row) for row in cursor.fetchall()]


def _shipment(
    number: str,
    carrier: str | None,
    url: str | None,
    order_id: str | None,
    invoice_number: str | None,
    account: str | None,
    registered_at: Any,
) -> Shipment:
    registered = None if registered_at is None else read_time(registered_at)
    return Shipment(number, carrier, url, order_id, invoice_number, account, registered)


def _registration_order(row: Shipment) -> tuple[datetime, str]:
    return row.registered_at or datetime.min.replace(tzinfo=UTC), row.number


def _saved(row: Shipment, dialect: str) -> dict[str, Any]:
    assert row.touched_at is not None
    return {
        "number": row.number,
        "carrier": row.carrier,
        "url": row.url,
        "order_id": row.order_id,
        "invoice_number": row.invoice_number,
        "account": row.account,
        "registered_at": (
            None if row.registered_at is None else stored_time(row.registered_at, dialect)
        ),
        "at": stored_time(row.touched_at, dialect),
    }


def register(
    conn: Connection,
    tracking_number: str,
    order_id: str,
    invoice_number: str,
    carrier: str | None,
    account: str | None,
    now: datetime,
) -> Registration:
    """Map a tracking number to a VTEX invoice; events already held get delivered."""
    # The number may be an alias of a shipment whose events are held under another key.
    aliased = numbers_aliased_as(conn, tracking_number)
    rows = ShipmentSet.read(conn, [tracking_number, *aliased])
    if rows.is_pruned(tracking_number):
        SQL.run(conn, "forget_pruned", {"number": tracking_number})
    existing = rows.get(tracking_number)
    created = existing is None or existing.registered_at is None
    rows.see(tracking_number, carrier, None, now)
    changed = set()
    if rows.register(tracking_number, order_id, invoice_number, carrier, account, now):
        changed.add(tracking_number)
    for number in aliased:
        if rows.get(number) is not None and rows.register(
            number, order_id, invoice_number, None, account, now
        ):
            changed.add(number)
    rows.write(conn)
    requests = [
        deliveries.QueueRequest(order, invoice, account_, now, now)
        for _, order, invoice, account_ in invoices_with_events(conn, changed)
    ]
    return Registration(created, len(deliveries.queue(conn, requests)))
