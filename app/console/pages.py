"""The console's pages (GET): each reads the store once and renders a template. Without a
session, ``/console`` shows the sign-in form and every other page sends the browser there."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.configured import carrier_readiness
from app.console.auth import Visitor, tokens_of, visitor_of
from app.console.render import page
from app.console.tally import write_tally
from app.console.views import (
    DELIVERY_STATES,
    PAGE_ROWS,
    account_rows,
    carrier_rows,
    chart,
    clean_field,
    delivery_filter,
    percentile,
    row_id,
)
from app.console.wiring import ConsoleParts, console_parts, guarded

NOTICES = {
    "signed-out": "You are signed out.",
    "retried": "Delivery {n} is back in line and due now.",
    "sent-again": "The invoice's whole history is queued for VTEX now.",
    "retried-all": "{n} dead deliveries put back in line.",
    "replayed": "Replayed: {n} read by today's adapters, {m} still quarantined.",
    "discarded": "The quarantined webhook was discarded.",
}


def notice_of(request: Request) -> str | None:
    """The sentence an action's redirect asked for (only numbers come from the URL)."""
    template = NOTICES.get(request.query_params.get("done", ""))
    if template is None:
        return None
    numbers = {name: str(row_id(request.query_params.get(name)) or 0) for name in ("n", "m")}
    return template.format(**numbers)


def common(
    request: Request, visitor: Visitor | None, title: str, active: str = ""
) -> dict[str, Any]:
    """What the layout of every page needs."""
    return {
        "visitor": visitor,
        "title": title,
        "active": active,
        "query": "",
        "notice": notice_of(request),
    }


def sign_in_form(parts: ConsoleParts, request: Request, error: str | None = None) -> Response:
    configured = any(tokens_of(parts.settings))
    return page(
        "sign_in.html",
        401 if error else 200,
        **common(request, None, "Sign in"),
        configured=configured,
        error=error,
    )


async def signed_in(request: Request) -> tuple[ConsoleParts, Visitor | None]:
    parts = console_parts(request)
    return parts, await visitor_of(request, parts.settings, parts.store)


TO_SIGN_IN = RedirectResponse("/console", status_code=303)


@guarded
async def overview(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return sign_in_form(parts, request)
    await write_tally(parts.tally, parts.store.add_counts)  # this relay's own, up to now
    now = datetime.now(UTC)
    facts = await parts.store.overview(now)
    readiness = {
        name: carrier_readiness(parts.settings, name, carrier)
        for name, carrier in parts.carriers.items()
    }
    return page(
        "overview.html",
        **common(request, visitor, "Overview", "Overview"),
        facts=facts,
        chart=chart(facts.webhooks_per_minute, facts.deliveries_per_minute, now),
        p50=percentile(facts.latency_buckets, 0.5),
        p95=percentile(facts.latency_buckets, 0.95),
        carriers=carrier_rows(readiness, facts.carriers_today, facts.last_accepted),
    )


@guarded
async def search(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    text = clean_field(request.query_params.get("q"))
    result = await parts.store.search(text) if text else None
    context = common(request, visitor, "Search")
    context["query"] = text or ""
    return page("search.html", **context, result=result)


@guarded
async def shipment(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    tracking_number = request.path_params["tracking_number"]
    found = await parts.store.shipment(tracking_number) if clean_field(tracking_number) else None
    if found is None:
        return missing(request, visitor, f"No shipment {tracking_number!r} is known to the relay.")
    url = found.shipment.tracking_url or ""
    return page(
        "shipment.html",
        **common(request, visitor, f"Shipment {tracking_number}"),
        page=found,
        last_body=(
            json.dumps(found.shipment.last_body, indent=2, ensure_ascii=False)
            if found.shipment.last_body
            else None
        ),
        # A link only to a web page: never javascript: or data: from a stranger's payload.
        tracking_link=url if url.lower().startswith(("https://", "http://")) else None,
    )


@guarded
async def webhook(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    webhook_id = request.path_params["webhook_id"]
    found = await parts.store.webhook(webhook_id) if clean_field(webhook_id) else None
    if found is None:
        return missing(request, visitor, f"No webhook {webhook_id!r} is kept by the relay.")
    return page("webhook.html", **common(request, visitor, f"Webhook {webhook_id}"), webhook=found)


@guarded
async def deliveries(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    form = delivery_filter(request.query_params, parts.settings.vtex_account)
    before = row_id(request.query_params.get("before"))
    found = await parts.store.deliveries(form.wanted, before, PAGE_ROWS)
    return page(
        "deliveries.html",
        **common(request, visitor, "Deliveries", "Deliveries"),
        form=form,
        page=found,
        before=before,
        states=DELIVERY_STATES,
    )


@guarded
async def quarantine(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    carrier = clean_field(request.query_params.get("carrier"))
    after = clean_field(request.query_params.get("after"))
    found = await parts.store.quarantine(carrier, after, PAGE_ROWS)
    return page(
        "quarantine.html",
        **common(request, visitor, "Quarantine", "Quarantine"),
        page=found,
        carrier=carrier,
        after=after,
        carriers=sorted(parts.carriers),
    )


@guarded
async def accounts(request: Request) -> Response:
    parts, visitor = await signed_in(request)
    if visitor is None:
        return TO_SIGN_IN
    settings = parts.settings
    await write_tally(parts.tally, parts.store.add_counts)
    facts = await parts.store.accounts(datetime.now(UTC))
    rows = account_rows(
        settings.vtex_account,
        sorted(settings.vtex_accounts),
        lambda name: settings.vtex_credentials(name or None) is not None,
        facts,
    )
    return page("accounts.html", **common(request, visitor, "Accounts", "Accounts"), accounts=rows)


@guarded
async def not_found(request: Request) -> Response:
    _parts, visitor = await signed_in(request)
    return missing(request, visitor, f"The console has no page {request.url.path!r}.")


def missing(request: Request, visitor: Visitor | None, detail: str) -> Response:
    return page("error.html", 404, **common(request, visitor, "Not found"), detail=detail)
