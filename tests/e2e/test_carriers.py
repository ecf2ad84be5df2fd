"""Every carrier end to end, built-in or declared in YAML: webhook in, VTEX PUT out, receipt stored.

Each carrier posts its own ``delivered`` fixture (tests/fixtures/<carrier>/), signed the way
that carrier signs, to ``relay serve``; its shipments are registered first (Melhor Envio's
under the carrier tracking code, an alias of the label id its events are keyed by). The
expected tracking numbers and event counts come from the adapter case tables.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from app.ingest.carriers import BUILT_IN
from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.signing import (
    ShipEngineSigner,
    aftership_headers,
    basic_headers,
    bearer_headers,
    easypost_headers,
    fedex_headers,
    hex_hmac_headers,
    melhor_envio_headers,
    seventeen_track_headers,
    shippo_headers,
    standard_webhooks_headers,
)
from tests.support.vtex_standin import VtexStandIn
from tests.unit.adapter_cases import modules

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent.parent / "fixtures"
DECLARED_FILE = FIXTURES / "declared" / "carriers.yaml"
ADMIN = "admin-token-carriers"
UPS_CLIENT_ID = "ups-client-e2e"
SHIPENGINE = ShipEngineSigner()
Signer = Callable[[str, bytes], dict[str, str]]

SIGNERS: dict[str, Signer] = {
    "generic": standard_webhooks_headers,
    "aftership": aftership_headers,
    "easypost": easypost_headers,
    "shippo": shippo_headers,
    "17track": seventeen_track_headers,
    "ups": bearer_headers,  # with the token the relay issued, see ups_token()
    "intelipost": bearer_headers,
    "melhor_envio": melhor_envio_headers,
    "dhl": basic_headers,
    "shipengine": SHIPENGINE.headers,
    "fedex": fedex_headers,
    "rapidez": hex_hmac_headers("x-rapidez-signature"),
}
CARRIERS = sorted(SIGNERS)


def secret_of(carrier: str) -> str:
    return f"secret-of-{carrier}-{'ç' if carrier == 'easypost' else 'x'}"


class Expected(NamedTuple):
    """A shipment a fixture carries: the number VTEX knows it by, its events, delivered."""

    number: str
    events: int
    delivered: bool
    invoice: tuple[str, str] | None = None
    """(orderId, invoiceNumber) when the payload names its invoice itself (generic)."""


# The declared carrier's delivered fixture (tests/fixtures/declared/rapidez/): one package,
# five occurrences of which two are the same scan.
RAPIDEZ_DELIVERED = [Expected("RPZ100234567BR", 4, True)]
RAPIDEZ_IN_TRANSIT = [Expected("RPZ100298811BR", 0, False)]  # only its number is used


def fixture_path(carrier: str, name: str) -> Path:
    if carrier == "rapidez":
        return FIXTURES / "declared" / "rapidez" / f"{name}.json"
    return FIXTURES / carrier / f"{name}.json"


def expected_shipments(carrier: str, fixture: str) -> list[Expected]:
    """From the adapter case tables; Melhor Envio's shipment is known by its alias."""
    if carrier == "rapidez":
        return {"delivered": RAPIDEZ_DELIVERED, "in_transit": RAPIDEZ_IN_TRANSIT}[fixture]
    cases = sorted(
        (c for m in modules() for c in m.CASES if (c.carrier, c.fixture) == (carrier, fixture)),
        key=lambda case: case.update,
    )
    assert cases, f"no {fixture} case for {carrier}"
    return [
        Expected(
            case.aliases[0] if case.aliases else case.tracking_number,
            len(case.events),
            any(event.status == "delivered" for event in case.events),
            (case.order_id, case.invoice_number) if case.order_id and case.invoice_number else None,
        )
        for case in cases
    ]


def test_every_registered_carrier_is_driven_here() -> None:
    assert set(BUILT_IN) | {"rapidez"} == set(SIGNERS)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def vtex(database: str) -> Iterator[VtexStandIn]:
    """One stand-in per database run, so that each run counts only its own PUTs."""
    with VtexStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def relay(
    database: str, tmp_path_factory: pytest.TempPathFactory, vtex: VtexStandIn
) -> Iterator[RelayProcess]:
    env = {
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_ACCOUNT": "teststore",
        "RELAY_VTEX_APP_KEY": "key-carriers-e2e",
        "RELAY_VTEX_APP_TOKEN": "token-carriers-e2e",
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_CARRIERS_FILE": str(DECLARED_FILE),
        "RELAY_CARRIERS__UPS__CLIENT_ID": UPS_CLIENT_ID,
        "RELAY_CARRIERS__SHIPENGINE__PUBLIC_KEY": SHIPENGINE.public_pem,
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
    }
    for carrier in CARRIERS:
        if carrier != "shipengine":
            env[f"RELAY_CARRIERS__{carrier.upper()}__SECRET"] = secret_of(carrier)
    with contextlib.ExitStack() as stack:
        if database == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        yield stack.enter_context(RelayProcess(tmp_path_factory.mktemp("relay"), env))


def ups_token(relay: RelayProcess) -> str:
    """What UPS does before each batch of webhooks: client credentials for a Bearer token."""
    basic = base64.b64encode(f"{UPS_CLIENT_ID}:{secret_of('ups')}".encode()).decode()
    answer = relay.client.post(
        "/webhooks/ups/token",
        content=b"grant_type=client_credentials",
        headers={
            "authorization": f"Basic {basic}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert (token["token_type"], token["expires_in"] > 0) == ("Bearer", True)
    return str(token["access_token"])


def wait_for_receipt(relay: RelayProcess, number: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        shipment = relay.client.get(f"/shipments/{number}", headers=relay.admin(ADMIN)).json()
        if shipment.get("deliveries") and shipment["deliveries"][0].get("receipt"):
            return dict(shipment)
        time.sleep(0.05)
    raise AssertionError(f"no receipt for {number}")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_carriers_webhook_reaches_vtex_and_the_receipt_is_stored(
    carrier: str, relay: RelayProcess, vtex: VtexStandIn
) -> None:
    shipments = expected_shipments(carrier, "delivered")
    orders: dict[str, tuple[str, Expected]] = {}
    for index, shipment in enumerate(shipments, start=1):
        if shipment.invoice is not None:  # the webhook registers it
            orders[shipment.invoice[0]] = (shipment.invoice[1], shipment)
            continue
        order_id = f"{uuid.uuid4().int % 10**13:013d}-01"
        registered = relay.client.put(
            f"/shipments/{shipment.number}",
            json={"orderId": order_id, "invoiceNumber": f"NF{index}"},
            headers=relay.admin(ADMIN),
        )
        assert registered.status_code in (200, 201), registered.text
        orders[order_id] = (f"NF{index}", shipment)

    body = fixture_path(carrier, "delivered").read_bytes()
    secret = ups_token(relay) if carrier == "ups" else secret_of(carrier)
    answer = relay.client.post(
        f"/webhooks/{carrier}", content=body, headers=SIGNERS[carrier](secret, body)
    )

    assert answer.status_code == 202, answer.text
    assert answer.json()["events"] == sum(shipment.events for shipment in shipments)
    vtex.wait_for(lambda v: all(v.puts(f"/orders/{order_id}/") for order_id in orders))
    for order_id, (invoice, shipment) in orders.items():
        [put] = vtex.puts(f"/orders/{order_id}/")
        assert put.path == f"/api/oms/pvt/orders/{order_id}/invoice/{invoice}/tracking"
        assert len(put.body["events"]) == shipment.events
        assert put.body["isDelivered"] is shipment.delivered
        stored = wait_for_receipt(relay, shipment.number)
        receipt = next(a.body for r, a in vtex.tracking_answers() if r.path == put.path)
        assert stored["deliveries"][0]["receipt"]["receipt"] == receipt["receipt"]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_webhook_with_a_bad_signature_is_refused_and_stores_nothing(
    carrier: str, relay: RelayProcess
) -> None:
    body = fixture_path(carrier, "in_transit").read_bytes()
    if carrier == "shipengine":
        forged = base64.b64encode(b"forged" * 40).decode()
        headers = {**SHIPENGINE.headers("", body), "x-shipengine-rsa-sha256-signature": forged}
    else:
        headers = SIGNERS[carrier]("not-the-secret", body)

    answer = relay.client.post(f"/webhooks/{carrier}", content=body, headers=headers)

    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized"
    assert "not-the-secret" not in answer.text
    for shipment in expected_shipments(carrier, "in_transit"):
        seen = relay.client.get(f"/shipments/{shipment.number}", headers=relay.admin(ADMIN))
        assert seen.status_code == 404, seen.text


def test_fedex_second_push_of_a_delivery_with_its_proof_is_a_duplicate(
    relay: RelayProcess,
) -> None:
    # With proof of delivery enabled FedEx pushes a delivery twice, with the same delivery
    # timestamp; the second push's DL scan is the event the first one brought. (A number
    # of its own, so that the delivered fixture's test above is not disturbed.)
    [delivered] = expected_shipments("fedex", "delivered")
    number = f"{uuid.uuid4().int % 10**12:012d}"
    answers = []
    for name in ("delivered", "proof_of_delivery"):
        body = (
            fixture_path("fedex", name)
            .read_bytes()
            .replace(delivered.number.encode(), number.encode())
        )
        answer = relay.client.post(
            "/webhooks/fedex", content=body, headers=fedex_headers(secret_of("fedex"), body)
        )
        assert answer.status_code == 202, answer.text
        answers.append((answer.json()["events"], answer.json()["duplicates"]))

    assert answers == [(delivered.events, 0), (0, 1)]


def test_ups_token_endpoint_refuses_a_wrong_client(relay: RelayProcess) -> None:
    for credentials in (f"{UPS_CLIENT_ID}:wrong", f"someone-else:{secret_of('ups')}"):
        basic = base64.b64encode(credentials.encode()).decode()
        answer = relay.client.post(
            "/webhooks/ups/token",
            content=b"grant_type=client_credentials",
            headers={
                "authorization": f"Basic {basic}",
                "content-type": "application/x-www-form-urlencoded",
            },
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"
    as_form = relay.client.post(
        "/webhooks/ups/token",
        data={
            "grant_type": "client_credentials",
            "client_id": UPS_CLIENT_ID,
            "client_secret": secret_of("ups"),
        },
    )
    assert as_form.status_code == 200, as_form.text
    wrong_grant = relay.client.post(
        "/webhooks/ups/token",
        data={
            "grant_type": "password",
            "client_id": UPS_CLIENT_ID,
            "client_secret": secret_of("ups"),
        },
    )
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    no_grant = relay.client.post(
        "/webhooks/ups/token",
        data={"client_id": UPS_CLIENT_ID, "client_secret": secret_of("ups")},
    )
    assert (no_grant.status_code, no_grant.json()["error"]) == (400, "invalid_request")
    assert secret_of("ups") not in relay.log()


def test_shippo_url_token_is_accepted_and_never_logged(relay: RelayProcess) -> None:
    body = (FIXTURES / "shippo" / "exception.json").read_bytes()
    secret = secret_of("shippo")
    headers = {"content-type": "application/json"}

    good = relay.client.post(f"/webhooks/shippo?token={secret}", content=body, headers=headers)
    bad = relay.client.post("/webhooks/shippo?token=guess", content=body, headers=headers)

    assert good.status_code == 202, good.text
    assert bad.status_code == 401
    assert secret not in relay.log()
    assert json.dumps(secret) not in relay.log()
    assert "/webhooks/shippo?token=[redacted]" in relay.log()  # the access line is there


def test_order_references_in_payloads_register_their_shipments(tmp_path: Path) -> None:
    """With a carrier's reference settings, its webhooks reach VTEX with no registration at all:
    Intelipost names the order and invoice in two fields, Shippo's metadata in one string."""
    vtex = VtexStandIn()
    env = {
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_ACCOUNT": "teststore",
        "RELAY_VTEX_APP_KEY": "key-references-e2e",
        "RELAY_VTEX_APP_TOKEN": "token-references-e2e",
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
        "RELAY_CARRIERS__INTELIPOST__SECRET": secret_of("intelipost"),
        "RELAY_CARRIERS__INTELIPOST__ORDER_ID_FROM": "order_number",
        "RELAY_CARRIERS__INTELIPOST__INVOICE_NUMBER_FROM": "invoice_number",
        "RELAY_CARRIERS__SHIPPO__SECRET": secret_of("shippo"),
        "RELAY_CARRIERS__SHIPPO__ORDER_ID_FROM": "metadata",
        "RELAY_CARRIERS__SHIPPO__REFERENCE_PATTERN": (
            r"(?P<order_id>\d{13}-\d{2})\D+(?P<invoice_number>\d+)"
        ),
    }
    intelipost = json.loads(fixture_path("intelipost", "delivered").read_bytes())
    shippo = json.loads(fixture_path("shippo", "delivered").read_bytes())
    shippo_order = f"{uuid.uuid4().int % 10**13:013d}-01"
    shippo["data"]["metadata"] = f"Pedido {shippo_order} / NF 99120"
    intelipost_order = f"{uuid.uuid4().int % 10**13:013d}-01"
    intelipost["order_number"] = intelipost_order

    with vtex, RelayProcess(tmp_path, env) as relay:
        for carrier, payload in (("intelipost", intelipost), ("shippo", shippo)):
            body = json.dumps(payload).encode()
            answer = relay.client.post(
                f"/webhooks/{carrier}",
                content=body,
                headers=SIGNERS[carrier](secret_of(carrier), body),
            )
            assert answer.status_code == 202, answer.text

        vtex.wait_for(
            lambda v: bool(
                v.puts(f"/orders/{shippo_order}/") and v.puts(f"/orders/{intelipost_order}/")
            )
        )
    [to_shippo_order] = vtex.puts(f"/orders/{shippo_order}/")
    assert to_shippo_order.path.endswith(f"/{shippo_order}/invoice/99120/tracking")
    [to_intelipost_order] = vtex.puts(f"/orders/{intelipost_order}/")
    invoice = intelipost["invoice"]["invoice_number"]
    assert to_intelipost_order.path.endswith(f"/{intelipost_order}/invoice/{invoice}/tracking")
