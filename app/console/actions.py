"""The console's actions (POST): sign in and out, and the admin's Retry, Send again, Retry
all, Replay, Replay all and Discard. Each action checks the session and its CSRF token
before it changes anything, answers 403 (a page, not a redirect) when refused, and
otherwise redirects to the page it came from with a notice."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.console.auth import (
    Visitor,
    forged,
    form_of,
    key_of,
    refusal,
    tokens_of,
    visitor_of,
)
from app.console.pages import common, sign_in_form
from app.console.render import page
from app.console.sessions import (
    COOKIE_NAME,
    SESSION_LIFETIME,
    cookie_value,
    new_session_id,
    role_for_token,
    session_hash,
)
from app.console.views import clean_field, delivery_filter, row_id
from app.console.wiring import ConsoleParts, Handler, console_parts, guarded
from app.ingest.intake import ReplayReport
from app.store import NotRetriable


def back_to(path: str, **notice: str | int) -> RedirectResponse:
    """303 to ``path`` (which may have a query already), with the notice to show there."""
    query = urlencode(notice)
    joint = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joint}{query}" if query else path, status_code=303)


def shipment_path(tracking_number: str) -> str:
    return f"/console/shipments/{quote(tracking_number, safe='')}"


def refused(request: Request, visitor: Visitor | None, why: str) -> Response:
    return page("error.html", 403, **common(request, visitor, "Forbidden"), detail=why)


def problem(
    request: Request, visitor: Visitor | None, status: int, title: str, why: str
) -> Response:
    return page("error.html", status, **common(request, visitor, title), detail=why)


@dataclass(frozen=True)
class Act:
    """An admin's action about to run: its request, the relay's parts, who, what was posted."""

    request: Request
    parts: ConsoleParts
    visitor: Visitor
    form: dict[str, str]

    def problem(self, status: int, title: str, why: str) -> Response:
        return problem(self.request, self.visitor, status, title, why)


def admin_action(action: Callable[[Act], Awaitable[Response]]) -> Handler:
    """A POST handler that runs ``action`` only for an admin's session with its CSRF token;
    anyone else gets 403 and nothing changes."""

    @guarded
    @functools.wraps(action)
    async def run(request: Request) -> Response:
        parts = console_parts(request)
        visitor = await visitor_of(request, parts.settings, parts.store)
        why = refusal(visitor)  # before the body is read: a stranger's is not
        if why is None and visitor is not None:
            form = await form_of(request)
            why = forged(visitor, form)
            if why is None:
                return await action(Act(request, parts, visitor, form))
        return refused(request, visitor, why or "Sign in first.")

    return run


@guarded
async def sign_in(request: Request) -> Response:
    parts = console_parts(request)
    settings = parts.settings
    form = await form_of(request)
    key = await key_of(settings, parts.store)
    if key is None:
        return sign_in_form(parts, request, "The console has no token to sign in with yet.")
    role = role_for_token(form.get("token", ""), *tokens_of(settings))
    if role is None:
        return sign_in_form(parts, request, "That token is neither the admin nor the viewer token.")
    now = datetime.now(UTC)
    session_id = new_session_id()
    expires_at = now + SESSION_LIFETIME
    await parts.store.start_session(session_hash(session_id), role.value, now, expires_at)
    answer = RedirectResponse("/console", status_code=303)
    answer.set_cookie(
        COOKIE_NAME,
        cookie_value(key, session_id, expires_at),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/console",
        secure=_behind_https(request),
        httponly=True,
        samesite="strict",
    )
    return answer


def _behind_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


@guarded
async def sign_out(request: Request) -> Response:
    parts = console_parts(request)
    visitor = await visitor_of(request, parts.settings, parts.store)
    if visitor is not None:
        why = forged(visitor, await form_of(request))
        if why is not None:
            return refused(request, visitor, why)
        await parts.store.end_session(session_hash(visitor.session_id))
    answer = back_to("/console", done="signed-out")
    answer.delete_cookie(COOKIE_NAME, path="/console", httponly=True, samesite="strict")
    return answer


@admin_action
async def send_again(act: Act) -> Response:
    parts = act.parts
    tracking_number = clean_field(act.form.get("tracking_number"))
    shipment = await parts.relay_store.get_shipment(tracking_number) if tracking_number else None
    if shipment is None or shipment.order_id is None or shipment.invoice_number is None:
        return act.problem(404, "Not found", "No registered shipment by that number.")
    await parts.relay_store.queue_delivery_now(
        shipment.order_id, shipment.invoice_number, shipment.account, datetime.now(UTC)
    )
    parts.wake_worker()
    return back_to(shipment_path(shipment.tracking_number), done="sent-again")


@admin_action
async def retry(act: Act) -> Response:
    delivery_id = row_id(act.request.path_params["delivery_id"]) or 0
    try:
        target = await act.parts.relay_store.retry_delivery(delivery_id, datetime.now(UTC))
    except NotRetriable:
        return act.problem(
            409,
            "Already delivered",
            f"Delivery {delivery_id} was delivered; new events queue a new one by themselves.",
        )
    if target is None:
        return act.problem(404, "Not found", f"No delivery {delivery_id}.")
    act.parts.wake_worker()
    back = clean_field(act.form.get("back"))
    return back_to(shipment_path(back) if back else "/console/deliveries", done="retried", n=target)


@admin_action
async def retry_all(act: Act) -> Response:
    """Without ``confirmed``: the confirmation, naming how many match (nothing changes).
    With it: every dead delivery matching the filter is put back in line."""
    parts = act.parts
    chosen = delivery_filter({**act.form, "state": "dead"}, parts.settings.vtex_account)
    if "confirmed" not in act.form:
        count = await parts.store.count_deliveries(chosen.wanted)
        return page(
            "confirm_retry_all.html",
            **common(act.request, act.visitor, "Retry dead deliveries", "Deliveries"),
            form=chosen,
            count=count,
        )
    retried = await parts.store.retry_all(chosen.wanted, datetime.now(UTC))
    if retried:
        parts.wake_worker()
    return back_to("/console/deliveries?" + urlencode(chosen.shown), done="retried-all", n=retried)


@admin_action
async def replay(act: Act) -> Response:
    webhook_id = clean_field(act.form.get("id"))
    report = await act.parts.intake.replay_quarantine(webhook_id=webhook_id) if webhook_id else None
    if report is None or report.replayed + report.still_quarantined == 0:
        return act.problem(404, "Not found", "No quarantined webhook by that id.")
    return replayed(report)


@admin_action
async def replay_all(act: Act) -> Response:
    return replayed(await act.parts.intake.replay_quarantine(clean_field(act.form.get("carrier"))))


def replayed(report: ReplayReport) -> Response:
    return back_to(
        "/console/quarantine", done="replayed", n=report.replayed, m=report.still_quarantined
    )


@admin_action
async def discard(act: Act) -> Response:
    webhook_id = clean_field(act.form.get("id"))
    store = act.parts.relay_store
    discarded = await store.discard_quarantined(webhook_id) if webhook_id else None
    if discarded is None:
        return act.problem(404, "Not found", "No quarantined webhook by that id.")
    return back_to("/console/quarantine", done="discarded")
