"""What the console's pages show, as pure functions: the filter a query string asks for,
the Overview's chart and latency percentiles, and how times and ages read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.metrics import LATENCY_BUCKETS
from app.store import MAX_ROW_ID
from app.store.console import AccountFacts, CountTotal, DeliveryFilter

PAGE_ROWS = 25
DELIVERY_STATES = ("pending", "retrying", "delivered", "dead")
FIELD_MAX = 128
"""The longest value a search or filter field takes (the columns' width)."""


def when(value: datetime | None) -> str:
    """A time as every page shows it: UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(count: int) -> str:
    """Bytes as a person reads them: ``812 B``, ``4.2 MB``, ``1.3 GB`` (powers of 1000)."""
    value = float(max(count, 0))
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def age(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h 5 min``, ``2 d 4 h``."""
    whole = int(max(seconds, 0))
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes} min"
    if whole < 86400:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def clean_field(value: str | None) -> str | None:
    """A typed value as the store may be asked for it: stripped, printable, not too long;
    None for nothing (or for what no row can hold)."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > FIELD_MAX or not value.isprintable():
        return None
    return value


@dataclass(frozen=True)
class FilterForm:
    """The Deliveries filter as typed (shown back in the form) and as the store takes it."""

    shown: dict[str, str]
    wanted: DeliveryFilter
    problems: list[str]


def delivery_filter(query: Mapping[str, str], default_account: str | None) -> FilterForm:
    """The filter a query string (or a form) asks for; a value that cannot be used is left
    out and named in ``problems`` instead of failing the page."""
    shown: dict[str, str] = {}
    problems: list[str] = []
    state = clean_field(query.get("state"))
    if state is not None and state not in DELIVERY_STATES:
        problems.append(f"state must be one of {', '.join(DELIVERY_STATES)}")
        state = None
    account = clean_field(query.get("account"))
    carrier = clean_field(query.get("carrier"))
    status_code = None
    typed_status = clean_field(query.get("status"))
    if typed_status is not None:
        if typed_status.isascii() and typed_status.isdigit() and 100 <= int(typed_status) <= 599:
            status_code = int(typed_status)
        else:
            problems.append("status must be an HTTP status code, like 400")
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        typed = clean_field(query.get(name))
        times[name] = None
        if typed is not None:
            parsed = parse_time(typed)
            if parsed is None:
                problems.append(f"{name} must be a time like 2026-12-05T09:12 (UTC)")
            times[name] = parsed
    for name, value in (
        ("state", state),
        ("account", account),
        ("carrier", carrier),
        ("status", None if status_code is None else str(status_code)),
        ("since", clean_field(query.get("since")) if times["since"] else None),
        ("until", clean_field(query.get("until")) if times["until"] else None),
    ):
        if value is not None:
            shown[name] = value
    wanted = DeliveryFilter(
        state=state,
        account=account,
        account_is_default=account is not None and account == default_account,
        carrier=carrier,
        status_code=status_code,
        since=times["since"],
        until=times["until"],
    )
    return FilterForm(shown, wanted, problems)


def parse_time(typed: str) -> datetime | None:
    """``2026-12-05``, ``2026-12-05T09:12`` or with seconds or an offset; UTC when none."""
    try:
        parsed = datetime.fromisoformat(typed.replace(" ", "T", 1))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one past year 9999 in UTC
        return None


def row_id(value: str | None) -> int | None:
    """An id a row may have (ASCII digits, up to the largest id), or None."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value) if int(value) <= MAX_ROW_ID else None


@dataclass(frozen=True)
class Chart:
    """A 24 h per-minute chart as the server draws it in SVG."""

    width: int
    height: int
    webhooks: str
    deliveries: str
    top: int
    total_webhooks: int
    total_deliveries: int


CHART_WIDTH = 1440
CHART_HEIGHT = 120


def chart(
    webhooks: Mapping[datetime, int], deliveries: Mapping[datetime, int], now: datetime
) -> Chart:
    """Polyline points of both series over the 1,440 minutes before ``now``."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_WIDTH - 1)
    top = max([*webhooks.values(), *deliveries.values(), 1])

    def points(series: Mapping[datetime, int]) -> str:
        by_offset = {
            int((minute - start).total_seconds() // 60): count for minute, count in series.items()
        }
        return " ".join(
            f"{x},{CHART_HEIGHT - round(by_offset.get(x, 0) * CHART_HEIGHT / top, 1)}"
            for x in range(CHART_WIDTH)
        )

    return Chart(
        CHART_WIDTH,
        CHART_HEIGHT,
        points(webhooks),
        points(deliveries),
        top,
        sum(webhooks.values()),
        sum(deliveries.values()),
    )


def percentile(buckets: Mapping[str, int], fraction: float) -> str:
    """The latency bucket under which ``fraction`` of deliveries fell, as ``≤ 5 s``."""
    total = sum(buckets.values())
    if total == 0:
        return "—"
    ordered = sorted(buckets.items(), key=lambda item: _bound(item[0]))
    running = 0
    for bound, count in ordered:
        running += count
        if running >= fraction * total:
            return f"> {age(LATENCY_BUCKETS[-1])}" if bound == "inf" else f"≤ {_seconds(bound)}"
    return "—"


def _bound(label: str) -> float:
    return float("inf") if label == "inf" else float(label)


def _seconds(label: str) -> str:
    value = float(label)
    return f"{value:g} s" if value < 60 else age(value)


@dataclass(frozen=True)
class CarrierRow:
    name: str
    readiness: str
    last_accepted: datetime | None
    accepted: int
    refused: int
    quarantined: int
    refused_last: datetime | None


def carrier_rows(
    readiness: Mapping[str, str], today: list[CountTotal], last_accepted: Mapping[str, datetime]
) -> list[CarrierRow]:
    """The Overview's carrier table: every carrier the relay takes, its last 24 h."""
    counts: dict[tuple[str, str], CountTotal] = {(t.name, t.outcome): t for t in today}

    def count(name: str, outcome: str) -> int:
        found = counts.get((name, outcome))
        return found.count if found else 0

    return [
        CarrierRow(
            name,
            readiness[name],
            last_accepted.get(name),
            count(name, "accepted"),
            count(name, "unauthorized"),
            count(name, "quarantined"),
            refused.last_at if (refused := counts.get((name, "unauthorized"))) else None,
        )
        for name in sorted(readiness)
    ]


@dataclass(frozen=True)
class AccountRow:
    name: str
    default: bool
    credentials: bool
    paused_until: datetime | None
    refused_status: str | None
    refused_at: datetime | None
    delivered: int
    failed: int


FAILED_OUTCOMES = ("retrying", "dead", "credentials_refused", "not_configured")


def account_rows(
    default_account: str | None,
    named_accounts: list[str],
    has_credentials: Callable[[str], bool],
    facts: AccountFacts,
) -> list[AccountRow]:
    """The Accounts page: configured accounts and those deliveries went to."""
    default = default_account or ""
    paused = {(name or default): until for name, until in facts.paused.items()}
    names = {*named_accounts, *(t.name for t in facts.ever), *paused}
    if default_account:
        names.add(default_account)
    rows = []
    for name in sorted(names):
        refusals = [t for t in facts.ever if t.name == name and t.outcome in ("401", "403")]
        last_refusal = max(refusals, key=lambda t: t.last_at, default=None)
        today = [t for t in facts.today if t.name == name]
        rows.append(
            AccountRow(
                name=name or "(default, unnamed)",
                default=name == default,
                credentials=has_credentials(name),
                paused_until=paused.get(name),
                refused_status=last_refusal.outcome if last_refusal else None,
                refused_at=last_refusal.last_at if last_refusal else None,
                delivered=sum(t.count for t in today if t.outcome == "delivered"),
                failed=sum(t.count for t in today if t.outcome in FAILED_OUTCOMES),
            )
        )
    return rows
