"""What a starting relay says about its configuration: one ``relay.configured`` line, and a
warning for each thing that will make work fail later (a refused webhook, a delivery that
waits), so that an operator reads it at start-up rather than in a retry 15 minutes on.

Pure: settings and carriers in, fields and warnings out. Never a secret, only whether
one is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.engine import make_url

from app.ingest.carriers import Carrier
from app.settings import Settings, duration_text

log = structlog.get_logger("relay")


@dataclass(frozen=True)
class Configuration:
    fields: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)


def carrier_readiness(settings: Settings, name: str, carrier: Carrier) -> str:
    """``signed`` (it has its credential), ``unsigned`` (allowed without) or
    ``not configured`` (every webhook is refused with 401)."""
    configured = settings.carrier(name)
    credential = configured.public_key if carrier.credential == "public_key" else configured.secret
    if credential is not None:
        return "signed"
    return "unsigned" if configured.allow_unsigned else "not configured"


def describe_configuration(
    settings: Settings, carriers: Mapping[str, Carrier] | None, worker: bool
) -> Configuration:
    """The ``relay.configured`` fields and the warnings; ``worker`` says whether this
    process delivers to VTEX (VTEX settings only matter where it does), ``carriers`` None
    that it takes no webhooks (``relay worker``)."""
    warnings: list[dict[str, str]] = []

    def warn(setting: str, problem: str) -> None:
        warnings.append({"setting": setting, "problem": problem})

    with_credentials: list[str] = []
    unsigned: list[str] = []
    for name, carrier in sorted((carriers or {}).items()):
        readiness = carrier_readiness(settings, name, carrier)
        if readiness == "signed":
            with_credentials.append(name)
        elif readiness == "unsigned":
            unsigned.append(name)
            warn(
                f"RELAY_CARRIERS__{name.upper()}__ALLOW_UNSIGNED",
                f"{name} accepts unsigned webhooks: anyone who knows the URL can post tracking",
            )
    if carriers is not None and not with_credentials and not unsigned:
        warn(
            "RELAY_CARRIERS__<NAME>__SECRET",
            "no carrier has credentials: every webhook will be refused with 401",
        )
    ups = settings.carrier("ups")
    if carriers is not None and (ups.secret is None) != (ups.client_id is None):
        warn(
            "RELAY_CARRIERS__UPS__CLIENT_ID",
            "UPS needs both CLIENT_ID and SECRET to fetch tokens; its webhooks will be refused",
        )

    accounts = _vtex_accounts(settings)
    # Named accounts always have both keys (their settings require them); the default
    # matters alone when there is no named one (with some, the line shows what it lacks).
    default = accounts[0]
    if worker and len(accounts) == 1 and default["host"] is None:
        warn(
            "RELAY_VTEX_ACCOUNT",
            "no VTEX host (set RELAY_VTEX_ACCOUNT or RELAY_VTEX_BASE_URL): "
            "deliveries will wait, retried every 15 minutes",
        )
    elif worker and len(accounts) == 1 and not default["keys"]:
        warn(
            "RELAY_VTEX_APP_KEY",
            "no VTEX credentials (set RELAY_VTEX_APP_KEY and RELAY_VTEX_APP_TOKEN): "
            "deliveries will wait, retried every 15 minutes",
        )
    if worker and settings.vtex_hook_url and settings.vtex_hook_secret is None:
        warn(
            "RELAY_VTEX_HOOK_SECRET",
            "RELAY_VTEX_HOOK_URL is set without it: the orders hook will not be subscribed",
        )
    if carriers is not None and settings.admin_token is None:
        warn(
            "RELAY_ADMIN_TOKEN",
            "not set: shipments cannot be registered over HTTP and admin routes answer 401",
        )

    return Configuration(
        fields={
            "database": make_url(settings.database_url).get_backend_name(),
            "worker": worker,
            "carriers": with_credentials if carriers is not None else None,
            "carriers_unsigned": unsigned if carriers is not None else None,
            "vtex_accounts": accounts,
            "orders_hook": settings.vtex_hook_secret is not None,
            "reconcile_interval_s": (
                settings.reconcile_interval.total_seconds() if settings.reconcile_interval else None
            ),
            "retention": duration_text(settings.retention),
            "orders_hook_kept": bool(worker and settings.vtex_hook_url),
        },
        warnings=warnings,
    )


def _vtex_accounts(settings: Settings) -> list[dict[str, Any]]:
    """The default account and each named one: its host, and whether its keys are set."""
    default = {
        "account": "default",
        "host": settings.vtex_host(None),
        "keys": settings.vtex_app_key is not None and settings.vtex_app_token is not None,
    }
    named = [
        {"account": name, "host": settings.vtex_host(name), "keys": True}
        for name in sorted(settings.vtex_accounts)
    ]
    return [default, *named]


def log_configuration(
    settings: Settings, carriers: Mapping[str, Carrier] | None, worker: bool
) -> None:
    """``relay.configured``, then ``relay.configuration_warning`` for each problem."""
    configuration = describe_configuration(settings, carriers, worker)
    log.info("relay.configured", **configuration.fields)
    for warning in configuration.warnings:
        log.warning("relay.configuration_warning", **warning)
