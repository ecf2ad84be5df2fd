"""Metric labels and request ids: pure decisions of the observability layer."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.api.request_log import request_id_from
from app.deliver.plan import delivery_outcome
from app.deliver.retry import Verdict
from app.errors import (
    BadRequest,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from app.metrics import RelayMetrics, webhook_outcome
from app.store import QueueSnapshot, StoreUnavailable


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "accepted"),
        (Unauthorized("bad signature"), "unauthorized"),
        (NotFound("no carrier"), "unknown_carrier"),
        (PayloadTooLarge("big"), "too_large"),
        (UnsupportedMediaType("xml"), "unsupported_media_type"),
        (Unprocessable("unreadable"), "quarantined"),
        (StoreUnavailable("database down"), "unavailable"),
        (BadRequest("client left"), "bad_request"),
        (OAuthError("invalid_request", "no grant"), "bad_request"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_each_webhook_answer_has_its_outcome_label(error: Exception | None, outcome: str) -> None:
    assert webhook_outcome(error) == outcome


@pytest.mark.parametrize(
    ("verdict", "status_code", "outcome"),
    [
        (Verdict.DELIVERED, 200, "delivered"),
        (Verdict.RETRY, 503, "retrying"),
        (Verdict.RETRY, None, "retrying"),
        (Verdict.RETRY, 401, "credentials_refused"),
        (Verdict.RETRY, 403, "credentials_refused"),
        (Verdict.DEAD, 404, "dead"),
    ],
)
def test_each_delivery_attempt_has_its_outcome_label(
    verdict: Verdict, status_code: int | None, outcome: str
) -> None:
    assert delivery_outcome(verdict, status_code) == outcome


def test_an_unknown_carrier_name_never_becomes_a_label_value() -> None:
    metrics = RelayMetrics()
    metrics.webhook_answered("carrier-from-the-url-" * 3, NotFound("no such carrier"))

    text = metrics.exposition(None).decode()

    assert "carrier-from-the-url" not in text
    assert 'relay_webhooks_total{carrier="",outcome="unknown_carrier"} 1.0' in text


def test_the_exposition_carries_the_queue_as_the_database_holds_it() -> None:
    metrics = RelayMetrics()
    metrics.exposition(
        QueueSnapshot(backlog=7, oldest_pending_age_seconds=42.5, dead=2, quarantined=3),
        database_bytes=4_096_000,
    )
    # A scrape while the database is away keeps the last values read.
    text = metrics.exposition(None).decode()

    gauges = {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.type == "gauge"
    }
    assert gauges == {
        "relay_backlog_deliveries": 7,
        "relay_oldest_pending_age_seconds": 42.5,
        "relay_dead_deliveries": 2,
        "relay_quarantined_webhooks": 3,
        "relay_database_bytes": 4_096_000,
    }


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"req-7f3a9c", True),
        (b"01HF8Z2K9Q7V4X:edge.1", True),
        (b"", False),
        (b"x" * 65, False),
        (b"id with spaces", False),
        (b'{"json": 1}', False),
    ],
)
def test_a_callers_request_id_is_kept_only_when_it_looks_like_one(sent: bytes, kept: bool) -> None:
    request_id = request_id_from([(b"content-type", b"application/json"), (b"x-request-id", sent)])

    assert (request_id == sent.decode()) is kept
    assert 1 <= len(request_id) <= 64


def test_each_request_without_an_id_gets_a_fresh_one() -> None:
    assert request_id_from([]) != request_id_from([])
