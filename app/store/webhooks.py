"""Webhooks: accepted ones and their events, quarantined ones, replays (hot statements in
``sql/webhooks.sql``; quarantine administration in SQLAlchemy Core).

:func:`accept` stores a whole commit group of webhooks at once: the group's shipments are
read in one query, its events inserted in one statement, its deliveries queued in one and
its webhook rows written in one, so a group of 200 webhooks costs what a group of one does
in round trips. The answers stay per webhook: new events and duplicates are counted as if
the group's webhooks had been stored one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from app.ids import unique_hex
from app.normalize.model import ShipmentUpdate, event_identity
from app.store import deliveries, shipments
from app.store.queries import Statements
from app.store.records import IngestResult, QuarantinedWebhook
from app.store.schema import stored_time, webhooks

SQL = Statements("webhooks")


@dataclass(frozen=True)
class Arrival:
    """One webhook's share of a commit group; made by :func:`arrival`."""

    webhook_id: str
    carrier: str
    updates: Sequence[ShipmentUpdate]
    now: datetime
    body: bytes | None
    """The raw body to keep; None for a replay, whose row exists."""
    received_at: Any
    """``now`` as the database keeps it."""
    event_rows: tuple[dict[str, dict[str, Any]], ...]
    """Per update, its distinct events' rows by identity (a payload may repeat one)."""


def arrival(
    webhook_id: str,
    carrier: str,
    updates: Sequence[ShipmentUpdate],
    now: datetime,
    body: bytes | None,
    dialect: str,
) -> Arrival:
    """A webhook ready for its commit group: its events' identities and rows are worked out
    here, by the request, so that the writer thread (which every webhook of the group waits
    for) spends its time on the group's statements."""
    received_at = stored_time(now, dialect)
    event_rows = []
    for update_ in updates:
        rows: dict[str, dict[str, Any]] = {}
        for tracked in update_.events:
            identity = event_identity(carrier, update_.tracking_number, tracked)
            if identity not in rows:
                rows[identity] = {
                    "identity": identity,
                    "carrier": carrier,
                    "number": update_.tracking_number,
                    "occurred_at": stored_time(tracked.occurred_at, dialect),
                    "status": tracked.status.value,
                    "carrier_status": tracked.carrier_status,
                    "description": tracked.description,
                    "city": tracked.city,
                    "state": tracked.state,
                    "webhook_id": webhook_id,
                    "received_at": received_at,
                }
        event_rows.append(rows)
    return Arrival(webhook_id, carrier, updates, now, body, received_at, tuple(event_rows))


def new_webhook_id() -> str:
    return "wh_" + unique_hex()


@dataclass
class _Tally:
    """What one arrival's updates came to, while the group is worked out."""

    invoices: list[tuple[str | None, str | None]]
    """Per update, the invoice its shipment is registered to, if any."""
    accounts: list[str | None]
    new_events: int = 0
    duplicates: int = 0
    queued: int = 0


def accept(conn: Connection, arrivals: list[Arrival], coalesce: timedelta) -> list[IngestResult]:
    """Store a commit group's webhooks: register, insert new events, count duplicates and
    queue a delivery for every invoice that gained events. One result per arrival."""
    numbers = [
        number
        for arrival in arrivals
        for update_ in arrival.updates
        for number in (update_.tracking_number, *update_.aliases)
    ]
    seen = shipments.ShipmentSet.read(conn, numbers)
    aliases: list[tuple[str, str]] = []
    event_rows: dict[str, dict[str, Any]] = {}
    owners: dict[str, tuple[int, int]] = {}
    registered_anew: dict[str, int] = {}
    tallies: list[_Tally] = []
    for index, arrival in enumerate(arrivals):
        tally = _Tally([], [])
        tallies.append(tally)
        for position, update_ in enumerate(arrival.updates):
            number = update_.tracking_number
            if seen.is_pruned(number):
                # Its invoice was pruned: VTEX holds the whole history, which a resent part
                # must not replace. Its events count as duplicates; nothing is stored.
                tally.invoices.append((None, None))
                tally.accounts.append(None)
                continue
            row = seen.see(number, arrival.carrier, update_.tracking_url, arrival.now)
            if update_.order_id and update_.invoice_number:
                wanted = (update_.order_id, update_.invoice_number)
                if row.invoice != wanted and seen.register(
                    number, *wanted, None, None, arrival.now
                ):
                    registered_anew[number] = index
            others = sorted({a for a in update_.aliases if a and a != number})
            aliases.extend((alias, number) for alias in others)
            known = seen.registered_among(others) if row.order_id is None else None
            if known is not None and known.invoice is not None:
                seen.register(number, *known.invoice, None, known.account, arrival.now)
                registered_anew[number] = index
            tally.invoices.append((row.order_id, row.invoice_number))
            tally.accounts.append(row.account)
            for identity, event_row in arrival.event_rows[position].items():
                if identity not in owners:
                    owners[identity] = (index, position)
                    event_rows[identity] = event_row
    seen.write(conn)
    shipments.add_aliases(conn, aliases)
    new = _add_events(conn, list(event_rows.values()))
    requests: list[tuple[int, deliveries.QueueRequest]] = []
    for index, (arrival, tally) in enumerate(zip(arrivals, tallies, strict=True)):
        for position, update_ in enumerate(arrival.updates):
            inserted = sum(
                1
                for identity in arrival.event_rows[position]
                if identity in new and owners[identity] == (index, position)
            )
            tally.new_events += inserted
            tally.duplicates += len(update_.events) - inserted
            order_id, invoice_number = tally.invoices[position]
            if inserted and order_id is not None and invoice_number is not None:
                account = tally.accounts[position]
                due = arrival.now + coalesce
                request = deliveries.QueueRequest(
                    order_id, invoice_number, account, arrival.now, due
                )
                requests.append((index, request))
                registered_anew.pop(update_.tracking_number, None)
    # A registration that moved known events to another invoice queues them too.
    for number, order_id, invoice_number, account in shipments.invoices_with_events(
        conn, registered_anew
    ):
        now = arrivals[registered_anew[number]].now
        request = deliveries.QueueRequest(order_id, invoice_number, account, now, now)
        requests.append((registered_anew[number], request))
    queued = deliveries.queue(conn, [request for _, request in requests])
    for index, request in requests:
        if request.invoice in queued:
            queued.discard(request.invoice)
            tallies[index].queued += 1
    _add_webhooks(conn, arrivals, tallies)
    return [
        IngestResult(
            arrival.webhook_id,
            tally.new_events,
            tally.duplicates,
            tally.queued,
            tuple(tally.invoices),
        )
        for arrival, tally in zip(arrivals, tallies, strict=True)
    ]


def _add_events(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the events; return the identities that were new."""
    return {row[0] for row in SQL.run_set(conn, "add_events", rows)}


def _add_webhooks(conn: Connection, arrivals: list[Arrival], tallies: list[_Tally]) -> None:
    rows = [
        {
            "id": arrival.webhook_id,
            "carrier": arrival.carrier,
            "received_at": arrival.received_at,
            "body": arrival.body,
            "new_events": tally.new_events,
            "duplicate_events": tally.duplicates,
        }
        for arrival, tally in zip(arrivals, tallies, strict=True)
        if arrival.body is not None
    ]
    SQL.run_set(conn, "add_webhooks", rows)


def quarantine(conn: Connection, carrier: str, body: bytes, error: str, now: datetime) -> str:
    """Keep a verified webhook its adapter could not read, with the reason."""
    webhook_id = new_webhook_id()
    conn.execute(
        webhooks.insert().values(
            id=webhook_id,
            carrier=carrier,
            received_at=now,
            body=body,
            state="quarantined",
            error=error,
        )
    )
    return webhook_id


def quarantined(
    conn: Connection, carrier: str | None = None, limit: int = 1000, webhook_id: str | None = None
) -> list[QuarantinedWebhook]:
    """Quarantined webhooks, oldest first (of a carrier, or the one ``webhook_id``)."""
    query = (
        select(webhooks)
        .where(webhooks.c.state == "quarantined")
        .order_by(webhooks.c.received_at, webhooks.c.id)
        .limit(limit)
    )
    if carrier is not None:
        query = query.where(webhooks.c.carrier == carrier)
    if webhook_id is not None:
        query = query.where(webhooks.c.id == webhook_id)
    return [_quarantined(row) for row in conn.execute(query).all()]


def release(
    conn: Connection,
    webhook_id: str,
    updates: Sequence[ShipmentUpdate],
    now: datetime,
    coalesce: timedelta,
) -> IngestResult | None:
    """Store what a re-run of a quarantined webhook read; None if it was not quarantined."""
    carrier = conn.scalar(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .where(webhooks.c.state == "quarantined")
        .values(state="replayed", error=None)
        .returning(webhooks.c.carrier)
    )
    if carrier is None:
        return None
    replayed = arrival(webhook_id, carrier, updates, now, None, conn.dialect.name)
    return accept(conn, [replayed], coalesce)[0]


def keep_in_quarantine(conn: Connection, webhook_id: str, error: str) -> None:
    """Record why a re-run of a quarantined webhook failed again."""
    conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .where(webhooks.c.state == "quarantined")
        .values(error=error)
    )


def discard_one(conn: Connection, webhook_id: str) -> QuarantinedWebhook | None:
    """Delete one quarantined webhook and return it; None if no such webhook is
    quarantined (an accepted or replayed webhook is never deleted)."""
    row = conn.execute(
        delete(webhooks)
        .where(webhooks.c.id == webhook_id)
        .where(webhooks.c.state == "quarantined")
        .returning(webhooks)
    ).one_or_none()
    return None if row is None else _quarantined(row)


def discard_all(conn: Connection, carrier: str) -> list[str]:
    """Delete every quarantined webhook of ``carrier``; return their ids."""
    return list(
        conn.scalars(
            delete(webhooks)
            .where(webhooks.c.carrier == carrier)
            .where(webhooks.c.state == "quarantined")
            .returning(webhooks.c.id)
        )
    )


def _quarantined(row: Any) -> QuarantinedWebhook:
    return QuarantinedWebhook(row.id, row.carrier, row.received_at, row.body, row.error)
