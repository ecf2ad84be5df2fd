"""VTEX orders: registering the packages of invoiced orders (orders hook) and reconciling
what VTEX holds with what the relay sent (SPEC §2 "Reconciliation", §4 orders hook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from app.deliver.retry import Verdict, decide
from app.deliver.vtex_body import build_tracking_body
from app.deliver.vtex_client import VtexClient
from app.deliver.vtex_order import (
    NotAnOrder,
    package_of_invoice,
    registrable_packages,
    what_vtex_lacks,
)
from app.settings import VtexNotConfigured, VtexTarget
from app.store import OrderNotification, StoreUnavailable
from app.wiring import DeliveryParts

log = structlog.get_logger("relay.orders")

CLAIM_BATCH = 8
ACTIVE_FOR = timedelta(days=30)
"""Reconciliation looks at invoices that received an event within this long."""


class OrderRegistrar:
    """Works off the orders hook's notifications: Get order, then every package with a
    tracking number is registered (trackingNumber → orderId, invoiceNumber, account)."""

    def __init__(self, parts: DeliveryParts) -> None:
        self._store = parts.store
        self._client = parts.client
        self._settings = parts.settings
        self._clock = parts.clock
        self._rng = parts.rng

    async def work_due(self) -> int:
        """Process the notifications due now (one batch); how many were taken."""
        now = self._clock()
        lease = now + max(timedelta(seconds=30), self._settings.vtex_timeout * 3)
        taken = await self._store.claim_order_notifications(now, lease, CLAIM_BATCH)
        for notification in taken:
            await self._register_packages(notification)
        return len(taken)

    async def _register_packages(self, notification: OrderNotification) -> None:
        bound = log.bind(orderId=notification.order_id, account=notification.account)
        try:
            target = self._settings.vtex_target(notification.account)
        except VtexNotConfigured as missing:
            await self._retry(notification, None, str(missing), bound)
            return
        answer = await self._client.get_order(target, notification.order_id)
        if not answer.ok:
            await self._retry(notification, answer.status_code, answer.error or "failed", bound)
            return
        try:
            found = registrable_packages(answer.json)
        except NotAnOrder as error:
            await self._retry(notification, 404, str(error), bound)
            return
        now = self._clock()
        for package in found:
            # VTEX's package carries the number: the invoice's first PUT needs no Get order.
            await self._store.note_invoice_checked(
                notification.order_id, package.invoice_number, "orders hook", now
            )
            await self._store.register_shipment(
                package.tracking_number,
                notification.order_id,
                package.invoice_number,
                None,
                notification.account,
                now,
            )
            bound.info(
                "order.package_registered",
                tracking_number=package.tracking_number,
                invoiceNumber=package.invoice_number,
                courier=package.courier or None,
            )
        await self._store.finish_order_notification(notification)
        if not found:
            bound.info("order.no_package_to_register")

    async def _retry(
        self,
        notification: OrderNotification,
        status_code: int | None,
        error: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        now = self._clock()
        decision = decide(
            attempt=notification.attempts + 1,
            status_code=status_code,
            retry_after=None,
            queued_at=notification.received_at,
            now=now,
            max_age=self._settings.max_delivery_age,
            rng=self._rng,
        )
        if decision.verdict is Verdict.DEAD or decision.next_attempt_at is None:
            await self._store.finish_order_notification(notification)
            bound.error("order.given_up", error=f"Get order: {error}", reason=decision.reason)
            return
        await self._store.retry_order_notification(
            notification, decision.next_attempt_at, f"Get order: {error}"
        )
        bound.warning(
            "order.retrying",
            error=f"Get order: {error}",
            next_attempt_at=decision.next_attempt_at.isoformat(),
        )


@dataclass(frozen=True)
class ReconcileReport:
    checked: int
    resent: int
    unreadable: int


class Reconciler:
    """Compares VTEX's ``courierStatus`` of active invoices with what the relay holds and
    queues a delivery of the whole tracking where VTEX lacks events or the delivery."""

    def __init__(self, parts: DeliveryParts) -> None:
        self._store = parts.store
        self._client = parts.client
        self._settings = parts.settings
        self._clock = parts.clock

    async def reconcile(self) -> ReconcileReport:
        checked = resent = unreadable = 0
        for invoice in await self._store.active_invoices(self._clock() - ACTIVE_FOR):
            bound = log.bind(orderId=invoice.order_id, invoiceNumber=invoice.invoice_number)
            try:
                target = self._settings.vtex_target(invoice.account)
            except VtexNotConfigured as missing:
                bound.warning("reconcile.skipped", reason=str(missing))
                unreadable += 1
                continue
            answer = await self._client.get_order(target, invoice.order_id)
            try:
                if not answer.ok:
                    raise NotAnOrder(f"Get order: {answer.error or 'failed'}")
                package = package_of_invoice(answer.json, invoice.invoice_number)
            except NotAnOrder as error:
                bound.warning("reconcile.unreadable", reason=str(error))
                unreadable += 1
                continue
            checked += 1
            history = await self._store.invoice_history(invoice.order_id, invoice.invoice_number)
            body = build_tracking_body(
                history.events,
                self._settings.vtex_timezone,
                self._settings.vtex_event_date_format,
            )
            lacking = (
                "VTEX has no package for the invoice"
                if package is None
                else what_vtex_lacks(package, body)
            )
            if lacking is None:
                continue
            queued = await self._store.queue_delivery_now(
                invoice.order_id, invoice.invoice_number, invoice.account, self._clock()
            )
            resent += 1
            bound.info("reconcile.resend", reason=lacking, queued=bool(queued))
        log.info("reconcile.done", checked=checked, resent=resent, unreadable=unreadable)
        return ReconcileReport(checked, resent, unreadable)


async def reconcile_safely(reconciler: Reconciler) -> None:
    """One periodic pass; a database outage only skips it."""
    try:
        await reconciler.reconcile()
    except StoreUnavailable as error:
        log.warning("reconcile.store_unavailable", reason=str(error))


# -- orders hook configuration (relay vtex subscribe) -------------------------------------

HOOK_CONFIG_PATH = "/api/orders/hook/config"
HOOK_HEADER = "X-Relay-Hook-Token"


def desired_hook_config(url: str, secret: str) -> dict[str, Any]:
    """VTEX orders hook for invoiced orders, posting to ``url`` with the relay's token."""
    return {
        "filter": {"type": "FromWorkflow", "status": ["invoiced"]},
        "hook": {"url": url, "headers": {HOOK_HEADER: secret}},
    }


def hook_matches(current: Any, desired: Mapping[str, Any]) -> bool:
    """Whether VTEX's current hook configuration is already the desired one."""
    if not isinstance(current, Mapping):
        return False
    filter_, hook = current.get("filter"), current.get("hook")
    if not isinstance(filter_, Mapping) or not isinstance(hook, Mapping):
        return False
    headers = hook.get("headers")
    wanted_headers = desired["hook"]["headers"]
    return (
        filter_.get("type") == desired["filter"]["type"]
        and sorted(filter_.get("status") or []) == sorted(desired["filter"]["status"])
        and hook.get("url") == desired["hook"]["url"]
        and isinstance(headers, Mapping)
        and {k.lower(): v for k, v in headers.items()}
        == {k.lower(): v for k, v in wanted_headers.items()}
    )


@dataclass(frozen=True)
class SubscribeResult:
    changed: bool
    message: str


async def subscribe_orders_hook(
    client: VtexClient, target: VtexTarget, url: str, secret: str
) -> SubscribeResult:
    """Configure VTEX's orders hook (idempotent); raises ``RuntimeError`` saying why not."""
    desired = desired_hook_config(url, secret)
    current = await client.call("GET", target, HOOK_CONFIG_PATH)
    if current.status_code == 200 and hook_matches(current.json, desired):
        return SubscribeResult(False, f"already configured: invoiced orders → {url}")
    posted = await client.call("POST", target, HOOK_CONFIG_PATH, desired)
    if posted.status_code is None:
        raise RuntimeError(f"could not reach VTEX at {target.base_url}: {posted.error}")
    if not posted.ok:
        detail = (posted.body or posted.error or "")[:300].replace(secret, "<secret>")
        raise RuntimeError(
            f"VTEX refused the hook configuration ({posted.error}): {detail}. VTEX pings the "
            "URL when configuring: it must reach this relay's /vtex/orders-hook"
        )
    return SubscribeResult(True, f"configured: invoiced orders → {url} (header {HOOK_HEADER} set)")
