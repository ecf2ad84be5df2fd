"""Periodic tasks beside the deliveries (SPEC §11): pruning (``RELAY_PRUNE_INTERVAL``,
hourly), reconciliation (``RELAY_RECONCILE_INTERVAL``) and keeping VTEX's orders hook
subscribed (``RELAY_VTEX_HOOK_URL``, daily). Each runs on one relay of the fleet per
interval: the store gives the turn (see ``UpkeepStore.fleet_turn``)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from app.deliver.orders import Reconciler, reconcile_safely, subscribe_orders_hook
from app.settings import Settings, VtexNotConfigured, duration_text
from app.store import StoreUnavailable, UpkeepStore
from app.wiring import DeliveryParts

log = structlog.get_logger("relay.periodic")

PRUNE_PAUSE = 0.02
"""Seconds between two prune transactions, so that webhooks' commits come in between."""
UNAVAILABLE_RETRY = 30.0
MAX_SLEEP = 60.0


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    every: timedelta
    run: Callable[[], Awaitable[None]]


def periodic_tasks(
    parts: DeliveryParts, upkeep: UpkeepStore, reconciler: Reconciler
) -> list[PeriodicTask]:
    """The tasks this relay's settings ask for."""
    settings = parts.settings

    async def prune() -> None:
        report = await upkeep.prune(parts.clock(), settings.retention, pause=PRUNE_PAUSE)
        await upkeep.free_space(pause=PRUNE_PAUSE)
        log.info("prune.done", retention=duration_text(settings.retention), **report.as_dict())

    async def reconcile() -> None:
        await reconcile_safely(reconciler)

    async def subscribe() -> None:
        await keep_hook_subscribed(parts)

    tasks = [PeriodicTask("prune", settings.prune_interval, prune)]
    if settings.reconcile_interval:
        tasks.append(PeriodicTask("reconcile", settings.reconcile_interval, reconcile))
    if settings.vtex_hook_url:
        tasks.append(PeriodicTask("orders-hook", settings.vtex_hook_refresh_interval, subscribe))
    return tasks


def hook_accounts(settings: Settings) -> list[str | None]:
    """The accounts whose orders hook the relay keeps: the default one, then each of
    ``RELAY_VTEX_ACCOUNTS``."""
    return [None, *sorted(settings.vtex_accounts)]


async def keep_hook_subscribed(parts: DeliveryParts) -> None:
    """Run ``relay vtex subscribe`` for each account (idempotent: unchanged hooks are left)."""
    settings = parts.settings
    url = settings.vtex_hook_url
    if url is None:
        return
    if settings.vtex_hook_secret is None:
        log.warning("hook.not_subscribed", reason="RELAY_VTEX_HOOK_SECRET is not set")
        return
    secret = settings.vtex_hook_secret.get_secret_value()
    for account in hook_accounts(settings):
        try:
            target = settings.vtex_target(account)
        except VtexNotConfigured as missing:
            if account is not None:
                log.warning("hook.not_subscribed", account=account, reason=str(missing))
            continue
        try:
            result = await subscribe_orders_hook(parts.client, target, url, secret)
        except RuntimeError as error:
            log.warning("hook.not_subscribed", account=account, reason=str(error))
            continue
        log.info("hook.subscribed", account=account, changed=result.changed, url=url)


class Periodic:
    """Runs each task when its interval has passed since any relay last started it."""

    def __init__(
        self,
        upkeep: UpkeepStore,
        tasks: list[PeriodicTask],
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self._upkeep = upkeep
        self._tasks = tasks
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - spreading relays' checks

    async def run(self, stopping: asyncio.Event) -> None:
        checks = dict.fromkeys((task.name for task in self._tasks), 0.0)
        while self._tasks and not stopping.is_set():
            for task in self._tasks:
                if time.monotonic() >= checks[task.name] and not stopping.is_set():
                    checks[task.name] = time.monotonic() + await self._turn(task)
            wait = min(checks.values()) - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=min(MAX_SLEEP, max(wait, 0.0)))

    async def _turn(self, task: PeriodicTask) -> float:
        """Run the task if it is this relay's turn; seconds until it should look again."""
        try:
            async with self._upkeep.fleet_turn(task.name, self._clock(), task.every) as mine:
                if mine:
                    await task.run()
            last = await self._upkeep.last_started(task.name)
        except StoreUnavailable as error:
            log.warning("periodic.store_unavailable", task=task.name, reason=str(error))
            return UNAVAILABLE_RETRY
        except Exception:
            log.exception("periodic.failed", task=task.name)
            last = self._clock()
        due = (last or self._clock()) + task.every
        # A little later than due, differently on each relay, so that they seldom ask at once.
        spread = self._rng.uniform(0, min(1.0, task.every.total_seconds() / 20))
        return max((due - self._clock()).total_seconds(), 0.0) + spread
