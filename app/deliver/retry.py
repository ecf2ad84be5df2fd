"""When to try a delivery again: a pure decision from the attempt's outcome (SPEC §3)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

BACKOFF_CAP = timedelta(minutes=10)
SLOW_LANE_FIRST = timedelta(seconds=30)
SLOW_LANE_CAP = timedelta(minutes=10)
AUTH_LANE = timedelta(minutes=15)


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    next_attempt_at: datetime | None
    reason: str


def is_transient(status_code: int | None) -> bool:
    """Network errors (no status), timeouts, rate limits and server errors."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def backoff(attempt: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: uniform in [0, min(cap, 2^attempt s)]."""
    ceiling = min(BACKOFF_CAP.total_seconds(), 2.0 ** min(attempt, 30))
    return timedelta(seconds=rng.uniform(0, ceiling))


def slow_lane(attempt: int) -> timedelta:
    """The wait after a 400/404 (the invoice may not exist yet): 30 s after the first
    attempt, doubling with each, at most 10 minutes (SPEC §3)."""
    doublings = min(max(attempt, 1) - 1, 10)
    wait: timedelta = SLOW_LANE_FIRST * (1 << doublings)
    return min(SLOW_LANE_CAP, wait)


def decide(
    *,
    attempt: int,
    status_code: int | None,
    retry_after: timedelta | None,
    queued_at: datetime,
    now: datetime,
    max_age: timedelta,
    rng: random.Random,
) -> Decision:
    """What follows attempt number ``attempt`` (1-based) of a delivery queued at ``queued_at``.

    2xx is delivered. Transient failures back off (``Retry-After`` is a floor). 401/403
    are the key's fault, not the shipment's: retried slowly, never dead. Anything else
    (400, 404...) takes the slow lane (30 s doubling to 10 minutes). Except for 401/403, a
    delivery older than ``max_age`` is dead instead of being retried.
    """
    if status_code is not None and 200 <= status_code < 300:
        return Decision(Verdict.DELIVERED, None, f"VTEX answered {status_code}")
    reason = f"VTEX answered {status_code}" if status_code is not None else "no answer from VTEX"
    if status_code in (401, 403):
        return Decision(Verdict.RETRY, now + AUTH_LANE, reason + " (check the VTEX app key)")
    if now - queued_at >= max_age:
        return Decision(Verdict.DEAD, None, reason + f"; older than {max_age}")
    delay = backoff(attempt, rng) if is_transient(status_code) else slow_lane(attempt)
    # The last try falls on the deadline, so a delivery dies at its max age, not a lane later.
    delay = min(delay, queued_at + max_age - now)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return Decision(Verdict.RETRY, now + delay, reason)


def not_attempted(reason: str, now: datetime, *, nothing_to_send: bool) -> Decision:
    """A delivery that could not be sent. With nothing to send it is over (dead); otherwise
    the relay's configuration is at fault, like a 401: retried slowly, never dead."""
    if nothing_to_send:
        return Decision(Verdict.DEAD, None, reason)
    return Decision(Verdict.RETRY, now + AUTH_LANE, reason)
