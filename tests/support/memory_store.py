"""An in-memory :class:`~app.store.Store`: the ``SqlStore``'s semantics on plain dicts.

For tests of the relay's decisions without a database (the worker, the intake), and as the
third implementation the store's behaviour tests run on (``tests/integration``). No
threads: no method awaits, so each runs whole on the event loop, and a write that raises
leaves the tables as they were (a rolled-back transaction). Each method follows its
``SqlStore`` counterpart's docstring and the module it delegates to (``app/store/
webhooks.py``, ``shipments.py``, ``deliveries.py``, ``orders.py``); the tables are in
``memory_tables``, the read models in ``memory_reads``.

Not modelled: the schema (``migrate`` only answers the version), durability, several
relays sharing one database (row locks, ``SKIP LOCKED``, ``LISTEN``/``NOTIFY``:
``watch_for_work`` never calls back, as on SQLite), commit groups, ``StoreUnavailable``
and the databases' own limits (column lengths, ``MAX_ROW_ID``, NUL in text).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from app.ids import unique_hex
from app.normalize.model import ShipmentUpdate, TrackingEvent, event_identity
from app.store import (
    RESPONSE_KEEP_BYTES,
    SCHEMA_VERSION,
    ActiveInvoice,
    AttemptRecord,
    DeliveryJob,
    DeliveryView,
    IngestResult,
    InvoiceHistory,
    InvoiceShipment,
    NotRetriable,
    OrderNotification,
    QuarantinedWebhook,
    QueueSnapshot,
    RecordedAttempt,
    Registration,
    ShipmentView,
    Store,
    first_bytes,
)
from tests.support import memory_reads as reads
from tests.support.memory_tables import (
    Delivery,
    Event,
    Invoice,
    Notification,
    Request,
    Shipment,
    Tables,
    Webhook,
    utc,
)


class MemoryStore:
    """The relay's store in memory; ``coalesce`` as in :meth:`SqlStore.open`: how long a
    delivery queued by new events waits for more to join it."""

    def __init__(self, coalesce: timedelta = timedelta(0)) -> None:
        self._coalesce = coalesce
        self._t = Tables()

    @contextmanager
    def _write(self) -> Iterator[Tables]:
        """A transaction: a write that raises leaves every table as it was."""
        saved = copy.deepcopy(self._t)
        try:
            yield self._t
        except BaseException:
            self._t = saved
            raise

    def watch_for_work(self, on_work: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def describe(self) -> str:
        return "memory"

    async def close(self) -> None:
        pass

    async def migrate(self) -> int:
        return SCHEMA_VERSION

    async def ping(self) -> None:
        pass

    # -- webhooks ------------------------------------------------------------

    async def record_webhook(
        self, carrier: str, body: bytes, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult:
        with self._write() as t:
            webhook_id = "wh_" + unique_hex()
            result = self._accept(webhook_id, carrier, updates, utc(now))
            t.webhooks[webhook_id] = Webhook(webhook_id, carrier, utc(now), bytes(body), "accepted")
            return result

    async def quarantine_webhook(self, carrier: str, body: bytes, error: str, now: datetime) -> str:
        webhook_id = "wh_" + unique_hex()
        kept = Webhook(webhook_id, carrier, utc(now), bytes(body), "quarantined", error)
        self._t.webhooks[webhook_id] = kept
        return webhook_id

    async def quarantined(
        self, carrier: str | None = None, limit: int = 1000, webhook_id: str | None = None
    ) -> list[QuarantinedWebhook]:
        held = [
            w
            for w in self._t.webhooks.values()
            if w.state == "quarantined"
            and carrier in (None, w.carrier)
            and webhook_id in (None, w.id)
        ]
        held.sort(key=lambda w: (w.received_at, w.id))
        return [reads.quarantined_webhook(w) for w in held[:limit]]

    async def release_from_quarantine(
        self, webhook_id: str, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult | None:
        with self._write() as t:
            webhook = t.webhooks.get(webhook_id)
            if webhook is None or webhook.state != "quarantined":
                return None
            webhook.state, webhook.error = "replayed", None
            return self._accept(webhook_id, webhook.carrier, updates, utc(now))

    async def keep_in_quarantine(self, webhook_id: str, error: str) -> None:
        webhook = self._t.webhooks.get(webhook_id)
        if webhook is not None and webhook.state == "quarantined":
            webhook.error = error

    async def discard_quarantined(self, webhook_id: str) -> QuarantinedWebhook | None:
        webhook = self._t.webhooks.get(webhook_id)
        if webhook is None or webhook.state != "quarantined":
            return None  # an accepted or replayed webhook is never deleted
        del self._t.webhooks[webhook_id]
        return reads.quarantined_webhook(webhook)

    async def discard_quarantine(self, carrier: str) -> list[str]:
        webhooks = self._t.webhooks
        ids = [w.id for w in webhooks.values() if w.carrier == carrier and w.state == "quarantined"]
        for webhook_id in ids:
            del webhooks[webhook_id]
        return ids

    def _accept(
        self, webhook_id: str, carrier: str, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult:
        """``webhooks.accept`` of one webhook: register, add the new events, count the
        duplicates, and queue a delivery for every invoice that gained events."""
        t = self._t
        invoices: list[tuple[str | None, str | None]] = []
        accounts: list[str | None] = []
        wanted: list[list[str]] = []  # per update, the identities of its distinct events
        owners: dict[str, int] = {}  # identity -> the update that brought it first
        fresh: dict[str, tuple[str, TrackingEvent]] = {}  # new identity -> (number, event)
        registered_anew: set[str] = set()
        for position, update in enumerate(updates):
            number = update.tracking_number
            row = self._see(number, carrier, update.tracking_url, now)
            if update.order_id and update.invoice_number:
                named = (update.order_id, update.invoice_number)
                if row.invoice != named and _register(row, *named, None, None, now):
                    registered_anew.add(number)
            others = sorted({a for a in update.aliases if a and a != number})
            for alias in others:
                t.aliases.setdefault(alias, number)
            known = self._registered_among(others) if row.order_id is None else None
            if known is not None and known.invoice is not None:
                _register(row, *known.invoice, None, known.account, now)
                registered_anew.add(number)
            invoices.append((row.order_id, row.invoice_number))
            accounts.append(row.account)
            distinct: dict[str, TrackingEvent] = {}  # a payload may repeat an event
            for tracked in update.events:
                distinct.setdefault(event_identity(carrier, number, tracked), tracked)
            for identity, tracked in distinct.items():
                if identity not in owners:
                    owners[identity] = position
                    if identity not in t.identities:
                        fresh[identity] = (number, tracked)
            wanted.append(list(distinct))
        for identity, (number, tracked) in fresh.items():
            t.last_event_id += 1
            stored = replace(tracked, occurred_at=utc(tracked.occurred_at))
            t.events[t.last_event_id] = Event(
                t.last_event_id, carrier, number, stored, webhook_id, now
            )
            t.identities.add(identity)
        new_events = duplicates = 0
        requests: list[Request] = []
        for position, update in enumerate(updates):
            inserted = sum(1 for i in wanted[position] if i in fresh and owners[i] == position)
            new_events += inserted
            duplicates += len(update.events) - inserted
            order_id, invoice_number = invoices[position]
            if inserted and order_id is not None and invoice_number is not None:
                due = now + self._coalesce
                requests.append(Request(order_id, invoice_number, accounts[position], now, due))
                registered_anew.discard(update.tracking_number)
        # A registration that moved known events to another invoice queues them too.
        requests += self._requests_for_events_of(registered_anew, now)
        queued = self._queue(requests)
        counted = 0
        for request in requests:
            if request.invoice in queued:
                queued.discard(request.invoice)
                counted += 1
        return IngestResult(webhook_id, new_events, duplicates, counted, tuple(invoices))

    # -- shipments -----------------------------------------------------------

    def _see(self, number: str, carrier: str | None, url: str | None, now: datetime) -> Shipment:
        """The shipment, created unregistered on first sight; its link kept fresh, and its
        carrier filled in when it was registered before its first webhook."""
        row = self._t.shipments.get(number)
        if row is None:
            row = self._t.shipments[number] = Shipment(number, carrier, url, now)
        else:
            row.url = url or row.url
            row.carrier = row.carrier if row.carrier is not None else carrier
        return row

    def _registered_among(self, numbers: Sequence[str]) -> Shipment | None:
        """Of these tracking numbers, the one registered most recently, if any."""
        rows = [self._t.shipments.get(number) for number in numbers]
        registered = [row for row in rows if row is not None and row.order_id is not None]
        return max(registered, key=lambda row: row.registration_order, default=None)

    def _requests_for_events_of(self, numbers: set[str], now: datetime) -> list[Request]:
        """A delivery due now for each registered shipment among ``numbers`` holding events."""
        holding = {e.number for e in self._t.events.values()}
        rows = [self._t.shipments[number] for number in sorted(numbers & holding)]
        return [
            Request(row.order_id, row.invoice_number, row.account, now, now)
            for row in rows
            if row.order_id is not None and row.invoice_number is not None
        ]

    async def register_shipment(
        self,
        tracking_number: str,
        order_id: str,
        invoice_number: str,
        carrier: str | None,
        account: str | None,
        now: datetime,
    ) -> Registration:
        with self._write() as t:
            now = utc(now)
            # The number may be an alias of a shipment whose events are held under another key.
            aliased = [t.aliases[tracking_number]] if tracking_number in t.aliases else []
            existing = t.shipments.get(tracking_number)
            created = existing is None or existing.registered_at is None
            row = self._see(tracking_number, carrier, None, now)
            changed = set()
            if _register(row, order_id, invoice_number, carrier, account, now):
                changed.add(tracking_number)
            for number in aliased:
                other = t.shipments.get(number)
                if other is not None and _register(
                    other, order_id, invoice_number, None, account, now
                ):
                    changed.add(number)
            queued = self._queue(self._requests_for_events_of(changed, now))
            return Registration(created, len(queued))

    async def get_shipment(self, tracking_number: str) -> ShipmentView | None:
        return reads.shipment(self._t, tracking_number)

    # -- deliveries ----------------------------------------------------------

    def _queue(self, requests: Sequence[Request]) -> set[Invoice]:
        """A pending delivery per requested invoice unless one is open; those queued (the
        first request of an invoice is the one that counts)."""
        t = self._t
        wanted: dict[Invoice, Request] = {}
        for request in requests:
            wanted.setdefault(request.invoice, request)
        held = {d.invoice for d in t.deliveries.values() if d.is_open}
        queued = set()
        for invoice, r in wanted.items():
            if invoice not in held:
                t.last_delivery_id += 1
                t.deliveries[t.last_delivery_id] = Delivery(
                    t.last_delivery_id, *invoice, r.account, utc(r.now), utc(r.due)
                )
                queued.add(invoice)
        return queued

    async def claim_due_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[DeliveryJob]:
        with self._write() as t:
            now, lease_until = utc(now), utc(lease_until)
            due = sorted(
                (
                    d
                    for d in t.deliveries.values()
                    if d.is_open
                    and d.next_attempt_at <= now
                    and (d.claimed_until is None or d.claimed_until < now)
                    and t.pauses.get(d.account or "", now) <= now
                ),
                key=lambda d: (d.next_attempt_at, d.id),
            )[:limit]
            jobs = []
            for d in due:
                d.claimed_until = lease_until
                rows = t.shipments_of(d.invoice)
                jobs.append(
                    DeliveryJob(
                        id=d.id,
                        order_id=d.order_id,
                        invoice_number=d.invoice_number,
                        account=d.account,
                        queued_at=d.queued_at,
                        attempt_count=d.attempt_count,
                        tracking_numbers=tuple(sorted(row.number for row in rows)),
                        carriers=tuple(sorted({row.carrier for row in rows if row.carrier})),
                        history=self._history(d.invoice),
                    )
                )
            return jobs

    def account_paused_until(self, account: str | None, now: datetime) -> datetime | None:
        until = self._t.pauses.get(account or "")
        return until if until is not None and until > utc(now) else None

    async def invoice_history(self, order_id: str, invoice_number: str) -> InvoiceHistory:
        return self._history((order_id, invoice_number))

    def _history(self, invoice: Invoice) -> InvoiceHistory:
        held = self._t.events_of(invoice)
        check = self._t.checks.get(invoice)
        return InvoiceHistory(
            events=tuple(e.event for e in held),
            event_ids=tuple(e.id for e in held),
            checked_by=check[1] if check else None,
        )

    async def note_invoice_checked(
        self, order_id: str, invoice_number: str, checked_by: str, now: datetime
    ) -> None:
        with self._write() as t:
            t.checks.setdefault((order_id, invoice_number), (utc(now), checked_by))

    async def invoice_shipments(self, order_id: str, invoice_number: str) -> list[InvoiceShipment]:
        rows = sorted(
            self._t.shipments_of((order_id, invoice_number)),
            key=lambda row: row.registration_order,
        )
        found = [
            InvoiceShipment(row.number, row.url, row.carrier, row.number in self._t.aliases)
            for row in rows
        ]
        return sorted(found, key=lambda shipment: not shipment.stands_for_another)

    async def record_attempt(
        self,
        job: DeliveryJob,
        attempt: AttemptRecord,
        *,
        state: str,
        next_attempt_at: datetime | None,
        body: dict[str, Any] | None,
        covered_event_ids: Sequence[int],
        receipt: dict[str, Any] | None,
        now: datetime,
        pause_account_until: datetime | None = None,
        invoice_checked_by: str | None = None,
    ) -> None:
        """``deliveries.record_attempt``: what is None (a body when nothing was sent, a
        receipt unless delivered) keeps the delivery's value; delivered while the invoice
        holds an event the body lacked queues the next delivery."""
        with self._write() as t:
            now = utc(now)
            d = t.deliveries[job.id]
            number = job.attempt_count + 1
            d.attempts.append(
                RecordedAttempt(
                    number,
                    utc(attempt.started_at),
                    attempt.duration_ms,
                    attempt.status_code,
                    first_bytes(attempt.response_body, RESPONSE_KEEP_BYTES),
                    attempt.error,
                )
            )
            delivered = state == "delivered"
            kept = receipt if delivered and receipt is not None else {}
            d.state, d.attempt_count, d.claimed_until = state, number, None
            d.last_status, d.last_error = attempt.status_code, attempt.error
            if body is not None:
                d.body = json.dumps(body, ensure_ascii=False)
                d.covered_event_id = max(covered_event_ids, default=None)
            if next_attempt_at is not None:
                d.next_attempt_at = utc(next_attempt_at)
            if delivered:
                d.delivered_at = now
            d.receipt = str(kept.get("receipt") or "") or d.receipt
            d.vtex_date = str(kept.get("date") or "") or d.vtex_date
            if pause_account_until is not None:
                account, until = job.account or "", utc(pause_account_until)
                t.pauses[account] = max(t.pauses.get(account, until), until)  # a later one wins
            if invoice_checked_by is not None:
                t.checks.setdefault(d.invoice, (now, invoice_checked_by))
            held = {e.id for e in t.events_of(d.invoice)}
            if delivered and held - set(covered_event_ids):
                due = now + self._coalesce
                self._queue([Request(job.order_id, job.invoice_number, job.account, now, due)])

    async def postpone(self, delivery_id: int, until: datetime) -> None:
        d = self._t.deliveries.get(delivery_id)
        if d is not None:
            d.next_attempt_at, d.claimed_until = utc(until), None

    async def renew_claims(self, delivery_ids: Sequence[int], until: datetime) -> None:
        for delivery_id in delivery_ids:
            d = self._t.deliveries.get(delivery_id)
            if d is not None and d.claimed_until is not None:
                d.claimed_until = utc(until)

    async def retry_delivery(self, delivery_id: int, now: datetime) -> int | None:
        """``deliveries.retry``: a dead delivery is pending again with a fresh age, unless
        the invoice has an open one, which is made due now instead."""
        now = utc(now)
        d = self._t.deliveries.get(delivery_id)
        if d is None:
            return None
        if d.state == "delivered":
            raise NotRetriable(f"delivery {delivery_id} was delivered")
        target = d
        if d.state == "dead":
            same = [o for o in self._t.deliveries.values() if o.is_open and o.invoice == d.invoice]
            if same:
                target = same[0]
            else:
                d.state, d.queued_at, d.claimed_until = "pending", now, None
        target.next_attempt_at = now
        return target.id

    async def queue_delivery_now(
        self, order_id: str, invoice_number: str, account: str | None, now: datetime
    ) -> int:
        with self._write():
            return len(self._queue([Request(order_id, invoice_number, account, now, now)]))

    # -- VTEX orders ---------------------------------------------------------

    async def queue_order_notification(
        self, order_id: str, account: str | None, now: datetime
    ) -> None:
        now = utc(now)
        self._t.notifications[order_id] = Notification(order_id, account, now, now)
        for d in self._t.deliveries.values():
            released = d.claimed_until is None or d.claimed_until < now
            if d.order_id == order_id and d.state == "retrying" and released:
                d.next_attempt_at = min(d.next_attempt_at, now)

    async def claim_order_notifications(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[OrderNotification]:
        now, lease_until = utc(now), utc(lease_until)
        due = sorted(
            (
                n
                for n in self._t.notifications.values()
                if n.next_attempt_at <= now and (n.claimed_until is None or n.claimed_until < now)
            ),
            key=lambda n: n.next_attempt_at,
        )[:limit]
        for n in due:
            n.claimed_until = lease_until
        return [OrderNotification(n.order_id, n.account, n.received_at, n.attempts) for n in due]

    def _same_notification(self, notification: OrderNotification) -> Notification | None:
        """The notification's row, unless the order was notified again since."""
        n = self._t.notifications.get(notification.order_id)
        return n if n is not None and n.received_at == utc(notification.received_at) else None

    async def finish_order_notification(self, notification: OrderNotification) -> None:
        if self._same_notification(notification) is not None:
            del self._t.notifications[notification.order_id]

    async def retry_order_notification(
        self, notification: OrderNotification, at: datetime, error: str
    ) -> None:
        n = self._same_notification(notification)
        if n is not None:
            n.next_attempt_at, n.claimed_until = utc(at), None
            n.attempts, n.last_error = notification.attempts + 1, error[:500]

    async def active_invoices(self, since: datetime) -> list[ActiveInvoice]:
        return reads.active_invoices(self._t, since)

    # -- read models ---------------------------------------------------------

    async def queue_snapshot(self, now: datetime) -> QueueSnapshot:
        return reads.queue_snapshot(self._t, now)

    async def backlog(self, now: datetime) -> tuple[int, int]:
        return reads.backlog(self._t, now)

    async def paused_accounts(self, now: datetime) -> dict[str, datetime]:
        return reads.paused_accounts(self._t, now)

    async def list_deliveries(self, state: str | None, limit: int) -> list[DeliveryView]:
        return reads.deliveries_in(self._t, state, limit)

    async def get_delivery(self, delivery_id: int) -> DeliveryView | None:
        d = self._t.deliveries.get(delivery_id)
        return None if d is None else reads.delivery_view(self._t, d)


def _register(
    row: Shipment,
    order_id: str,
    invoice_number: str,
    carrier: str | None,
    account: str | None,
    now: datetime,
) -> bool:
    """Set a seen shipment's invoice; True when that changed where its events go."""
    changed = (row.order_id, row.invoice_number) != (order_id, invoice_number) or (
        account is not None and row.account != account
    )
    if changed:
        row.order_id, row.invoice_number, row.registered_at = order_id, invoice_number, now
        row.account = account if account is not None else row.account
    row.carrier = carrier if carrier is not None else row.carrier
    return changed


_: type[Store] = MemoryStore  # mypy: a MemoryStore is a Store
