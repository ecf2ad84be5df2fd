"""Accepting one webhook: authenticate, decode, normalize, store (SPEC §1 steps 1-3)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import structlog

from app.errors import (
    InvalidJson,
    NotFound,
    OAuthError,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from app.ingest.carriers import Carrier
from app.ingest.references import with_invoice_from_references
from app.ingest.signatures import SignatureInvalid, issue_ups_token, presented_credential
from app.json_reader import read_json
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    checked_identifiers,
)
from app.settings import Settings
from app.store import IngestResult, Store

log = structlog.get_logger("relay.ingest")


@dataclass(frozen=True)
class Accepted:
    webhook_id: str
    new_events: int
    duplicate_events: int
    log_fields: dict[str, Any] = field(default_factory=dict)
    """What the webhook's ``webhook.accepted`` line says (see :func:`log_accepted`)."""


def log_accepted(accepted: Accepted, **access: Any) -> None:
    """The accepted webhook's line: carrier, shipments, counts, and the request's access
    fields when it is also the request's last line."""
    log.info("webhook.accepted", **accepted.log_fields, **access)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class ReplayReport:
    replayed: int
    still_quarantined: int
    new_events: int


class Intake:
    """The webhook path from raw request to committed events; the HTTP layer stays thin."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        carriers: Mapping[str, Carrier],
        on_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._settings = settings
        self._carriers = carriers
        self._on_queued = on_queued
        self._clock = clock
        self._context = ParseContext(default_zone=settings.carrier_default_timezone)

    def carrier(self, name: str) -> Carrier:
        carrier = self._carriers.get(name)
        if carrier is None:
            shown = name if len(name) <= 64 else f"{name[:64]}..."
            raise NotFound(
                f"no carrier named {shown!r}; known carriers: {', '.join(sorted(self._carriers))}"
            )
        return carrier

    def authenticate(
        self,
        carrier: Carrier,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None = None,
    ) -> None:
        configured = self._settings.carrier(carrier.name)
        credential = (
            configured.public_key if carrier.credential == "public_key" else configured.secret
        )
        if credential is None:
            if configured.allow_unsigned:
                return
            upper = carrier.name.upper()
            raise Unauthorized(
                f"carrier {carrier.name} has no {carrier.credential} configured: set "
                f"RELAY_CARRIERS__{upper}__{carrier.credential.upper()} "
                f"(or RELAY_CARRIERS__{upper}__ALLOW_UNSIGNED=true)"
            )
        secret = credential.get_secret_value()
        token = (query or {}).get("token")
        if carrier.url_token and token is not None:
            if hmac.compare_digest(token.encode(), secret.encode()):
                return
            raise Unauthorized(f"{carrier.name} ?token= does not match the configured secret")
        try:
            carrier.verify(secret, headers, body, self._clock())
        except SignatureInvalid as error:
            raise Unauthorized(f"{carrier.name} signature check failed: {error}") from None

    def issue_token(
        self, carrier_name: str, headers: Mapping[str, str], form: bytes
    ) -> IssuedToken:
        """OAuth 2.0 client credentials (RFC 6749 §4.4) for carriers that fetch a token (UPS).

        The client authenticates with HTTP Basic or ``client_id``/``client_secret`` form
        fields; ``grant_type`` must be ``client_credentials``.
        """
        configured = self._settings.carrier(carrier_name)
        fields = {key: values[-1] for key, values in parse_qs(form.decode("latin-1")).items()}
        if "grant_type" not in fields:
            raise OAuthError("invalid_request", "grant_type=client_credentials is missing")
        if fields["grant_type"] != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if "authorization" in headers:
            try:
                client_id, client_secret = presented_credential(headers)
            except SignatureInvalid as error:
                raise OAuthError("invalid_client", str(error), status_code=401) from None
        else:
            client_id, client_secret = fields.get("client_id"), fields.get("client_secret", "")
        upper = carrier_name.upper()
        if configured.secret is None or configured.client_id is None:
            raise OAuthError(
                "invalid_client",
                f"the relay has no UPS client configured: set RELAY_CARRIERS__{upper}__CLIENT_ID "
                f"and RELAY_CARRIERS__{upper}__SECRET",
                status_code=401,
            )
        secret = configured.secret.get_secret_value()
        id_matches = hmac.compare_digest((client_id or "").encode(), configured.client_id.encode())
        secret_matches = hmac.compare_digest(client_secret.encode(), secret.encode())
        if not (id_matches and secret_matches):
            raise OAuthError("invalid_client", "unknown client id or wrong client secret", 401)
        token, lifetime = issue_ups_token(secret, self._clock())
        log.info("carrier.token_issued", carrier=carrier_name, expires_in=lifetime)
        return IssuedToken(token, lifetime)

    async def accept(
        self,
        carrier_name: str,
        headers: Mapping[str, str],
        body: bytes,
        content_type: str | None,
        query: Mapping[str, str] | None = None,
    ) -> Accepted:
        """Authenticate, read and store a webhook; raise a :class:`RelayError` otherwise.

        A signed payload the adapter cannot read is quarantined before the 422.
        """
        carrier = self.carrier(carrier_name)
        self.authenticate(carrier, headers, body, query)
        payload = _decode_json(body, content_type)
        try:
            updates = self._parse(carrier, payload)
        except PayloadRejected as rejection:
            webhook_id = await self._store.quarantine_webhook(
                carrier.name, body, rejection.detail, self._clock()
            )
            log.warning(
                "webhook.quarantined",
                carrier=carrier.name,
                webhook_id=webhook_id,
                reason=rejection.detail,
            )
            raise Unprocessable(
                f"{carrier.name} payload could not be read: {rejection.detail}",
                webhook_id=webhook_id,
            ) from None
        result: IngestResult = await self._store.record_webhook(
            carrier.name, body, updates, self._clock()
        )
        if result.deliveries_queued:
            self._on_queued()
        fields = {
            "carrier": carrier.name,
            "webhook_id": result.webhook_id,
            **_shipment_fields([u.tracking_number for u in updates], result.invoices),
            "events": result.new_events,
            "duplicates": result.duplicate_events,
        }
        return Accepted(result.webhook_id, result.new_events, result.duplicate_events, fields)

    def _parse(self, carrier: Carrier, payload: Any) -> list[ShipmentUpdate]:
        return read_updates(carrier, payload, self._settings, self._context)

    async def replay_quarantine(
        self, carrier: str | None = None, webhook_id: str | None = None
    ) -> ReplayReport:
        """Re-run quarantined webhooks (of a carrier, or the one ``webhook_id``) through
        today's adapters; keep those still unreadable."""
        replayed = still = new_events = 0
        for webhook in await self._store.quarantined(carrier, webhook_id=webhook_id):
            adapter = self._carriers.get(webhook.carrier)
            try:
                if adapter is None:
                    raise PayloadRejected(f"no carrier named {webhook.carrier!r} any more")
                updates = self._parse(adapter, _decode_json(webhook.body, None))
            except (PayloadRejected, UnsupportedMediaType) as failure:
                await self._store.keep_in_quarantine(webhook.id, failure.detail)
                still += 1
                continue
            result = await self._store.release_from_quarantine(webhook.id, updates, self._clock())
            if result is None:
                continue  # another replay took it meanwhile
            replayed += 1
            new_events += result.new_events
            if result.deliveries_queued:
                self._on_queued()
            log.info(
                "webhook.replayed",
                carrier=webhook.carrier,
                webhook_id=webhook.id,
                events=result.new_events,
            )
        return ReplayReport(replayed, still, new_events)


def _shipment_fields(
    numbers: list[str], invoices: tuple[tuple[str | None, str | None], ...]
) -> dict[str, str | None]:
    """``tracking_number``, ``orderId``, ``invoiceNumber`` of a webhook's log line (comma
    separated when it carries several shipments; null while unregistered)."""

    def joined(values: list[str | None]) -> str | None:
        return ",".join(value or "" for value in values) if any(values) else None

    return {
        "tracking_number": ",".join(numbers) or None,
        "orderId": joined([order_id for order_id, _ in invoices]),
        "invoiceNumber": joined([invoice for _, invoice in invoices]),
    }


def read_updates(
    carrier: Carrier, payload: Any, settings: Settings, context: ParseContext | None = None
) -> list[ShipmentUpdate]:
    """The adapter's reading of a payload, identifiers checked, with the invoices that the
    carrier's reference settings find in it; raises :class:`PayloadRejected`."""
    context = context or ParseContext(default_zone=settings.carrier_default_timezone)
    rule = settings.carrier(carrier.name)
    return [
        with_invoice_from_references(checked_identifiers(update), rule)
        for update in carrier.parse(payload, context)
    ]


def _decode_json(body: bytes, content_type: str | None) -> Any:
    """A webhook's JSON (SPEC §4: 415 when it is not JSON)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected application/json, got {media_type[:100]}")
    try:
        return read_json(body)
    except InvalidJson as error:
        raise UnsupportedMediaType(f"body is not JSON the relay can read: {error.detail}") from None
