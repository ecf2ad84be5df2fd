"""Schemathesis over the relay's own OpenAPI (``/openapi.json``), against ``relay serve``.

Every operation with positive and negative data through the examples, coverage and fuzzing
phases, the admin token sent as ``Authorization: Bearer``, and the orders hook called once more
with its ``X-Relay-Hook-Token``. Each answer must be no 5xx (schemathesis's
``not_a_server_error``), an error must be the relay's JSON ``{"error", "detail"}``, and the
relay's log must show no crash for the request. Every answer must also match the document:
a documented status code, content type and body schema (the document declares the relay's
``ErrorAnswer`` for every error; see app/api/openapi.py).

Webhook routes read their raw body themselves, so the OpenAPI declares no request body for
them and schemathesis sends none: ``test_hostile_bodies.py`` covers the bodies.

The stateful phase: the relay's OpenAPI declares no links. Schemathesis's dependency
analysis infers one (``GET /admin/deliveries`` → ``POST /admin/deliveries/{delivery_id}/retry``,
from the ``id`` of a listed delivery); it cannot infer that ``PUT /shipments/{trackingNumber}``
is read back by ``GET`` (both answer a free-form object), so this test declares those links
itself, and seeds a delivery so that the inferred link has something to follow.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response

from app.api.app import create_app
from app.api.request_log import QUIET_PATHS
from app.settings import Settings
from tests.fuzz.hostile import fixtures
from tests.fuzz.relay import (
    ADMIN,
    GENERIC_SECRET,
    HOOK_HEADER,
    HOOK_SECRET,
    Answer,
    Findings,
    admin,
    assert_still_serving,
)
from tests.support.relay_process import RelayProcess
from tests.support.signing import standard_webhooks_headers

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

SEED = 20261120


def config(max_examples: int, base_url: str | None = None) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            **({"base-url": base_url} if base_url else {}),
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {ADMIN}"},
            "generation": {
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
            "phases": {"stateful": {"max-steps": 8}},
        }
    )


def served_document() -> dict[str, Any]:
    """The OpenAPI document ``relay serve`` answers at ``/openapi.json``, built the same way
    in-process so that pytest can collect one test per operation before the relay runs
    (``test_the_relay_serves_this_document`` checks they are the same). Loading it from the
    running relay instead, with ``schemathesis.pytest.from_fixture``, fails on pytest 9.2:
    schemathesis 4.32 sets ``Function._nodeid``, which pytest no longer has. The routes do
    not depend on settings: defaults, nothing read from the environment."""
    return create_app(Settings.model_construct()).openapi()


schema = schemathesis.openapi.from_dict(served_document(), config=config(250))


def test_the_relay_serves_this_document(relay: RelayProcess) -> None:
    assert relay.client.get("/openapi.json").json() == served_document()


def checked_call(relay: RelayProcess, case: Any, headers: dict[str, str] | None = None) -> Response:
    """Call ``case`` once; fail with what is wrong with the answer and the relay's log."""
    findings = Findings(relay)
    sent: list[Response] = []

    def call() -> Answer:
        response = case.call(base_url=relay.url, headers=headers, timeout=15)
        sent.append(response)
        return Answer(response.status_code, dict(response.headers), response.content)

    curl = case.as_curl_command(headers=headers, base_url=relay.url)
    findings.check(curl, call, quiet_path=case.path in QUIET_PATHS)
    assert not findings.found, findings.report()
    return sent[0]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case: Any, relay: RelayProcess) -> None:
    calls = [None]
    if case.operation.path == "/vtex/orders-hook":
        calls.append({HOOK_HEADER: HOOK_SECRET})
    for headers in calls:
        case.validate_response(checked_call(relay, case, headers))


# --- The stateful phase ------------------------------------------------------------------------

SHIPMENT = "/shipments/{trackingNumber}"
SAME_NUMBER = {"trackingNumber": "$request.path.trackingNumber"}


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """The relay's OpenAPI plus the links it does not declare: a registered shipment is read
    back and registered again under the same number."""
    operations = document["paths"][SHIPMENT]
    get_ref = "#/paths/~1shipments~1{trackingNumber}/get"
    put_ref = "#/paths/~1shipments~1{trackingNumber}/put"
    for status in ("200", "201"):
        operations["put"]["responses"][status]["links"] = {
            "ReadBack": {"operationRef": get_ref, "parameters": SAME_NUMBER},
        }
    operations["get"]["responses"]["200"]["links"] = {
        "RegisterAgain": {"operationRef": put_ref, "parameters": SAME_NUMBER},
    }
    return document


def seed_a_delivery(relay: RelayProcess) -> None:
    """A registered shipment with one event, so ``GET /admin/deliveries`` lists a delivery."""
    registered = relay.client.put(
        "/shipments/FZSEED0001BR",
        json={"orderId": "1400123450099-01", "invoiceNumber": "000199001"},
        headers=admin(),
    )
    assert registered.status_code in (200, 201), registered.text
    payload = fixtures("generic")[0] | {"trackingNumber": "FZSEED0001BR"}
    body = json.dumps(payload).encode()
    posted = relay.client.post(
        "/webhooks/generic", content=body, headers=standard_webhooks_headers(GENERIC_SECRET, body)
    )
    assert posted.status_code == 202, posted.text


# The transitions the state machine must have: the inferred one and the two declared above.
LINKS = [
    "GET_admin_deliveries___200_PostDelivery__POST_admin_deliveries_delivery_id_retry",
    "PUT_shipments_trackingNumber___201_ReadBack__GET_shipments_trackingNumber_",
    "GET_shipments_trackingNumber___200_RegisterAgain__PUT_shipments_trackingNumber_",
]


def test_stateful_sequences(relay: RelayProcess) -> None:
    seed_a_delivery(relay)
    document = with_links(relay.client.get("/openapi.json").json())
    linked = schemathesis.openapi.from_dict(document, config=config(80, base_url=relay.url))
    machine = linked.as_state_machine()
    assert set(LINKS) <= set(vars(machine)), sorted(vars(machine))

    class Checked(machine):  # type: ignore[misc, valid-type]
        def call(self, case: Any, **kwargs: Any) -> Response:
            return checked_call(relay, case, kwargs.get("headers"))

    Checked.run(
        settings=settings(
            max_examples=80,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert_still_serving(relay)
