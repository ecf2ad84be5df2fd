"""Per-minute counts for the console (SPEC §10), kept in memory and added to the database's
``minute_counts`` rows every few seconds: however many calls a flood makes, a carrier costs
one row a minute, and every replica's counts land in the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

log = structlog.get_logger("relay")


@dataclass(frozen=True)
class MinuteCount:
    scope: str  # "carrier", "account" or "latency"
    name: str
    outcome: str
    minute: datetime
    count: int
    last_at: datetime


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class MinuteTally:
    """Counts since the last :meth:`take`, by (scope, name, outcome, minute)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, datetime], list[Any]] = {}

    def note(self, scope: str, name: str, outcome: str, at: datetime) -> None:
        key = (scope, name, outcome, minute_of(at))
        held = self._counts.get(key)
        if held is None:
            self._counts[key] = [1, at]
        else:
            held[0] += 1
            if at > held[1]:
                held[1] = at

    def take(self) -> list[MinuteCount]:
        """Everything counted so far, which is forgotten here."""
        counts, self._counts = self._counts, {}
        return [
            MinuteCount(scope, name, outcome, minute, count, last_at)
            for (scope, name, outcome, minute), (count, last_at) in counts.items()
        ]

    def give_back(self, counts: list[MinuteCount]) -> None:
        """Counts a failed write did not store: they are added again to the next one."""
        for count in counts:
            key = (count.scope, count.name, count.outcome, count.minute)
            held = self._counts.setdefault(key, [0, count.last_at])
            held[0] += count.count
            held[1] = max(held[1], count.last_at)


FLUSH_SECONDS = 2.0
"""How often a relay adds its tally to the database: the Overview is this far behind."""


async def flush_tally_forever(
    tally: MinuteTally, write: Callable[[list[MinuteCount]], Awaitable[None]]
) -> None:
    """Every :data:`FLUSH_SECONDS`, write what was counted; counts a failed write did not
    store wait for the next one. Cancel to stop (what is left is written first)."""
    try:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await write_tally(tally, write)
    finally:
        await write_tally(tally, write)


async def write_tally(
    tally: MinuteTally, write: Callable[[list[MinuteCount]], Awaitable[None]]
) -> None:
    """Write what was counted so far (the Overview does, before it reads the counts)."""
    counts = tally.take()
    if not counts:
        return
    try:
        await write(counts)
    except Exception as error:  # the database is away: keep the counts for the next try
        tally.give_back(counts)
        log.warning("console.counts_not_written", error=type(error).__name__)
