"""The delivery worker: claims due deliveries and PUTs each invoice's whole history to VTEX.

One loop, woken by new work, the poll interval or stop, whichever comes first. At most
``RELAY_VTEX_MAX_CONCURRENCY`` PUTs are in flight, started no faster than
``RELAY_VTEX_RATE_LIMIT`` per second; the store guarantees one open delivery per invoice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from app.deliver.orders import OrderRegistrar, Reconciler
from app.deliver.periodic import Periodic, periodic_tasks
from app.deliver.plan import (
    AttemptContext,
    AttemptOutcome,
    CheckPassed,
    CheckStopped,
    NeedsTrackingNumber,
    NotAnOrderAnswer,
    Postpone,
    Send,
    Skip,
    attempt_outcome,
    check_order,
    check_patched,
    plan_attempt,
    skipped_outcome,
)
from app.deliver.retry import Verdict
from app.deliver.vtex_body import build_tracking_body
from app.deliver.vtex_order import tracking_number_patch
from app.settings import VtexNotConfigured, VtexTarget
from app.store import AttemptRecord, DeliveryJob, SqlStore, StoreUnavailable
from app.wiring import DeliveryParts

log = structlog.get_logger("relay.deliver")

PREFETCH = 2
RECORD_RETRY_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class _Attempt:
    covered_event_ids: Sequence[int]
    body: dict[str, Any]
    started_at: datetime
    outcome: AttemptOutcome


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)


class Worker:
    """Runs until :meth:`stop`; :meth:`drain` empties what is due now and returns (tests)."""

    def __init__(self, parts: DeliveryParts) -> None:
        settings = parts.settings
        self._parts = parts
        self._store = parts.store
        self._metrics = parts.metrics
        self._client = parts.client
        self._settings = settings
        self._clock = parts.clock
        self._rng = parts.rng
        self._rate = RateLimiter(settings.vtex_rate_limit)
        self._sending = asyncio.Semaphore(settings.vtex_max_concurrency)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_done = asyncio.Event()
        self._loop_done.set()  # no loop running yet
        self._in_flight: dict[asyncio.Task[None], int] = {}
        # Claims are short and renewed while held, so a crashed worker's expire quickly.
        self._lease = max(timedelta(seconds=15), settings.vtex_timeout * 1.5)
        self._renewed = time.monotonic()
        self.heartbeat = time.monotonic()
        self.orders = OrderRegistrar(parts)
        self.reconciler = Reconciler(parts)
        self._orders_wake = asyncio.Event()

    def wake(self) -> None:
        """New work was queued: look now rather than at the next poll."""
        self._wake.set()
        self._orders_wake.set()

    def is_alive(self, max_silence: float) -> bool:
        return time.monotonic() - self.heartbeat <= max_silence

    async def run(self) -> None:
        poll = self._settings.worker_poll_interval.total_seconds()
        log.info("worker.started", max_concurrency=self._settings.vtex_max_concurrency)
        self._loop_done.clear()
        loop = asyncio.get_running_loop()

        def woken_elsewhere() -> None:  # another relay queued work (called from a thread)
            loop.call_soon_threadsafe(self.wake)

        stop_watching = self._store.watch_for_work(woken_elsewhere)
        side = asyncio.create_task(self._orders_loop(), name="orders-hook")
        periodic = asyncio.create_task(self._periodic(), name="periodic-tasks")
        try:
            while not self._stopping.is_set():
                self.heartbeat = time.monotonic()
                self._wake.clear()
                try:
                    await self._renew_claims()
                    claimed = await self._claim_and_start()
                except StoreUnavailable as error:
                    log.warning("worker.store_unavailable", reason=str(error))
                    claimed = 0
                except Exception:
                    log.exception("worker.claim_failed")
                    claimed = 0
                if claimed == 0 or self._free_slots() == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=poll)
        finally:
            stop_watching()
            self._orders_wake.set()
            periodic.cancel()  # a prune or a reconciliation under way must not hold up a stop
            await asyncio.gather(side, periodic, return_exceptions=True)
            self._loop_done.set()
        log.info("worker.stopped", in_flight=len(self._in_flight))

    async def _orders_loop(self) -> None:
        """Beside the deliveries: the orders hook's notifications, whose VTEX reads never
        hold up a delivery claim."""
        poll = self._settings.worker_poll_interval.total_seconds()
        while not self._stopping.is_set():
            self._orders_wake.clear()
            try:
                while await self.orders.work_due() and not self._stopping.is_set():
                    pass
            except StoreUnavailable as error:
                log.warning("worker.store_unavailable", reason=str(error))
            except Exception:
                log.exception("orders.failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._orders_wake.wait(), timeout=poll)

    async def _periodic(self) -> None:
        """Pruning, reconciliation and the orders hook's subscription, each on one relay of
        the fleet per interval (a store without upkeep, the in-memory one, has none)."""
        if not isinstance(self._store, SqlStore):
            return
        upkeep = self._store.upkeep()
        tasks = periodic_tasks(self._parts, upkeep, self.reconciler)
        await Periodic(upkeep, tasks, self._clock).run(self._stopping)

    async def stop(self, grace: float) -> None:
        """Stop claiming; let in-flight PUTs finish for at most ``grace`` seconds.

        Deliveries still running then are cancelled and released, due at once for the
        next worker: a PUT that VTEX did not answer is sent again, never lost.
        """
        self._stopping.set()
        self._wake.set()
        # A claim under way when the stop came still starts its deliveries: wait for it.
        await self._loop_done.wait()
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(self._in_flight, timeout=grace)
        unfinished = [self._in_flight[task] for task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for delivery_id in unfinished:
            await self._store.postpone(delivery_id, self._clock())
        if unfinished:
            log.warning("worker.released", deliveries=len(unfinished))

    async def _renew_claims(self) -> None:
        if time.monotonic() - self._renewed < self._lease.total_seconds() / 3:
            return
        self._renewed = time.monotonic()
        await self._store.renew_claims(list(self._in_flight.values()), self._clock() + self._lease)

    async def drain(self) -> None:
        """Deliver everything due now, retries that fall due meanwhile included, then return
        (orders hook notifications due now are worked off first)."""
        while await self.orders.work_due():
            pass
        while True:
            claimed = await self._claim_and_start()
            if claimed == 0 and not self._in_flight:
                return
            if self._in_flight:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    def _free_slots(self) -> int:
        # Claims run ahead of the sends (one claim transaction takes several deliveries);
        # the semaphore keeps the PUTs themselves to RELAY_VTEX_MAX_CONCURRENCY.
        return PREFETCH * self._settings.vtex_max_concurrency - len(self._in_flight)

    async def _claim_and_start(self) -> int:
        slots = self._free_slots()
        if slots <= 0 or (self._in_flight and slots < self._settings.vtex_max_concurrency):
            return 0  # claim in batches: one transaction for several deliveries
        now = self._clock()
        jobs = await self._store.claim_due_deliveries(now, now + self._lease, slots)
        for job in jobs:
            task = asyncio.create_task(self._deliver(job), name=f"delivery-{job.id}")
            self._in_flight[task] = job.id
            task.add_done_callback(self._finished)
        return len(jobs)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            # The type only: an exception's text may quote a header value (a credential).
            log.error("delivery.crashed", error=type(task.exception()).__name__)

    async def _deliver(self, job: DeliveryJob) -> None:
        """One attempt: the plan's VTEX calls, holding one of the ``RELAY_VTEX_MAX_CONCURRENCY``
        slots; then, the slot free for the next delivery, what :func:`attempt_outcome` said
        is recorded, counted and logged."""
        bound = log.bind(
            carrier=",".join(job.carriers) or None,
            orderId=job.order_id,
            invoiceNumber=job.invoice_number,
            tracking_number=",".join(job.tracking_numbers),
            account=job.account,
            delivery_id=job.id,
            attempt=job.attempt_count + 1,
        )
        async with self._sending:
            attempt = await self._attempt(job, bound)
        if attempt is not None:
            await self._settle(job, attempt, bound)

    async def _attempt(
        self, job: DeliveryJob, bound: structlog.typing.FilteringBoundLogger
    ) -> _Attempt | None:
        """The plan's VTEX calls and their outcome; None when the account's pause put the
        delivery off instead."""
        target: VtexTarget | None = None
        unconfigured: str | None = None
        try:
            target = self._settings.vtex_target(job.account)
        except VtexNotConfigured as missing:
            unconfigured = str(missing)
        else:
            await self._rate.acquire()
        history = job.history  # read with the claim
        body = build_tracking_body(
            history.events, self._settings.vtex_timezone, self._settings.vtex_event_date_format
        )
        plan = plan_attempt(
            body=body,
            unconfigured=unconfigured,
            paused_until=self._store.account_paused_until(job.account, self._clock()),
            invoice_checked=history.checked,
            now=self._clock(),
        )
        started_at = self._clock()
        match plan:
            case Postpone(until):
                await self._postpone(job, until, bound)
                return None
            case Skip():
                outcome = skipped_outcome(plan, started_at)
            case Send():
                assert target is not None, "a plan sends only where VTEX is configured"
                check = await self._check_invoice(job, target) if plan.check_first else None
                # The check took VTEX calls: a 429 may have paused the account meanwhile.
                paused_until = self._store.account_paused_until(job.account, self._clock())
                if check is not None and paused_until is not None:
                    await self._postpone(job, paused_until, bound)
                    return None
                put = None
                if not isinstance(check, CheckStopped):
                    put = await self._client.put_tracking(
                        target, job.order_id, job.invoice_number, plan.body
                    )
                context = AttemptContext(
                    job.attempt_count + 1, job.queued_at, self._settings.max_delivery_age
                )
                outcome = attempt_outcome(plan, check, put, context, self._clock(), self._rng)
        return _Attempt(history.event_ids, body, started_at, outcome)

    async def _settle(
        self, job: DeliveryJob, attempt: _Attempt, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        """Record the attempt (the delivery's new state, the claim released), count and log it."""
        outcome, body, started_at = attempt.outcome, attempt.body, attempt.started_at
        now = self._clock()
        answer = outcome.answer
        await self._record(
            job,
            lambda: self._store.record_attempt(
                job,
                AttemptRecord(
                    started_at=started_at,
                    duration_ms=answer.duration_ms,
                    status_code=answer.status_code,
                    response_body=answer.body,
                    error=answer.error,
                ),
                state=outcome.state,
                next_attempt_at=outcome.decision.next_attempt_at,
                body=outcome.sent,
                covered_event_ids=attempt.covered_event_ids,
                receipt=outcome.receipt,
                now=now,
                pause_account_until=outcome.pause_account_until,
                invoice_checked_by=outcome.invoice_checked_by,
            ),
        )
        latency = (now - job.queued_at).total_seconds()
        verdict = outcome.decision.verdict
        if outcome.metric_outcome is not None:
            self._metrics.delivery_attempted(
                outcome.metric_outcome,
                answer.status_code,
                latency if verdict is Verdict.DELIVERED else None,
                account=job.account or self._settings.vtex_account or "",
            )
        if verdict is Verdict.DELIVERED:
            receipt = outcome.receipt or {}
            bound.info(
                "delivery.delivered",
                receipt=receipt.get("receipt"),
                date=receipt.get("date"),
                status_code=answer.status_code,
                events=len(body["events"]),
                isDelivered=body["isDelivered"],
                duration_ms=round(answer.duration_ms, 1),
                latency_ms=round(latency * 1000, 1),
            )
        elif verdict is Verdict.RETRY:
            next_at = outcome.decision.next_attempt_at
            bound.warning(
                "delivery.retrying",
                status_code=answer.status_code,
                error=answer.error,
                reason=outcome.decision.reason,
                next_attempt_at=next_at.isoformat() if next_at else None,
            )
        else:
            bound.error(
                "delivery.dead",
                status_code=answer.status_code,
                error=answer.error,
                reason=outcome.decision.reason,
            )

    async def _postpone(
        self,
        job: DeliveryJob,
        until: datetime,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """A 429 paused the account: put the delivery off until the pause ends."""
        await self._store.postpone(job.id, until)
        bound.info("delivery.postponed", until=until.isoformat(), reason="429")

    async def _check_invoice(
        self, job: DeliveryJob, target: VtexTarget
    ) -> CheckPassed | CheckStopped:
        """SPEC §2, before an invoice's first PUT: read the order; give the invoice's package
        its tracking number with the partial-invoice PATCH when it lacks one."""
        got = await self._client.get_order(target, job.order_id)
        match check_order(got, job.invoice_number):
            case NotAnOrderAnswer():
                log.warning(
                    "invoice.check_skipped",
                    orderId=job.order_id,
                    invoiceNumber=job.invoice_number,
                    reason="Get order answer is not an order",
                )
                return CheckPassed(patched=False)
            case CheckPassed() | CheckStopped() as settled:
                return settled
            case NeedsTrackingNumber(package):
                pass
        shipments = await self._store.invoice_shipments(job.order_id, job.invoice_number)
        chosen = shipments[0] if shipments else None
        number = chosen.tracking_number if chosen else job.tracking_numbers[0]
        patch = tracking_number_patch(
            number,
            chosen.tracking_url if chosen else None,
            package.courier or (chosen.carrier if chosen else None),
        )
        answer = await self._client.patch_invoice(target, job.order_id, job.invoice_number, patch)
        patched = check_patched(answer)
        if isinstance(patched, CheckPassed):
            log.info(
                "invoice.tracking_number_set",
                orderId=job.order_id,
                invoiceNumber=job.invoice_number,
                tracking_number=number,
                **patch,
            )
        return patched

    async def _record(self, job: DeliveryJob, record: Callable[[], Awaitable[None]]) -> None:
        """Store the attempt, riding out a short database outage: the PUT happened, and
        recording it late beats sending it again when the claim expires."""
        for wait in RECORD_RETRY_WAITS:
            try:
                await record()
                return
            except StoreUnavailable as error:
                log.warning("delivery.record_waiting", delivery_id=job.id, reason=str(error))
                await asyncio.sleep(wait)
        await record()
