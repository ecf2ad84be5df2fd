"""Settings from ``RELAY_*`` environment variables and ``.env`` (SPEC §6)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.ingest.signatures import load_rsa_public_keys

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """``"72h"``, ``"5s"``, ``"1.5m"``, ``"250ms"`` or plain seconds; others pass through."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 30s, 10m, 72h")
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])
    return value


def duration_text(value: timedelta) -> str:
    """A duration as the settings write it: ``90d``, ``72h``, ``10m``, ``30s``."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def parse_optional_duration(value: Any) -> Any:
    """Like :func:`parse_duration`; ``off``, ``0`` or empty mean disabled."""
    if isinstance(value, str) and value.strip().lower() in ("", "off", "0", "false", "none"):
        return None
    return parse_duration(value)


def header_safe(value: Any) -> Any:
    """A credential sent as an HTTP header: surrounding whitespace (a newline from a mounted
    Secret file) is dropped; anything else outside printable ASCII is refused."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isprintable():
            raise ValueError("must be printable ASCII (it is sent as an HTTP header)")
    return value


DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
SUPPORTED_DATABASES = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db or "
    "postgresql://user:password@host:5432/database"
)


def database_url_problem(url: str) -> str | None:
    """Why the relay cannot use ``url`` (never echoing a password), or None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "not a database URL"
    if parsed.drivername not in DATABASE_SCHEMES:
        return f"unsupported database {parsed.drivername!r}"
    if parsed.drivername != "sqlite":
        return None
    if parsed.host or parsed.username or parsed.port:
        # sqlite://relay.db reads "relay.db" as a host and opens no file at all.
        return "a SQLite URL names its file after three slashes, not after two"
    if not parsed.database or parsed.database == ":memory:":
        # The store's writer and readers use separate connections: each would see its own.
        return "an in-memory SQLite database is not supported (name a file)"
    return None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
HeaderSecret = Annotated[SecretStr, BeforeValidator(header_safe)]
OptionalDuration = Annotated[timedelta | None, BeforeValidator(parse_optional_duration)]


REFERENCE_GROUPS = frozenset({"order_id", "invoice_number"})


@dataclass(frozen=True)
class VtexTarget:
    """Where an account's VTEX API answers, and the key it takes."""

    base_url: str
    app_key: str = field(repr=False)
    app_token: str = field(repr=False)


class VtexNotConfigured(Exception):
    """An account has no VTEX host or no key; the message says what to set."""


class CarrierSettings(BaseModel):
    """``RELAY_CARRIERS__<NAME>__*``.

    ``order_id_from`` / ``invoice_number_from`` name order references the carrier's payload
    carries (its adapter documents them); ``reference_pattern`` splits the
    ``order_id_from`` reference with named groups ``order_id`` / ``invoice_number``.
    A webhook whose references give both registers its shipment. An unknown key is an
    error (a misspelt ``SECRET`` would otherwise leave the carrier silently unconfigured).
    """

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = None
    public_key: SecretStr | None = None
    client_id: str | None = None
    allow_unsigned: bool = False
    order_id_from: str | None = None
    invoice_number_from: str | None = None
    reference_pattern: re.Pattern[str] | None = None

    @field_validator(
        "secret",
        "public_key",
        "client_id",
        "order_id_from",
        "invoice_number_from",
        "reference_pattern",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_key")
    @classmethod
    def _rsa_public_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                load_rsa_public_keys(value.get_secret_value())
            except ValueError:
                raise ValueError(
                    "must be a PEM RSA public key (-----BEGIN PUBLIC KEY----- ...)"
                ) from None
        return value

    @field_validator("reference_pattern")
    @classmethod
    def _named_groups(cls, value: re.Pattern[str] | None) -> re.Pattern[str] | None:
        if value is not None and (
            "order_id" not in value.groupindex or not set(value.groupindex) <= REFERENCE_GROUPS
        ):
            raise ValueError(
                "needs the named group (?P<order_id>...), optionally (?P<invoice_number>...), "
                "and no other named group"
            )
        return value

    @model_validator(mode="after")
    def _references_complete(self) -> CarrierSettings:
        groups = set(self.reference_pattern.groupindex) if self.reference_pattern else set()
        if groups and self.order_id_from is None:
            raise ValueError("reference_pattern needs order_id_from: the reference it splits")
        gives_order = self.order_id_from is not None
        gives_invoice = self.invoice_number_from is not None or "invoice_number" in groups
        if gives_order != gives_invoice:
            raise ValueError(
                "order_id_from and invoice_number_from (or a reference_pattern with an "
                "invoice_number group) are needed together to register shipments"
            )
        return self


_UNCONFIGURED_CARRIER = CarrierSettings()
"""Shared, never changed: built once instead of on every webhook of such a carrier."""


class AccountSettings(BaseModel):
    """``RELAY_VTEX_ACCOUNTS__<ACCOUNT>__*``."""

    model_config = ConfigDict(extra="forbid")

    app_key: HeaderSecret
    app_token: HeaderSecret


class Settings(BaseSettings):
    """Every setting of the relay; invalid values stop start-up naming the variable."""

    model_config = SettingsConfigDict(
        env_prefix="RELAY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: str = "sqlite:///./relay.db"
    host: str = "0.0.0.0"  # noqa: S104 - a service in a container listens on all interfaces
    port: int = Field(default=8080, ge=1, le=65535)

    vtex_account: str | None = None
    vtex_environment: str = "vtexcommercestable"
    vtex_base_url: str | None = None
    vtex_app_key: HeaderSecret | None = None
    vtex_app_token: HeaderSecret | None = None
    vtex_accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    vtex_timezone: ZoneInfo = ZoneInfo("UTC")
    vtex_event_date_format: Literal["date", "datetime"] = "date"
    vtex_max_concurrency: int = Field(default=8, ge=1, le=256)
    vtex_rate_limit: float = Field(default=50, gt=0)
    vtex_timeout: Duration = timedelta(seconds=10)
    vtex_coalesce_window: Duration = timedelta(seconds=1)

    carrier_default_timezone: ZoneInfo = ZoneInfo("UTC")
    carriers: dict[str, CarrierSettings] = Field(default_factory=dict)
    carriers_file: Path | None = None

    admin_token: SecretStr | None = None
    viewer_token: SecretStr | None = None
    vtex_hook_secret: SecretStr | None = None
    reconcile_interval: OptionalDuration = None
    retention: Duration = timedelta(days=90)
    prune_interval: Duration = timedelta(hours=1)
    vtex_hook_url: str | None = None
    vtex_hook_refresh_interval: Duration = timedelta(days=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_delivery_age: Duration = timedelta(hours=72)
    worker: bool = True
    worker_poll_interval: Duration = timedelta(seconds=1)
    shutdown_grace: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=30)
    max_connections: int = Field(default=1000, ge=1)
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    @field_validator("read_timeout", "retention", "prune_interval", "vtex_hook_refresh_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s, e.g. 30s")
        return value

    @field_validator("vtex_hook_url", mode="before")
    @classmethod
    def _hook_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not value.startswith(("https://", "http://")):
            raise ValueError("must be the public http(s) URL of this relay's /vtex/orders-hook")
        return value

    @field_validator("admin_token", "viewer_token", "vtex_hook_secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        # An empty token would match an empty "Bearer " header.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        problem = database_url_problem(value)
        if problem is not None:
            raise ValueError(f"{problem}; supported: {SUPPORTED_DATABASES}")
        return value

    @field_validator("vtex_timezone", "carrier_default_timezone", mode="before")
    @classmethod
    def _zone(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("carriers", "vtex_accounts", mode="before")
    @classmethod
    def _lower_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(key).lower(): item for key, item in value.items()}
        return value

    def carrier(self, name: str) -> CarrierSettings:
        """A carrier's settings; an unconfigured carrier's are the defaults (no secret)."""
        return self.carriers.get(name) or _UNCONFIGURED_CARRIER

    def vtex_host(self, account: str | None) -> str | None:
        """Base URL of an account's VTEX API; ``RELAY_VTEX_BASE_URL`` overrides for all."""
        if self.vtex_base_url:
            return self.vtex_base_url.rstrip("/")
        name = account or self.vtex_account
        return f"https://{name}.{self.vtex_environment}.com.br" if name else None

    def vtex_credentials(self, account: str | None) -> tuple[str, str] | None:
        """(AppKey, AppToken) of an account, falling back to the default key."""
        named = self.vtex_accounts.get((account or "").lower())
        if named is not None:
            return named.app_key.get_secret_value(), named.app_token.get_secret_value()
        if self.vtex_app_key is not None and self.vtex_app_token is not None:
            return self.vtex_app_key.get_secret_value(), self.vtex_app_token.get_secret_value()
        return None

    def vtex_target(self, account: str | None) -> VtexTarget:
        """An account's VTEX API; raises :class:`VtexNotConfigured` saying what is missing."""
        host = self.vtex_host(account)
        if host is None:
            raise VtexNotConfigured("no VTEX host: set RELAY_VTEX_ACCOUNT or RELAY_VTEX_BASE_URL")
        credentials = self.vtex_credentials(account)
        if credentials is None:
            raise VtexNotConfigured(
                "no VTEX credentials: set RELAY_VTEX_APP_KEY and RELAY_VTEX_APP_TOKEN"
            )
        return VtexTarget(host, *credentials)
