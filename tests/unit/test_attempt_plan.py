"""The pure decisions of a delivery attempt (app/deliver/plan.py), branch by branch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.deliver.plan import (
    NO_EVENTS,
    AttemptContext,
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
from app.deliver.retry import AUTH_LANE, Verdict, slow_lane
from app.deliver.vtex_client import VtexAnswer

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BODY: dict[str, Any] = {"isDelivered": False, "events": [{"city": "Curitiba"}]}
EMPTY: dict[str, Any] = {"isDelivered": False, "events": []}
RECEIPT = {"date": "2026-12-05T12:00:00Z", "orderId": "O-1", "receipt": "r-1"}
FRESH = AttemptContext(attempt=1, queued_at=NOW - timedelta(minutes=1), max_age=timedelta(days=1))


def answer(
    status: int | None, json: Any = None, retry_after: timedelta | None = None
) -> VtexAnswer:
    error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
    return VtexAnswer(status, None if json is None else str(json), json, retry_after, 12.0, error)


def order(*packages: dict[str, str]) -> dict[str, Any]:
    return {"orderId": "O-1", "packageAttachment": {"packages": list(packages)}}


def plan(**overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "body": BODY,
        "unconfigured": None,
        "paused_until": None,
        "invoice_checked": True,
        "now": NOW,
    }
    return plan_attempt(**{**arguments, **overrides})


# -- plan_attempt ---


def test_a_checked_invoice_with_events_is_sent_without_a_check() -> None:
    assert plan() == Send(BODY, check_first=False)


def test_the_first_put_of_an_invoice_is_checked_first() -> None:
    assert plan(invoice_checked=False) == Send(BODY, check_first=True)


def test_a_paused_account_postpones_until_the_pause_ends() -> None:
    until = NOW + timedelta(seconds=30)
    assert plan(paused_until=until) == Postpone(until)


def test_a_pause_that_is_over_does_not_hold_the_delivery() -> None:
    assert plan(paused_until=NOW) == Send(BODY, check_first=False)


def test_an_invoice_without_events_sends_nothing_and_is_over() -> None:
    assert plan(body=EMPTY) == Skip(NO_EVENTS, nothing_to_send=True)


def test_without_vtex_settings_nothing_is_sent_and_the_reason_is_kept() -> None:
    skipped = plan(unconfigured="no VTEX host", paused_until=NOW + timedelta(hours=1))
    assert skipped == Skip("no VTEX host", nothing_to_send=False)


# -- the check before the first PUT ---


def test_an_order_whose_package_has_a_tracking_number_passes() -> None:
    got = answer(200, order({"invoiceNumber": "NF-1", "trackingNumber": "BR1"}))
    assert check_order(got, "NF-1") == CheckPassed(patched=False)


def test_a_package_without_tracking_number_needs_the_patch() -> None:
    got = answer(200, order({"invoiceNumber": "NF-1", "courier": "Correios"}))
    check = check_order(got, " NF-1 ")
    assert isinstance(check, NeedsTrackingNumber)
    assert check.package.courier == "Correios"


def test_an_order_without_the_invoice_yet_stops_as_a_404() -> None:
    got = answer(200, order({"invoiceNumber": "NF-2", "trackingNumber": "BR1"}))
    check = check_order(got, "NF-1")
    assert isinstance(check, CheckStopped)
    assert check.answer.status_code == 404
    assert check.answer.error == "Get order: the order has no invoice NF-1 yet"


def test_a_failed_get_order_stops_with_its_answer_named() -> None:
    check = check_order(answer(503), "NF-1")
    assert isinstance(check, CheckStopped)
    assert check.answer.status_code == 503
    assert check.answer.error == "Get order: HTTP 503"


def test_an_answer_that_is_not_an_order_is_told_apart() -> None:
    assert check_order(answer(200, {"hello": "proxy"}), "NF-1") == NotAnOrderAnswer()


def test_the_patch_answer_passes_or_stops_the_attempt() -> None:
    assert check_patched(answer(204)) == CheckPassed(patched=True)
    stopped = check_patched(answer(403))
    assert isinstance(stopped, CheckStopped)
    assert stopped.answer.error == "partial invoice PATCH: HTTP 403"


# -- attempt_outcome ---


def outcome(
    check: CheckPassed | CheckStopped | None, put: VtexAnswer | None, **context: Any
) -> Any:
    sending = Send(BODY, check_first=check is not None)
    facts = AttemptContext(**{**FRESH.__dict__, **context})
    return attempt_outcome(sending, check, put, facts, NOW, random.Random(7))


def test_a_2xx_is_delivered_with_its_receipt_and_the_body_sent() -> None:
    done = outcome(None, answer(200, RECEIPT))
    assert done.decision.verdict is Verdict.DELIVERED
    assert done.state == "delivered"
    assert done.receipt == RECEIPT
    assert done.sent == BODY
    assert done.invoice_checked_by is None  # no check ran
    assert done.metric_outcome == "delivered"
    assert done.pause_account_until is None


def test_a_delivered_answer_that_is_not_an_object_keeps_no_receipt() -> None:
    assert outcome(None, answer(200, ["odd"])).receipt is None


def test_a_passed_check_is_recorded_with_whether_it_patched() -> None:
    patched = outcome(CheckPassed(patched=True), answer(200, RECEIPT))
    assert patched.invoice_checked_by == "partial invoice PATCH"
    seen = outcome(CheckPassed(patched=False), answer(200, RECEIPT))
    assert seen.invoice_checked_by == "Get order"


def test_a_stopped_check_is_the_attempt_and_nothing_was_sent() -> None:
    stopped = CheckStopped(answer(404))
    done = outcome(stopped, None)
    assert done.answer is stopped.answer
    assert done.sent is None
    assert done.invoice_checked_by is None
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.next_attempt_at == NOW + slow_lane(1)  # the 404 slow lane


def test_a_429_pauses_the_account_until_retry_after_at_least() -> None:
    done = outcome(None, answer(429, retry_after=timedelta(minutes=3)))
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.next_attempt_at is not None
    assert done.decision.next_attempt_at >= NOW + timedelta(minutes=3)
    assert done.pause_account_until == done.decision.next_attempt_at


def test_a_5xx_backs_off_without_pausing_the_account() -> None:
    done = outcome(None, answer(503), attempt=3)
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.next_attempt_at is not None
    assert NOW <= done.decision.next_attempt_at <= NOW + timedelta(seconds=8)
    assert done.pause_account_until is None
    assert done.metric_outcome == "retrying"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_retried_slowly_and_never_dead(status: int) -> None:
    done = outcome(None, answer(status), queued_at=NOW - timedelta(days=30))
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.next_attempt_at == NOW + AUTH_LANE
    assert done.metric_outcome == "credentials_refused"


def test_a_delivery_past_its_max_age_is_dead() -> None:
    done = outcome(None, answer(500), queued_at=NOW - timedelta(days=2))
    assert done.decision.verdict is Verdict.DEAD
    assert done.state == "dead"
    assert done.decision.next_attempt_at is None
    assert done.metric_outcome == "dead"


def test_no_answer_at_all_is_retried() -> None:
    silent = VtexAnswer(None, None, None, None, 10_000.0, "ReadTimeout")
    done = outcome(None, silent)
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.reason == "no answer from VTEX"


# -- skipped_outcome ---


def test_nothing_to_send_is_dead_and_not_counted_as_an_attempt() -> None:
    done = skipped_outcome(Skip(NO_EVENTS, nothing_to_send=True), NOW)
    assert done.decision.verdict is Verdict.DEAD
    assert done.metric_outcome is None
    assert done.answer.error == NO_EVENTS
    assert done.answer.status_code is None
    assert done.sent is None


def test_missing_vtex_settings_retry_slowly_and_count_as_not_configured() -> None:
    done = skipped_outcome(Skip("no VTEX credentials", nothing_to_send=False), NOW)
    assert done.decision.verdict is Verdict.RETRY
    assert done.decision.next_attempt_at == NOW + AUTH_LANE
    assert done.metric_outcome == "not_configured"
