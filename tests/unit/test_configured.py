"""``relay.configured``: what a starting relay says it has, and a warning per missing piece."""

from __future__ import annotations

import json
from typing import Any

import structlog

from app.configured import describe_configuration, log_configuration
from app.ingest.carriers import BUILT_IN
from app.settings import Settings

READY = {
    "vtex_base_url": "http://127.0.0.1:9000",
    "vtex_app_key": "vtexappkey-store-ABC",
    "vtex_app_token": "app-token-value",
    "admin_token": "admin-token-value",
    "carriers": {"generic": {"secret": "generic-secret-value"}},
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def problems(values: dict[str, Any], worker: bool = True) -> dict[str, str]:
    described = describe_configuration(settings(**values), BUILT_IN, worker)
    return {warning["setting"]: warning["problem"] for warning in described.warnings}


def test_a_configured_relay_says_what_it_has_and_warns_of_nothing() -> None:
    described = describe_configuration(settings(**READY), BUILT_IN, worker=True)

    assert described.warnings == []
    assert described.fields["database"] == "sqlite"
    assert described.fields["carriers"] == ["generic"]
    assert described.fields["vtex_accounts"] == [
        {"account": "default", "host": "http://127.0.0.1:9000", "keys": True}
    ]


def test_an_unconfigured_relay_warns_of_each_missing_credential() -> None:
    warned = problems({})

    assert "every webhook will be refused with 401" in warned["RELAY_CARRIERS__<NAME>__SECRET"]
    assert "deliveries will wait" in warned["RELAY_VTEX_ACCOUNT"]
    assert "admin routes answer 401" in warned["RELAY_ADMIN_TOKEN"]


def test_missing_vtex_keys_are_a_warning_only_where_the_worker_runs() -> None:
    values = {**READY, "vtex_app_token": None}

    assert "RELAY_VTEX_APP_KEY" in problems(values, worker=True)
    assert problems(values, worker=False) == {}


def test_named_accounts_are_listed_with_their_keys_never_the_keys_themselves() -> None:
    values = {
        **READY,
        "vtex_app_key": None,
        "vtex_app_token": None,
        "vtex_accounts": {"lojab": {"app_key": "key-of-b", "app_token": "token-of-b"}},
    }

    described = describe_configuration(settings(**values), BUILT_IN, worker=True)

    assert {"account": "lojab", "host": "http://127.0.0.1:9000", "keys": True} in (
        described.fields["vtex_accounts"]
    )
    assert "token-of-b" not in json.dumps(described.fields)


def test_unsigned_carriers_and_half_configured_ups_are_warned_of() -> None:
    values = {
        **READY,
        "carriers": {"dhl": {"allow_unsigned": True}, "ups": {"secret": "ups-secret"}},
    }

    warned = problems(values)

    assert "anyone who knows the URL" in warned["RELAY_CARRIERS__DHL__ALLOW_UNSIGNED"]
    assert "CLIENT_ID and SECRET" in warned["RELAY_CARRIERS__UPS__CLIENT_ID"]


def test_the_log_lines_hold_no_secret() -> None:
    with structlog.testing.capture_logs() as lines:
        log_configuration(settings(**{**READY, "admin_token": None}), BUILT_IN, worker=True)

    assert [line["event"] for line in lines] == ["relay.configured", "relay.configuration_warning"]
    logged = json.dumps(lines, default=str)
    for secret in ("vtexappkey-store-ABC", "app-token-value", "generic-secret-value"):
        assert secret not in logged


def test_a_worker_alone_is_not_warned_about_webhooks_or_admin_routes() -> None:
    values = {**READY, "carriers": {"ups": {"secret": "half-ups"}}, "admin_token": None}

    alone = describe_configuration(settings(**values), None, worker=True)
    serving = describe_configuration(settings(**values), BUILT_IN, worker=True)

    assert alone.warnings == []
    assert alone.fields["carriers"] is None
    assert {w["setting"] for w in serving.warnings} == {
        "RELAY_CARRIERS__UPS__CLIENT_ID",
        "RELAY_ADMIN_TOKEN",
    }


def test_a_hook_url_without_its_secret_is_warned_of_where_the_worker_runs() -> None:
    url = "https://relay.example.com/vtex/orders-hook"
    values = {**READY, "vtex_hook_url": url}

    assert "will not be subscribed" in problems(values)["RELAY_VTEX_HOOK_SECRET"]
    assert problems(values, worker=False) == {}
    kept = describe_configuration(
        settings(**values, vtex_hook_secret="hook-secret", retention="30d"), BUILT_IN, True
    )
    assert (kept.fields["orders_hook_kept"], kept.fields["retention"]) == (True, "30d")
