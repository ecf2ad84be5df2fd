"""``/docs`` in a real browser: Swagger UI renders the relay's API from the relay's own files,
with no Content-Security-Policy violation and no request to another origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support.relay_process import RelayProcess

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_the_api_under_the_pages_policy(
    browser: Browser, tmp_path: Path
) -> None:
    with RelayProcess(tmp_path, {"RELAY_WORKER": "false"}) as relay:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        violations: list[str] = []
        requested: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.on("request", lambda request: requested.append(request.url))

        page.goto(f"{relay.url}/docs")
        page.locator(".opblock").first.wait_for(timeout=15_000)

        assert page.get_by_text("OAS 3.1").is_visible()
        assert page.locator(".opblock-summary-path", has_text="/webhooks/{carrier}").count() == 1
        assert page.locator(".opblock").count() >= 10
        assert violations == []
        assert requested
        assert all(url.startswith(relay.url) for url in requested), requested
        # Inline script, which the policy forbids, would not run: the page's own cannot.
        ran = page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.injected = 1'; document.body.append(s);
                       return window.injected === 1; }"""
        )
        assert ran is False
        page.close()
