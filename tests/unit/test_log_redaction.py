"""Secrets carried in URLs (Shippo's ``?token=``) never reach the access log."""

from __future__ import annotations

import pytest

from app.logs import redact_query_secrets


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/webhooks/shippo?token=s3cr3t", "/webhooks/shippo?token=[redacted]"),
        ("/webhooks/shippo?a=1&TOKEN=s3cr3t&b=2", "/webhooks/shippo?a=1&TOKEN=[redacted]&b=2"),
        ("/webhooks/shippo?%74oken=s3cr3t", "/webhooks/shippo?%74oken=[redacted]"),
        ("/webhooks/shippo?token=a&token=b", "/webhooks/shippo?token=[redacted]&token=[redacted]"),
        (
            "/webhooks/ups/token?client_secret=s3cr3t",
            "/webhooks/ups/token?client_secret=[redacted]",
        ),
        ("/admin/deliveries?state=dead&limit=5", "/admin/deliveries?state=dead&limit=5"),
        ("/webhooks/shippo?tokens=1", "/webhooks/shippo?tokens=1"),
    ],
)
def test_secret_query_parameters_are_redacted_and_others_kept(path: str, logged: str) -> None:
    assert redact_query_secrets(path) == logged
