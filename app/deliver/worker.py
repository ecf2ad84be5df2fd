"""The delivery worker: claims due deliveries and PUTs each invoice's whole history to VTEX.

One loop, woken by new work, the poll interval or stop, whichever comes first. At most
``RELAY_VTEX_MAX_CONCURRENCY`` PUTs are in flight, started no faster than
``RELAY_VTEX_RATE_LIMIT`` per second; the store guarantees one open delivery per invoice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from app.deliver.orders import OrderRegistrar, Reconciler, reconcile_safely
from app.deliver.retry import Verdict, decide, not_attempted
from app.deliver.vtex_body import build_tracking_body
from app.deliver.vtex_client import VtexAnswer, VtexClient
from app.deliver.vtex_order import NotAnOrder, package_of_invoice, tracking_number_patch
from app.metrics import RelayMetrics
from app.settings import Settings
from app.store import AttemptRecord, DeliveryJob, Store, StoreUnavailable

log = structlog.get_logger("relay.deliver")

PREFETCH = 2
RECORD_RETRY_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0)
_STATE_OF = {Verdict.DELIVERED: "delivered", Verdict.RETRY: "retrying", Verdict.DEAD: "dead"}


def delivery_outcome(verdict: Verdict, status_code: int | None, *, attempted: bool) -> str:
    """The ``outcome`` label of a delivery attempt for ``relay_deliveries_total``.

    401/403 are VTEX refusing the key (an operator's problem, alerted on apart), and an
    attempt the relay could not make (no VTEX host or credentials) is ``not_configured``.
    """
    if not attempted:
        return "not_configured"
    if verdict is not Verdict.DEAD and status_code in (401, 403):
        return "credentials_refused"
    return _STATE_OF[verdict]


def _step_failed(answer: VtexAnswer, step: str) -> VtexAnswer:
    """A failed call before the PUT, its error naming the step (it is stored and logged)."""
    return replace(answer, error=f"{step}: {answer.error or 'failed'}")


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

    def __init__(
        self,
        store: Store,
        client: VtexClient,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or RelayMetrics()
        self._client = client
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
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
        self._paused: dict[str, datetime] = {}
        self.heartbeat = time.monotonic()
        self.orders = OrderRegistrar(store, client, settings, clock, self._rng)
        self.reconciler = Reconciler(store, client, settings, clock)
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
        side = asyncio.create_task(self._orders_loop(), name="orders-hook-and-reconcile")
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
            await asyncio.gather(side, return_exceptions=True)
            self._loop_done.set()
        log.info("worker.stopped", in_flight=len(self._in_flight))

    async def _orders_loop(self) -> None:
        """Beside the deliveries: orders hook notifications, and the periodic reconciliation
        (``RELAY_RECONCILE_INTERVAL``). Their VTEX reads never hold up a delivery claim."""
        poll = self._settings.worker_poll_interval.total_seconds()
        interval = self._settings.reconcile_interval
        next_reconcile = time.monotonic() + interval.total_seconds() if interval else None
        while not self._stopping.is_set():
            self._orders_wake.clear()
            try:
                while await self.orders.work_due() and not self._stopping.is_set():
                    pass
                if interval and next_reconcile and time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + interval.total_seconds()
                    await reconcile_safely(self.reconciler)
            except StoreUnavailable as error:
                log.warning("worker.store_unavailable", reason=str(error))
            except Exception:
                log.exception("orders.failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._orders_wake.wait(), timeout=poll)

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
        async with self._sending:
            await self._deliver_now(job)

    async def _deliver_now(self, job: DeliveryJob) -> None:
        bound = log.bind(
            carrier=",".join(job.carriers) or None,
            orderId=job.order_id,
            invoiceNumber=job.invoice_number,
            tracking_number=",".join(job.tracking_numbers),
            account=job.account,
            delivery_id=job.id,
            attempt=job.attempt_count + 1,
        )
        account = job.account or ""
        target = self._settings.vtex_target(job.account)
        if not isinstance(target, str):
            await self._rate.acquire()
            if await self._postponed_by_pause(job, account, bound):
                return
        # Read after the rate limiter's wait: the body carries what arrived meanwhile.
        history = await self._store.invoice_history(job.order_id, job.invoice_number)
        body = build_tracking_body(
            history.events,
            self._settings.vtex_timezone,
            self._settings.vtex_event_date_format,
        )
        started_at = self._clock()
        if not history.events or isinstance(target, str):
            reason = "the invoice has no events any more" if not history.events else str(target)
            answer = VtexAnswer(None, None, None, None, 0.0, reason)
            decision = not_attempted(reason, started_at, nothing_to_send=not history.events)
            sent = None
            patched = None
        else:
            # Before the invoice's first PUT, its VTEX package must carry a tracking number.
            checked = None if history.checked else await self._check_invoice(job, target)
            refused = checked if isinstance(checked, VtexAnswer) else None
            patched = checked if isinstance(checked, bool) else None
            # The check took VTEX calls: a 429 may have paused the account meanwhile.
            if not history.checked and await self._postponed_by_pause(job, account, bound):
                return
            sent = body if refused is None else None
            answer = refused or await self._client.put_tracking(
                *target, job.order_id, job.invoice_number, body
            )
            decision = decide(
                attempt=job.attempt_count + 1,
                status_code=answer.status_code,
                retry_after=answer.retry_after,
                queued_at=job.queued_at,
                now=self._clock(),
                max_age=self._settings.max_delivery_age,
                rng=self._rng,
            )
        now = self._clock()
        pause = decision.next_attempt_at if answer.status_code == 429 else None
        if pause is not None:
            # A 429 is about the account's key: hold every delivery to it, not just this one.
            self._paused[account] = max(self._paused.get(account, pause), pause)
        receipt = answer.json if isinstance(answer.json, dict) else None
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
                state=_STATE_OF[decision.verdict],
                next_attempt_at=decision.next_attempt_at,
                body=sent,
                covered_event_ids=history.event_ids,
                receipt=receipt if decision.verdict is Verdict.DELIVERED else None,
                now=now,
                pause_account_until=pause,
                invoice_checked=patched,
            ),
        )
        latency = (now - job.queued_at).total_seconds()
        if history.events:  # an invoice with nothing to send is not an attempt
            self._metrics.delivery_attempted(
                delivery_outcome(
                    decision.verdict, answer.status_code, attempted=not isinstance(target, str)
                ),
                answer.status_code,
                latency if decision.verdict is Verdict.DELIVERED else None,
            )
        if decision.verdict is Verdict.DELIVERED:
            receipt = receipt or {}
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
        elif decision.verdict is Verdict.RETRY:
            bound.warning(
                "delivery.retrying",
                status_code=answer.status_code,
                error=answer.error,
                reason=decision.reason,
                next_attempt_at=decision.next_attempt_at.isoformat()
                if decision.next_attempt_at
                else None,
            )
        else:
            bound.error(
                "delivery.dead",
                status_code=answer.status_code,
                error=answer.error,
                reason=decision.reason,
            )

    async def _postponed_by_pause(
        self, job: DeliveryJob, account: str, bound: structlog.typing.FilteringBoundLogger
    ) -> bool:
        """A 429 paused the account: put the delivery off until the pause ends."""
        paused_until = self._paused.get(account)
        if paused_until is None or paused_until <= self._clock():
            return False
        await self._store.postpone(job.id, paused_until)
        bound.info("delivery.postponed", until=paused_until.isoformat(), reason="429")
        return True

    async def _check_invoice(
        self, job: DeliveryJob, target: tuple[str, tuple[str, str]]
    ) -> VtexAnswer | bool:
        """SPEC §2, before an invoice's first PUT: read the order; give the invoice's package
        its tracking number with the partial-invoice PATCH when it lacks one.

        Returns whether the relay patched it when the PUT may go (the attempt's record marks
        the invoice checked), else the answer of the step that stopped it (an order or
        invoice that does not exist yet answers 404: the slow lane).
        """
        host, credentials = target
        bound = log.bind(orderId=job.order_id, invoiceNumber=job.invoice_number)
        got = await self._client.get_order(host, credentials, job.order_id)
        if not got.ok:
            return _step_failed(got, "Get order")
        try:
            package = package_of_invoice(got.json, job.invoice_number)
        except NotAnOrder:
            # Not VTEX's order shape (a proxy or a stand-in answering anything): nothing to
            # check against, so the PUT goes as it did before this check existed.
            bound.warning("invoice.check_skipped", reason="Get order answer is not an order")
            return False
        if package is None:
            return replace(
                got,
                status_code=404,
                error=f"Get order: the order has no invoice {job.invoice_number} yet",
            )
        if package.tracking_number:
            return False
        shipments = await self._store.invoice_shipments(job.order_id, job.invoice_number)
        chosen = shipments[0] if shipments else None
        number = chosen.tracking_number if chosen else job.tracking_numbers[0]
        patch = tracking_number_patch(
            number,
            chosen.tracking_url if chosen else None,
            package.courier or (chosen.carrier if chosen else None),
        )
        patched = await self._client.patch_invoice(
            host, credentials, job.order_id, job.invoice_number, patch
        )
        if not patched.ok:
            return _step_failed(patched, "partial invoice PATCH")
        bound.info("invoice.tracking_number_set", tracking_number=number, **patch)
        return True

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
