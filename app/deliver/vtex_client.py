"""VTEX OMS calls (tracking PUT, Get order, invoice PATCH, orders hook configuration) over a
shared ``httpx.AsyncClient`` (swap it at the transport)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from app.errors import InvalidJson
from app.json_reader import read_json
from app.settings import VtexTarget

RETRY_AFTER_CAP = timedelta(days=1)


@dataclass(frozen=True)
class VtexAnswer:
    """What came back from one request; ``status_code`` is None when nothing did."""

    status_code: int | None
    body: str | None
    json: Any
    retry_after: timedelta | None
    duration_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        """VTEX answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


def order_path(order_id: str) -> str:
    return f"/api/oms/pvt/orders/{quote(order_id, safe='')}"


def tracking_path(order_id: str, invoice_number: str) -> str:
    return f"{order_path(order_id)}/invoice/{quote(invoice_number, safe='')}/tracking"


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date, capped at a day; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(timedelta(seconds=min(int(value), 10**9)), RETRY_AFTER_CAP)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when - now, timedelta(0)), RETRY_AFTER_CAP)


class VtexClient:
    """Sends tracking bodies; never raises for HTTP or network failures, it reports them."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def put_tracking(
        self, target: VtexTarget, order_id: str, invoice_number: str, body: dict[str, Any]
    ) -> VtexAnswer:
        return await self.call("PUT", target, tracking_path(order_id, invoice_number), body)

    async def get_order(self, target: VtexTarget, order_id: str) -> VtexAnswer:
        """Get order: ``GET /api/oms/pvt/orders/{orderId}``."""
        return await self.call("GET", target, order_path(order_id))

    async def patch_invoice(
        self, target: VtexTarget, order_id: str, invoice_number: str, body: dict[str, Any]
    ) -> VtexAnswer:
        """Update order's partial invoice: ``PATCH .../orders/{orderId}/invoice/{n}``."""
        path = f"{order_path(order_id)}/invoice/{quote(invoice_number, safe='')}"
        return await self.call("PATCH", target, path, body)

    async def call(
        self, method: str, target: VtexTarget, path: str, body: dict[str, Any] | None = None
    ) -> VtexAnswer:
        """One request with the VTEX headers; failures are reported, never raised."""
        started = time.perf_counter()
        headers = {
            "X-VTEX-API-AppKey": target.app_key,
            "X-VTEX-API-AppToken": target.app_token,
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, target.base_url + path, json=body, headers=headers
            )
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            # Their messages quote the offending header value: the credentials.
            return _no_answer(started, "the VTEX credentials are not valid HTTP header values")
        except httpx.HTTPError as error:
            return _no_answer(started, f"{type(error).__name__}: {error}"[:500])
        duration_ms = (time.perf_counter() - started) * 1000
        try:
            parsed = read_json(response.content)
        except InvalidJson:
            parsed = None
        return VtexAnswer(
            status_code=response.status_code,
            body=response.text,
            json=parsed,
            retry_after=parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC)),
            duration_ms=duration_ms,
            error=None if response.is_success else f"HTTP {response.status_code}",
        )


def _no_answer(started: float, error: str) -> VtexAnswer:
    return VtexAnswer(
        status_code=None,
        body=None,
        json=None,
        retry_after=None,
        duration_ms=(time.perf_counter() - started) * 1000,
        error=error,
    )
