"""Prometheus metrics (SPEC §9): one registry per app, low-cardinality labels only.

Counters move as things happen (webhooks, events, delivery attempts); the gauges about the
queue (backlog, oldest pending age, dead, quarantined) are read from the database at each
scrape, so every replica reports the shared truth and a restart loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from app.console.tally import MinuteTally
from app.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RelayError,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from app.store import QueueSnapshot, StoreUnavailable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds from an event's arrival to VTEX's acceptance: the coalescing window (1 s) and
# retries put most of the mass between 1 s and minutes.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600)

_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (Unauthorized, "unauthorized"),
    (NotFound, "unknown_carrier"),
    (PayloadTooLarge, "too_large"),
    (UnsupportedMediaType, "unsupported_media_type"),
    (Unprocessable, "quarantined"),
    (Unavailable, "unavailable"),
    (StoreUnavailable, "unavailable"),
    (BadRequest, "bad_request"),
)


TALLIED_WEBHOOK_OUTCOMES = frozenset({"accepted", "unauthorized", "quarantined"})
"""What the console counts per carrier and minute: one row per outcome, so a flood of
unsigned requests (401) costs one row a carrier a minute; a quarantined webhook was signed."""


def latency_bucket(seconds: float) -> str:
    """The smallest of :data:`LATENCY_BUCKETS` at or above ``seconds`` ("inf" past them)."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "inf"


def webhook_outcome(error: Exception | None) -> str:
    """The ``outcome`` label of a webhook answer: ``accepted`` or why it was refused."""
    if error is None:
        return "accepted"
    for kind, outcome in _OUTCOMES:
        if isinstance(error, kind):
            return outcome
    return "bad_request" if isinstance(error, RelayError) else "error"


class RelayMetrics:
    """Every metric the relay exposes at ``GET /metrics``."""

    def __init__(self) -> None:
        # No ``*_created`` series: they double the exposition and no alert reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.tally = MinuteTally()
        """The console's per-minute counts, until the next flush to the database."""
        self.webhooks = Counter(
            "relay_webhooks",
            "Webhooks received, by carrier and outcome.",
            ["carrier", "outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "relay_events",
            "Tracking events in accepted webhooks: new ones, and duplicates of known ones.",
            ["carrier", "kind"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "relay_deliveries",
            "Delivery attempts to VTEX, by outcome and HTTP status code ('none': no answer).",
            ["outcome", "status_code"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "relay_delivery_latency_seconds",
            "From an invoice's new event arriving to VTEX accepting the PUT that carried it.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backlog = Gauge(
            "relay_backlog_deliveries",
            "Deliveries waiting to be sent or retried (pending or retrying).",
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "relay_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting (0 when none).",
            registry=self.registry,
        )
        self.dead = Gauge(
            "relay_dead_deliveries",
            "Deliveries given up after RELAY_MAX_DELIVERY_AGE (retry them from the admin API).",
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "relay_quarantined_webhooks",
            "Signed webhooks their adapter could not read, kept for replay.",
            registry=self.registry,
        )

        self.database_bytes = Gauge(
            "relay_database_bytes",
            "Size of the database on disk (SQLite: the file's pages; PostgreSQL: the "
            "database). Alert before the volume fills; see RELAY_RETENTION.",
            registry=self.registry,
        )

    def webhook_answered(self, carrier: str, error: Exception | None) -> None:
        outcome = webhook_outcome(error)
        # An unknown carrier's name comes from the URL: not a label value.
        if outcome == "unknown_carrier":
            self.webhooks.labels("", outcome).inc()
            return
        self.webhooks.labels(carrier, outcome).inc()
        if outcome in TALLIED_WEBHOOK_OUTCOMES:
            self.tally.note("carrier", carrier, outcome, datetime.now(UTC))

    def events_stored(self, carrier: str, new: int, duplicates: int) -> None:
        if new:
            self.events.labels(carrier, "new").inc(new)
        if duplicates:
            self.events.labels(carrier, "duplicate").inc(duplicates)

    def delivery_attempted(
        self,
        outcome: str,
        status_code: int | None,
        latency_seconds: float | None = None,
        account: str = "",
    ) -> None:
        """``account``: the VTEX account's name, as the console's Accounts page lists it."""
        self.deliveries.labels(outcome, str(status_code) if status_code else "none").inc()
        now = datetime.now(UTC)
        self.tally.note("account", account, outcome, now)
        if status_code in (401, 403):
            self.tally.note("account", account, str(status_code), now)
        if latency_seconds is not None:
            self.delivery_latency.observe(max(latency_seconds, 0.0))
            self.tally.note("latency", latency_bucket(latency_seconds), "delivered", now)

    def exposition(self, queue: QueueSnapshot | None, database_bytes: int | None = None) -> bytes:
        """The text exposition; gauges read from the database are left as last read when
        given None (the database did not answer)."""
        if database_bytes is not None:
            self.database_bytes.set(database_bytes)
        if queue is not None:
            self.backlog.set(queue.backlog)
            self.oldest_pending_age.set(queue.oldest_pending_age_seconds)
            self.dead.set(queue.dead)
            self.quarantined.set(queue.quarantined)
        return generate_latest(self.registry)
