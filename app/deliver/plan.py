"""A delivery attempt as pure decisions (SPEC §2, §3): what to do with a claimed delivery, what
the invoice check before its first PUT asks for, and what an attempt leaves behind.

The worker (``app/deliver/worker.py``) is the I/O around them: it reads, asks
:func:`plan_attempt`, makes the VTEX calls the plan names and hands the answers to
:func:`attempt_outcome`, whose result it records, counts and logs as it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from app.deliver.retry import Decision, Verdict, decide, not_attempted
from app.deliver.vtex_client import VtexAnswer
from app.deliver.vtex_order import NotAnOrder, Package, package_of_invoice

STATE_OF = {Verdict.DELIVERED: "delivered", Verdict.RETRY: "retrying", Verdict.DEAD: "dead"}
NO_EVENTS = "the invoice has no events any more"

# -- what to do -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Postpone:
    """The account is paused (VTEX answered 429): put the delivery off, no attempt."""

    until: datetime


@dataclass(frozen=True)
class Skip:
    """Nothing can be sent: the invoice has no events, or VTEX is not configured for it."""

    reason: str
    nothing_to_send: bool


@dataclass(frozen=True)
class Send:
    """PUT the body; before the invoice's first PUT, check its package on VTEX first."""

    body: dict[str, Any]
    check_first: bool


AttemptPlan = Postpone | Skip | Send


def plan_attempt(
    *,
    body: dict[str, Any],
    unconfigured: str | None,
    paused_until: datetime | None,
    invoice_checked: bool,
    now: datetime,
) -> AttemptPlan:
    """What a claimed delivery does now.

    ``body`` is the invoice's tracking body (its whole history); ``unconfigured`` why VTEX
    cannot be reached for its account (None when it can); ``paused_until`` the account's
    429 pause; ``invoice_checked`` whether an earlier attempt checked the invoice's package.
    """
    if unconfigured is None and paused_until is not None and paused_until > now:
        return Postpone(paused_until)
    if not body["events"]:
        return Skip(NO_EVENTS, nothing_to_send=True)
    if unconfigured is not None:
        return Skip(unconfigured, nothing_to_send=False)
    return Send(body, check_first=not invoice_checked)


# -- the check before an invoice's first PUT -------------------------------------------------


@dataclass(frozen=True)
class CheckPassed:
    """The PUT may go; ``patched``: the relay gave the package its tracking number."""

    patched: bool

    @property
    def checked_by(self) -> str:
        return "partial invoice PATCH" if self.patched else "Get order"


@dataclass(frozen=True)
class CheckStopped:
    """A step of the check failed or found no invoice yet: its answer is the attempt's."""

    answer: VtexAnswer


@dataclass(frozen=True)
class NeedsTrackingNumber:
    """The invoice's package has no tracking number: PATCH one in, then PUT."""

    package: Package


@dataclass(frozen=True)
class NotAnOrderAnswer:
    """Get order answered something that is not VTEX's order (a proxy, a stand-in): nothing
    to check against, so the PUT goes as it did before the check existed."""


InvoiceCheck = CheckPassed | CheckStopped | NeedsTrackingNumber | NotAnOrderAnswer


def step_failed(answer: VtexAnswer, step: str) -> VtexAnswer:
    """A failed call before the PUT, its error naming the step (it is stored and logged)."""
    return replace(answer, error=f"{step}: {answer.error or 'failed'}")


def check_order(got: VtexAnswer, invoice_number: str) -> InvoiceCheck:
    """What Get order's answer says about the invoice's package (SPEC §2).

    An order without the invoice answers as a 404 (the slow lane: VTEX has not invoiced it
    yet); a package with a tracking number passes; one without needs the PATCH.
    """
    if not got.ok:
        return CheckStopped(step_failed(got, "Get order"))
    try:
        package = package_of_invoice(got.json, invoice_number)
    except NotAnOrder:
        return NotAnOrderAnswer()
    if package is None:
        error = f"Get order: the order has no invoice {invoice_number} yet"
        return CheckStopped(replace(got, status_code=404, error=error))
    if package.tracking_number:
        return CheckPassed(patched=False)
    return NeedsTrackingNumber(package)


def check_patched(patched: VtexAnswer) -> CheckPassed | CheckStopped:
    """The partial-invoice PATCH's answer: the PUT may go, or the attempt stops here."""
    if not patched.ok:
        return CheckStopped(step_failed(patched, "partial invoice PATCH"))
    return CheckPassed(patched=True)


# -- what the attempt leaves behind ----------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    """What to record, count and log after an attempt (or a skip)."""

    decision: Decision
    answer: VtexAnswer
    """VTEX's answer to the last call made; a skip's has no status and the reason as error."""
    sent: dict[str, Any] | None
    """The body VTEX received (None when no PUT went)."""
    receipt: dict[str, Any] | None
    """VTEX's receipt of a delivered PUT."""
    pause_account_until: datetime | None
    """A 429: hold every delivery to the account until then."""
    invoice_checked_by: str | None
    """The check before the first PUT passed: what showed the number (``CHECKED_BY``)."""
    metric_outcome: str | None
    """The ``outcome`` label of ``relay_deliveries_total``; None: not an attempt."""

    @property
    def state(self) -> str:
        return STATE_OF[self.decision.verdict]


@dataclass(frozen=True)
class AttemptContext:
    """The delivery's facts the decision needs."""

    attempt: int
    """1-based number of this attempt."""
    queued_at: datetime
    max_age: timedelta


def skipped_outcome(plan: Skip, now: datetime) -> AttemptOutcome:
    """A delivery that sent nothing: dead when there is nothing to send, else retried slowly
    (the relay's configuration is at fault, like a 401)."""
    answer = VtexAnswer(None, None, None, None, 0.0, plan.reason)
    return AttemptOutcome(
        decision=not_attempted(plan.reason, now, nothing_to_send=plan.nothing_to_send),
        answer=answer,
        sent=None,
        receipt=None,
        pause_account_until=None,
        invoice_checked_by=None,
        metric_outcome=None if plan.nothing_to_send else "not_configured",
    )


def attempt_outcome(
    plan: Send,
    check: CheckPassed | CheckStopped | None,
    put: VtexAnswer | None,
    context: AttemptContext,
    now: datetime,
    rng: random.Random,
) -> AttemptOutcome:
    """What a sent attempt leaves behind: ``check`` is the check's result when it ran
    (``plan.check_first``), ``put`` the PUT's answer (None when the check stopped it)."""
    if isinstance(check, CheckStopped):
        answer, sent = check.answer, None
    else:
        assert put is not None, "a PUT follows a passed check"
        answer, sent = put, plan.body
    decision = decide(
        attempt=context.attempt,
        status_code=answer.status_code,
        retry_after=answer.retry_after,
        queued_at=context.queued_at,
        now=now,
        max_age=context.max_age,
        rng=rng,
    )
    delivered = decision.verdict is Verdict.DELIVERED
    return AttemptOutcome(
        decision=decision,
        answer=answer,
        sent=sent,
        receipt=answer.json if delivered and isinstance(answer.json, dict) else None,
        pause_account_until=decision.next_attempt_at if answer.status_code == 429 else None,
        invoice_checked_by=check.checked_by if isinstance(check, CheckPassed) else None,
        metric_outcome=delivery_outcome(decision.verdict, answer.status_code),
    )


def delivery_outcome(verdict: Verdict, status_code: int | None) -> str:
    """The ``outcome`` label of an attempt that was made: 401/403 are VTEX refusing the key
    (an operator's problem, alerted on apart)."""
    if verdict is not Verdict.DEAD and status_code in (401, 403):
        return "credentials_refused"
    return STATE_OF[verdict]
