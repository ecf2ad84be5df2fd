"""The retry decision after a delivery attempt (SPEC §3)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.deliver.retry import (
    BACKOFF_CAP,
    SLOW_LANE_CAP,
    Decision,
    Verdict,
    backoff,
    decide,
    slow_lane,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=72)


def decision(
    status_code: int | None,
    *,
    attempt: int = 1,
    retry_after: timedelta | None = None,
    age: timedelta = timedelta(minutes=5),
    seed: int = 7,
) -> Decision:
    return decide(
        attempt=attempt,
        status_code=status_code,
        retry_after=retry_after,
        queued_at=NOW - age,
        now=NOW,
        max_age=MAX_AGE,
        rng=random.Random(seed),
    )


def delay(result: Decision) -> timedelta:
    assert result.verdict is Verdict.RETRY
    assert result.next_attempt_at is not None
    return result.next_attempt_at - NOW


@pytest.mark.parametrize("status_code", [200, 201, 204, 299])
def test_2xx_is_delivered(status_code: int) -> None:
    result = decision(status_code)

    assert (result.verdict, result.next_attempt_at) == (Verdict.DELIVERED, None)


@pytest.mark.parametrize("status_code", [None, 408, 429, 500, 502, 503, 504])
@pytest.mark.parametrize("attempt", [1, 2, 5, 9, 10, 40])
def test_transient_failures_back_off_within_bounds(status_code: int | None, attempt: int) -> None:
    ceiling = min(BACKOFF_CAP, timedelta(seconds=2**attempt))
    for seed in range(30):
        waited = delay(decision(status_code, attempt=attempt, seed=seed))
        assert timedelta(0) <= waited <= ceiling


def test_first_retry_comes_after_about_a_second() -> None:
    delays = [delay(decision(503, attempt=1, seed=seed)).total_seconds() for seed in range(400)]

    assert max(delays) <= 2.0
    assert 0.8 <= sum(delays) / len(delays) <= 1.2


def test_backoff_is_capped_at_ten_minutes() -> None:
    assert timedelta(minutes=10) == BACKOFF_CAP
    rng = random.Random(3)
    delays = [backoff(attempt, rng) for attempt in range(10, 200) for _ in range(5)]

    assert max(delays) <= BACKOFF_CAP
    assert max(delays) > BACKOFF_CAP * 0.9  # the cap is reached, not some lower ceiling


@pytest.mark.parametrize("attempt", [1, 4, 8])
def test_backoff_uses_full_jitter(attempt: int) -> None:
    rng = random.Random(11)
    ceiling = 2.0**attempt
    delays = [backoff(attempt, rng).total_seconds() for _ in range(300)]

    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_backoff_grows_with_the_attempt() -> None:
    def mean(attempt: int) -> float:
        rng = random.Random(5)
        return sum(backoff(attempt, rng).total_seconds() for _ in range(300)) / 300

    assert mean(1) < mean(3) < mean(6) < mean(9)


def test_same_seed_same_decision() -> None:
    assert decision(503, attempt=6, seed=42) == decision(503, attempt=6, seed=42)
    assert decision(503, attempt=6, seed=42) != decision(503, attempt=6, seed=43)


@pytest.mark.parametrize("status_code", [429, 503, None])
def test_retry_after_is_a_floor(status_code: int | None) -> None:
    assert delay(decision(status_code, attempt=1, retry_after=timedelta(seconds=120))) == (
        timedelta(seconds=120)
    )
    # A backoff longer than Retry-After is kept.
    for seed in range(30):
        waited = delay(
            decision(status_code, attempt=9, retry_after=timedelta(seconds=1), seed=seed)
        )
        assert timedelta(seconds=1) <= waited <= timedelta(seconds=2**9)


@pytest.mark.parametrize("status_code", [400, 404, 409, 422])
def test_client_errors_take_the_slow_lane(status_code: int) -> None:
    waits = [delay(decision(status_code, attempt=n, age=timedelta(hours=1))) for n in range(1, 8)]

    # About 30 s after the first attempt (an ERP posts the invoice a minute after the first
    # scan), doubling, then every 10 minutes.
    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480, 600, 600)]
    assert delay(decision(status_code, retry_after=timedelta(hours=2))) == timedelta(hours=2)


def test_the_slow_lane_never_waits_past_its_cap_however_many_attempts() -> None:
    assert slow_lane(0) == timedelta(seconds=30)
    assert all(slow_lane(n) == SLOW_LANE_CAP for n in (6, 60, 10**9))


@pytest.mark.parametrize("status_code", [401, 403])
@pytest.mark.parametrize("age", [timedelta(minutes=1), MAX_AGE, timedelta(days=30)])
def test_auth_failures_are_retried_slowly_and_never_dead(status_code: int, age: timedelta) -> None:
    result = decision(status_code, age=age)

    assert delay(result) >= timedelta(minutes=5)
    assert "key" in result.reason


@pytest.mark.parametrize("status_code", [None, 400, 404, 429, 500, 503])
def test_dead_once_older_than_max_age(status_code: int | None) -> None:
    assert decision(status_code, age=MAX_AGE - timedelta(seconds=1)).verdict is Verdict.RETRY
    for age in (MAX_AGE, MAX_AGE + timedelta(hours=1)):
        result = decision(status_code, age=age)
        assert (result.verdict, result.next_attempt_at) == (Verdict.DEAD, None)


def test_reason_names_the_status() -> None:
    assert "503" in decision(503).reason
    assert "no answer" in decision(None).reason


@pytest.mark.parametrize("status_code", [None, 503])
def test_no_backoff_overshoots_the_max_age_deadline(status_code: int | None) -> None:
    for seed in range(20):
        late = decision(status_code, attempt=12, age=MAX_AGE - timedelta(minutes=2), seed=seed)
        assert delay(late) <= timedelta(minutes=2)


@pytest.mark.parametrize("status_code", [400, 404])
def test_the_last_slow_lane_retry_falls_on_the_max_age_deadline(status_code: int) -> None:
    # Two minutes before the deadline the 10-minute lane would overshoot it by eight.
    result = decision(status_code, attempt=12, age=MAX_AGE - timedelta(minutes=2))

    assert delay(result) == timedelta(minutes=2)
    deadline_attempt = decide(
        attempt=13,
        status_code=status_code,
        retry_after=None,
        queued_at=NOW - MAX_AGE + timedelta(minutes=2),
        now=result.next_attempt_at or NOW,
        max_age=MAX_AGE,
        rng=random.Random(1),
    )
    assert deadline_attempt.verdict is Verdict.DEAD
