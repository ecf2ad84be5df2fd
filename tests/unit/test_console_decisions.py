"""The console's pure decisions: tokens and roles, the session cookie and CSRF token, the
Deliveries filter a query asks for, the Overview's chart and percentiles, its tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.console.sessions import (
    Role,
    cookie_value,
    csrf_holds,
    csrf_token,
    role_for_token,
    session_from_cookie,
    signing_key,
)
from app.console.tally import MinuteTally, minute_of
from app.console.views import (
    account_rows,
    age,
    carrier_rows,
    chart,
    delivery_filter,
    percentile,
    row_id,
    size,
    when,
)
from app.errors import NotFound, PayloadTooLarge, Unauthorized
from app.metrics import RelayMetrics
from app.store.console import AccountFacts, CountTotal

NOW = datetime(2026, 12, 5, 9, 12, 30, tzinfo=UTC)
SECRET = bytes(range(32))
KEY = signing_key("admin-token", "viewer-token", SECRET)


def test_a_token_signs_in_as_its_role_and_nothing_else_does() -> None:
    assert role_for_token("admin-token", "admin-token", "viewer-token") is Role.ADMIN
    assert role_for_token(" viewer-token\n", "admin-token", "viewer-token") is Role.VIEWER
    assert role_for_token("viewer-token", "admin-token", None) is None
    assert role_for_token("", "admin-token", "viewer-token") is None
    assert role_for_token("admin-token ", None, "viewer-token") is None
    assert role_for_token("ADMIN-TOKEN", "admin-token", "viewer-token") is None


def test_without_any_token_nothing_is_signed() -> None:
    assert signing_key(None, None, SECRET) is None
    assert signing_key("", None, SECRET) is None
    assert session_from_cookie(None, "anything", NOW) is None


def test_a_cookie_holds_until_it_expires_and_only_with_its_signature() -> None:
    assert KEY is not None
    value = cookie_value(KEY, "session-1", NOW + timedelta(hours=12))

    assert session_from_cookie(KEY, value, NOW) == "session-1"
    assert session_from_cookie(KEY, value, NOW + timedelta(hours=12)) is None
    assert session_from_cookie(signing_key("other", "viewer-token", SECRET), value, NOW) is None
    another_database = signing_key("admin-token", "viewer-token", bytes(32))
    assert session_from_cookie(another_database, value, NOW) is None
    payload, _, signature = value.rpartition(".")
    session_id, _, expiry = payload.partition(".")
    later = f"{session_id}.{int(expiry) + 3600}.{signature}"  # a longer life, same signature
    assert session_from_cookie(KEY, later, NOW + timedelta(hours=12)) is None
    assert session_from_cookie(KEY, "session-1", NOW) is None


@given(st.text(max_size=300))
def test_any_cookie_text_is_a_session_or_none(text: str) -> None:
    assert KEY is not None
    assert session_from_cookie(KEY, text, NOW) is None


def test_the_csrf_token_belongs_to_its_session() -> None:
    assert KEY is not None
    token = csrf_token(KEY, "session-1")
    assert csrf_holds(KEY, "session-1", token)
    assert not csrf_holds(KEY, "session-2", token)
    assert not csrf_holds(KEY, "session-1", None)
    assert not csrf_holds(KEY, "session-1", "")
    assert not csrf_holds(KEY, "session-1", "é" + token)


def test_a_filter_takes_what_it_can_use_and_names_what_it_cannot() -> None:
    form = delivery_filter(
        {
            "state": "dead",
            "account": " shop ",
            "carrier": "dhl",
            "status": "400",
            "since": "2026-12-05T09:00",
            "until": "tomorrow",
        },
        default_account="shop",
    )

    assert form.wanted.state == "dead"
    assert (form.wanted.account, form.wanted.account_is_default) == ("shop", True)
    assert (form.wanted.carrier, form.wanted.status_code) == ("dhl", 400)
    assert form.wanted.since == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert form.wanted.until is None
    assert form.problems == ["until must be a time like 2026-12-05T09:12 (UTC)"]
    assert "until" not in form.shown
    assert form.shown["since"] == "2026-12-05T09:00"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"state": "lost"}, "state must be one of"),
        ({"status": "4000"}, "status must be an HTTP status code"),
        ({"status": "abc"}, "status must be an HTTP status code"),
        ({"since": "9999-12-31T23:59-01:00"}, "since must be a time"),
        ({"until": "0001-01-01T00:00+01:00"}, "until must be a time"),
    ],
)
def test_a_value_no_delivery_can_have_is_a_problem_not_a_filter(
    query: dict[str, str], problem: str
) -> None:
    form = delivery_filter(query, None)
    assert form.wanted.state is None
    assert form.wanted.status_code is None
    assert form.wanted.since is None
    assert form.wanted.until is None
    assert [p for p in form.problems if p.startswith(problem)]


@given(st.dictionaries(st.sampled_from(["state", "account", "status", "since"]), st.text()))
def test_any_query_gives_a_filter(query: dict[str, str]) -> None:
    form = delivery_filter(query, "shop")
    for value in (form.wanted.account, form.wanted.carrier):
        assert value is None or (value.isprintable() and 0 < len(value) <= 128)


def test_a_keyset_is_an_id_a_row_may_have() -> None:
    assert row_id("42") == 42
    assert [row_id(v) for v in (None, "", "-1", "1.5", "9223372036854775808", "٣")] == [None] * 6


def test_the_chart_puts_each_minute_at_its_place_over_24_hours() -> None:
    drawn = chart(
        {minute_of(NOW): 10, minute_of(NOW) - timedelta(hours=23, minutes=59): 5},
        {minute_of(NOW) - timedelta(hours=1): 20},
        NOW,
    )
    webhook_points = drawn.webhooks.split()
    assert len(webhook_points) == 1440
    assert webhook_points[-1] == "1439,60.0"  # 10 of a peak of 20: half height
    assert webhook_points[0] == "0,90.0"
    assert drawn.deliveries.split()[1379] == "1379,0.0"
    assert (drawn.top, drawn.total_webhooks, drawn.total_deliveries) == (20, 15, 20)


def test_latency_percentiles_are_the_bucket_bounds_that_hold_them() -> None:
    buckets = {"1": 50, "5": 40, "60": 9, "inf": 1}
    assert percentile(buckets, 0.5) == "≤ 1 s"
    assert percentile(buckets, 0.95) == "≤ 1 min"
    assert percentile(buckets, 1.0) == "> 1 d 0 h"
    assert percentile({}, 0.5) == "—"


def test_ages_and_times_read_plainly() -> None:
    assert [age(s) for s in (0, 59, 61, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "0 s",
        "59 s",
        "1 min",
        "3 h 5 min",
        "2 d 4 h",
    ]
    assert when(NOW) == "2026-12-05 09:12:30 UTC"
    assert when(None) == "—"
    assert [size(n) for n in (0, 812, 4_200_000, 1_300_000_000, 7 * 10**15)] == [
        "0 B",
        "812 B",
        "4.2 MB",
        "1.3 GB",
        "7000.0 TB",
    ]


def test_the_carrier_table_shows_every_carrier_with_its_day() -> None:
    today = [
        CountTotal("dhl", "unauthorized", 340, NOW),
        CountTotal("dhl", "accepted", 2, NOW - timedelta(hours=3)),
        CountTotal("generic", "quarantined", 1, NOW),
    ]
    rows = carrier_rows(
        {"dhl": "signed", "generic": "signed", "ups": "not configured"},
        today,
        {"dhl": NOW - timedelta(hours=3)},
    )

    assert [(r.name, r.accepted, r.refused, r.quarantined) for r in rows] == [
        ("dhl", 2, 340, 0),
        ("generic", 0, 0, 1),
        ("ups", 0, 0, 0),
    ]
    assert rows[0].refused_last == NOW
    assert rows[0].last_accepted == NOW - timedelta(hours=3)


def test_the_accounts_table_lists_configured_and_used_accounts() -> None:
    facts = AccountFacts(
        paused={"": NOW + timedelta(minutes=5)},
        today=[CountTotal("shop", "delivered", 7, NOW), CountTotal("shop", "dead", 1, NOW)],
        ever=[
            CountTotal("other", "401", 3, NOW - timedelta(hours=30)),
            CountTotal("other", "403", 1, NOW - timedelta(hours=2)),
        ],
    )
    rows = account_rows("shop", ["extra"], lambda name: name != "other", facts)

    by_name = {row.name: row for row in rows}
    assert sorted(by_name) == ["extra", "other", "shop"]
    assert by_name["shop"].default
    assert by_name["shop"].paused_until == NOW + timedelta(minutes=5)
    assert (by_name["shop"].delivered, by_name["shop"].failed) == (7, 1)
    assert (by_name["other"].refused_status, by_name["other"].credentials) == ("403", False)
    assert by_name["other"].refused_at == NOW - timedelta(hours=2)


def test_a_tally_counts_by_minute_and_keeps_the_newest_time() -> None:
    tally = MinuteTally()
    for second in (5, 50, 20):
        tally.note("carrier", "dhl", "unauthorized", NOW.replace(second=second))
    tally.note("carrier", "dhl", "unauthorized", NOW + timedelta(minutes=1))

    counts = sorted(tally.take(), key=lambda c: c.minute)

    assert [(c.minute, c.count, c.last_at) for c in counts] == [
        (minute_of(NOW), 3, NOW.replace(second=50)),
        (minute_of(NOW) + timedelta(minutes=1), 1, NOW + timedelta(minutes=1)),
    ]
    assert tally.take() == []


def test_the_tally_counts_only_what_the_overview_shows() -> None:
    metrics = RelayMetrics()
    metrics.webhook_answered("dhl", Unauthorized("bad signature"))
    metrics.webhook_answered("dhl", Unauthorized("bad signature"))
    metrics.webhook_answered("dhl", PayloadTooLarge("too big"))
    metrics.webhook_answered("nowhere", NotFound("no carrier"))
    metrics.webhook_answered("dhl", None)

    counted = {(c.scope, c.name, c.outcome): c.count for c in metrics.tally.take()}

    assert counted == {("carrier", "dhl", "unauthorized"): 2, ("carrier", "dhl", "accepted"): 1}
