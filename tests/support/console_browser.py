"""Driving the console in a browser: a relay with a VTEX stand-in, signing in, waiting for a
page to show something, and the screenshots the README shows.

``RELAY_CONSOLE_SCREENSHOTS=docs/console`` makes :func:`screenshot` also write its PNG there
(the README's pictures are refreshed by running the browser tests with it set).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Response

from tests.support.relay_process import RelayProcess
from tests.support.signing import melhor_envio_headers, standard_webhooks_headers

ADMIN = "console-admin-token"
VIEWER = "console-viewer-token"
GENERIC_SECRET = "generic-console-secret"
MELHOR_ENVIO_SECRET = "melhor-envio-console-secret"
SCREENSHOTS_VARIABLE = "RELAY_CONSOLE_SCREENSHOTS"
SAFETY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def relay_env(vtex_url: str) -> dict[str, str]:
    return {
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_VIEWER_TOKEN": VIEWER,
        "RELAY_VTEX_BASE_URL": vtex_url,
        "RELAY_VTEX_ACCOUNT": "consolestore",
        "RELAY_VTEX_APP_KEY": "vtexappkey-console",
        "RELAY_VTEX_APP_TOKEN": "console-app-token",
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
        "RELAY_CARRIERS__MELHOR_ENVIO__SECRET": MELHOR_ENVIO_SECRET,
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
        # A delivery VTEX refuses (400) is dead at its first attempt; a retry starts afresh.
        "RELAY_MAX_DELIVERY_AGE": "50ms",
        "RELAY_SHUTDOWN_GRACE": "0s",
    }


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def generic_payload(
    tracking: str, order_id: str, invoice: str, descriptions: list[str]
) -> dict[str, Any]:
    return {
        "trackingNumber": tracking,
        "orderId": order_id,
        "invoiceNumber": invoice,
        "events": [
            {
                "time": f"2026-11-2{i}T10:00:00-03:00",
                "status": "in_transit",
                "description": description,
                "city": "Recife",
                "state": "PE",
            }
            for i, description in enumerate(descriptions, start=1)
        ],
    }


def post_generic(relay: RelayProcess, payload: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    return relay.client.post(
        "/webhooks/generic", content=body, headers=standard_webhooks_headers(GENERIC_SECRET, body)
    )


def post_melhor_envio(relay: RelayProcess, label: str, carrier_code: str) -> httpx.Response:
    payload = {
        "event": "order.posted",
        "data": {
            "id": label,
            "protocol": f"ORD-{label[-6:]}",
            "status": "posted",
            "tracking": carrier_code,
            "created_at": "2026-11-20 09:00:00",
            "posted_at": "2026-11-21 14:30:00",
            "updated_at": "2026-11-21 14:30:00",
        },
    }
    body = json.dumps(payload).encode()
    return relay.client.post(
        "/webhooks/melhor_envio",
        content=body,
        headers=melhor_envio_headers(MELHOR_ENVIO_SECRET, body),
    )


def sign_in(page: Page, relay: RelayProcess, token: str) -> None:
    page.goto(f"{relay.url}/console")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview", level=1).wait_for()


def reload_until(page: Page, shows: Callable[[Page], bool], what: str, timeout: float = 20) -> None:
    """Reload ``page`` until ``shows(page)`` (the console is plain HTML: no live refresh)."""
    deadline = time.monotonic() + timeout
    while not shows(page):
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}:\n{page.inner_text('main')}")
        time.sleep(0.3)
        page.reload()


def watch_headers(page: Page, relay: RelayProcess) -> list[tuple[str, dict[str, str]]]:
    """Every answer of the relay the page gets from now on, with its headers."""
    seen: list[tuple[str, dict[str, str]]] = []

    def note(response: Response) -> None:
        if response.url.startswith(relay.url):
            seen.append((response.url, response.all_headers()))

    page.on("response", note)
    return seen


def lacking_safety_headers(seen: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The answers without the console's safety headers (SPEC §10)."""
    lacking = []
    for url, headers in seen:
        policy = headers.get("content-security-policy", "")
        script_sources = [part for part in policy.split(";") if "script-src" in part]
        if (
            any(headers.get(name) != value for name, value in SAFETY_HEADERS.items())
            or not script_sources
            or "unsafe-inline" in policy
        ):
            lacking.append(url)
    return lacking


README_SHOTS = frozenset({"overview", "deliveries", "quarantine", "shipment-375"})
"""The screenshots the README shows (docs/console/<name>.png)."""


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """The page as a PNG, in ``tmp_path`` and, when asked for and the README shows it, in
    the README's folder."""
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    folder = os.environ.get(SCREENSHOTS_VARIABLE)
    if folder and name in README_SHOTS:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / shot.name).write_bytes(shot.read_bytes())
    return shot
