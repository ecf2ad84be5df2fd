"""The spine end to end: ``relay serve`` as a process, a real local server playing VTEX."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.signing import aftership_headers, easypost_headers, standard_webhooks_headers
from tests.support.vtex_standin import VtexStandIn

pytestmark = pytest.mark.e2e

ADMIN = "admin-token-e2e"
GENERIC_SECRET = "whsec_" + "c3VwZXItc2VjcmV0LWtleS1mb3ItdGVzdHM="
AFTERSHIP_SECRET = "aftership-secret-e2e"
EASYPOST_SECRET = "sécret-easypost"
APP_KEY = "vtexappkey-e2e-KEY"
APP_TOKEN = "vtex-app-token-e2e-SECRET"


@pytest.fixture(scope="module")
def vtex() -> Iterator[VtexStandIn]:
    with VtexStandIn() as standin:
        yield standin


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relay(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, vtex: VtexStandIn
) -> Iterator[RelayProcess]:
    """The relay on its default SQLite file, and on a PostgreSQL schema of its own."""
    env = {
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_ACCOUNT": "teststore",
        "RELAY_VTEX_APP_KEY": APP_KEY,
        "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
        "RELAY_VTEX_TIMEZONE": "America/Sao_Paulo",
        "RELAY_CARRIER_DEFAULT_TIMEZONE": "America/Sao_Paulo",
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
        "RELAY_CARRIERS__AFTERSHIP__SECRET": AFTERSHIP_SECRET,
        "RELAY_CARRIERS__EASYPOST__SECRET": EASYPOST_SECRET,
        "RELAY_MAX_BODY_BYTES": "65536",
        "RELAY_VTEX_COALESCE_WINDOW": "0.2s",
    }
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        yield stack.enter_context(RelayProcess(tmp_path_factory.mktemp("relay"), env))


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def post(relay: RelayProcess, carrier: str, payload: Any, sign: Any, secret: str) -> Any:
    body = json.dumps(payload).encode()
    return relay.client.post(f"/webhooks/{carrier}", content=body, headers=sign(secret, body))


def register(relay: RelayProcess, tracking: str, order_id: str, invoice: str) -> Any:
    return relay.client.put(
        f"/shipments/{tracking}",
        json={"orderId": order_id, "invoiceNumber": invoice},
        headers=relay.admin(ADMIN),
    )


def puts_for(vtex: VtexStandIn, order_id: str) -> list[Any]:
    return vtex.puts(f"/orders/{order_id}/")


def aftership_payload(tracking: str, checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": "tracking_update",
        "event_id": str(uuid.uuid4()),
        "msg": {
            "tracking_number": tracking,
            "slug": "correios",
            "tag": "InTransit",
            "checkpoints": checkpoints,
        },
        "ts": 1764000000,
    }


def easypost_payload(tracking: str, details: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "Event",
        "id": "evt_" + uuid.uuid4().hex,
        "description": "tracker.updated",
        "result": {
            "object": "Tracker",
            "tracking_code": tracking,
            "status": details[-1]["status"],
            "tracking_details": details,
            "public_url": f"https://track.easypost.com/{tracking}",
        },
    }


def easypost_detail(
    when: str, status: str, message: str, city: str | None, state: str | None
) -> dict[str, Any]:
    return {
        "object": "TrackingDetail",
        "message": message,
        "status": status,
        "datetime": when,
        "tracking_location": {"object": "TrackingLocation", "city": city, "state": state},
    }


def test_three_carriers_reach_vtex_with_receipts(relay: RelayProcess, vtex: VtexStandIn) -> None:
    generic_tn, aftership_tn, easypost_tn = unique("GN"), unique("AS"), unique("EP")
    generic_order, aftership_order, easypost_order = (f"{unique('')}-01" for _ in range(3))
    assert register(relay, aftership_tn, aftership_order, "NF-2001").status_code == 201
    assert register(relay, easypost_tn, easypost_order, "NF-3001").status_code == 201

    generic = {
        "trackingNumber": generic_tn,
        "orderId": generic_order,
        "invoiceNumber": "000030711",
        "events": [  # newest first on purpose: VTEX must get them oldest first
            {
                "time": "2026-11-23T14:05:00-03:00",
                "status": "delivered",
                "description": "  Entregue ao destinatário  ",
                "city": "Curitiba",
                "state": "PR",
            },
            {
                "time": "2026-11-21T23:30:00-03:00",
                "status": "in_transit",
                "description": "Em trânsito",
                "city": "Curitiba",
                "state": "PR",
            },
            {
                "time": "2026-11-20T09:15:00-03:00",
                "status": "info_received",
                "description": "Objeto postado",
                "city": None,
                "state": None,
            },
        ],
    }
    answer = post(relay, "generic", generic, standard_webhooks_headers, GENERIC_SECRET)
    assert answer.status_code == 202, answer.text
    assert answer.json()["events"] == 3
    assert answer.json()["duplicates"] == 0

    aftership = aftership_payload(
        aftership_tn,
        [
            {
                "checkpoint_time": "2026-11-20T10:00:00",
                "tag": "InfoReceived",
                "subtag": "InfoReceived_001",
                "message": "Label created",
                "city": None,
                "state": None,
                "location": None,
            },
            {
                "checkpoint_time": "2026-11-21T01:00:00+00:00",
                "tag": "InTransit",
                "subtag": "InTransit_002",
                "message": "Picked up",
                "city": None,
                "state": None,
                "location": "CAJAMAR SP",
            },
        ],
    )
    answer = post(relay, "aftership", aftership, aftership_headers, AFTERSHIP_SECRET)
    assert answer.status_code == 202, answer.text

    easypost = easypost_payload(
        easypost_tn,
        [
            easypost_detail("2026-11-20T12:00:00Z", "pre_transit", "Label created", None, None),
            easypost_detail(
                "2026-11-22T02:59:00Z",
                "out_for_delivery",
                "Out for delivery",
                "Rio de Janeiro",
                "RJ",
            ),
        ],
    )
    answer = post(relay, "easypost", easypost, easypost_headers, EASYPOST_SECRET)
    assert answer.status_code == 202, answer.text

    vtex.wait_for(
        lambda v: all(puts_for(v, o) for o in (generic_order, aftership_order, easypost_order))
    )
    expected = {
        generic_order: (
            f"/api/oms/pvt/orders/{generic_order}/invoice/000030711/tracking",
            {
                "isDelivered": True,
                "deliveredDate": "2026-11-23 14:05",
                "events": [
                    {
                        "city": "",
                        "state": "",
                        "description": "Objeto postado",
                        "date": "2026-11-20",
                    },
                    {
                        "city": "Curitiba",
                        "state": "PR",
                        "description": "Em trânsito",
                        "date": "2026-11-21",
                    },
                    {
                        "city": "Curitiba",
                        "state": "PR",
                        "description": "Entregue ao destinatário",
                        "date": "2026-11-23",
                    },
                ],
            },
        ),
        aftership_order: (
            f"/api/oms/pvt/orders/{aftership_order}/invoice/NF-2001/tracking",
            {
                "isDelivered": False,
                "deliveredDate": None,
                "events": [
                    {"city": "", "state": "", "description": "Label created", "date": "2026-11-20"},
                    {
                        "city": "CAJAMAR SP",
                        "state": "",
                        "description": "Picked up",
                        "date": "2026-11-20",
                    },
                ],
            },
        ),
        easypost_order: (
            f"/api/oms/pvt/orders/{easypost_order}/invoice/NF-3001/tracking",
            {
                "isDelivered": False,
                "deliveredDate": None,
                "events": [
                    {"city": "", "state": "", "description": "Label created", "date": "2026-11-20"},
                    {
                        "city": "Rio de Janeiro",
                        "state": "RJ",
                        "description": "Out for delivery",
                        "date": "2026-11-21",
                    },
                ],
            },
        ),
    }
    for order_id, (path, body) in expected.items():
        [put] = puts_for(vtex, order_id)
        assert put.path == path
        assert put.headers["x-vtex-api-appkey"] == APP_KEY
        assert put.headers["x-vtex-api-apptoken"] == APP_TOKEN
        assert put.headers["accept"] == "application/json"
        assert put.headers["content-type"] == "application/json"
        assert put.body == body

    receipts = {recorded.path: answer.body for recorded, answer in vtex.tracking_answers()}
    shipments = {tn: wait_for_receipt(relay, tn) for tn in (generic_tn, aftership_tn, easypost_tn)}
    log_records = relay.log_records()
    carrier_of = {
        generic_order: "generic",
        aftership_order: "aftership",
        easypost_order: "easypost",
    }
    for tracking, order_id in (
        (generic_tn, generic_order),
        (aftership_tn, aftership_order),
        (easypost_tn, easypost_order),
    ):
        sent = receipts[expected[order_id][0]]
        shipment = shipments[tracking]
        assert shipment["orderId"] == order_id
        assert shipment["deliveries"][0]["receipt"] == sent
        assert shipment["lastBody"] == expected[order_id][1]
        [line] = [
            r
            for r in log_records
            if r.get("event") == "delivery.delivered" and r.get("orderId") == order_id
        ] or [None]
        assert line is not None, "no delivery line in the log"
        assert line["receipt"] == sent["receipt"]
        assert line["date"] == sent["date"]
        assert line["invoiceNumber"] == expected[order_id][0].split("/")[7]
        assert line["carrier"] == carrier_of[order_id]
    log_text = relay.log()
    for secret in (APP_TOKEN, AFTERSHIP_SECRET, GENERIC_SECRET, ADMIN):
        assert secret not in log_text


def wait_for_receipt(relay: RelayProcess, tracking: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shipment = relay.client.get(f"/shipments/{tracking}", headers=relay.admin(ADMIN)).json()
        if shipment["deliveries"] and shipment["deliveries"][0]["receipt"]:
            return dict(shipment)
        time.sleep(0.05)
    raise AssertionError(f"no receipt for {tracking}")


def settle(vtex: VtexStandIn, order_id: str, count: int) -> list[Any]:
    """Wait for ``count`` PUTs for the order, then a moment more to catch any extra one."""
    import time

    vtex.wait_for(lambda v: len(puts_for(v, order_id)) >= count)
    time.sleep(1.0)
    return puts_for(vtex, order_id)


def test_resent_webhook_adds_nothing_and_history_plus_one_adds_one_put(
    relay: RelayProcess, vtex: VtexStandIn
) -> None:
    tracking, order_id = unique("EP"), f"{unique('')}-01"
    register(relay, tracking, order_id, "NF-1")
    details = [
        easypost_detail("2026-11-20T12:00:00Z", "pre_transit", "Label created", None, None),
        easypost_detail("2026-11-21T08:00:00Z", "in_transit", "Arrived at hub", "Cajamar", "SP"),
    ]
    first = post(
        relay, "easypost", easypost_payload(tracking, details), easypost_headers, EASYPOST_SECRET
    )
    assert first.json()["events"] == 2
    assert len(settle(vtex, order_id, 1)) == 1

    again = post(
        relay, "easypost", easypost_payload(tracking, details), easypost_headers, EASYPOST_SECRET
    )
    assert again.status_code == 202
    assert (again.json()["events"], again.json()["duplicates"]) == (0, 2)
    assert len(settle(vtex, order_id, 1)) == 1, "a resent webhook caused a PUT"

    details.append(
        easypost_detail("2026-11-22T15:30:00Z", "delivered", "Delivered", "Santos", "SP")
    )
    more = post(
        relay, "easypost", easypost_payload(tracking, details), easypost_headers, EASYPOST_SECRET
    )
    assert (more.json()["events"], more.json()["duplicates"]) == (1, 2)
    puts = settle(vtex, order_id, 2)
    assert len(puts) == 2
    assert [e["description"] for e in puts[1].body["events"]] == [
        "Label created",
        "Arrived at hub",
        "Delivered",
    ]
    assert puts[1].body["isDelivered"] is True
    assert puts[1].body["deliveredDate"] == "2026-11-22 12:30"


def test_events_for_an_unregistered_shipment_wait_for_registration(
    relay: RelayProcess, vtex: VtexStandIn
) -> None:
    tracking, order_id = unique("AS"), f"{unique('')}-01"
    checkpoint = {
        "checkpoint_time": "2026-11-21T10:00:00-03:00",
        "tag": "InTransit",
        "message": "In transit",
        "city": "Campinas",
        "state": "SP",
    }
    answer = post(
        relay,
        "aftership",
        aftership_payload(tracking, [checkpoint]),
        aftership_headers,
        AFTERSHIP_SECRET,
    )
    assert answer.json()["events"] == 1
    waiting = relay.client.get(f"/shipments/{tracking}", headers=relay.admin(ADMIN)).json()
    assert waiting["registered"] is False
    assert [e["description"] for e in waiting["events"]] == ["In transit"]
    assert puts_for(vtex, order_id) == []

    assert register(relay, tracking, order_id, "55").status_code == 201
    [put] = settle(vtex, order_id, 1)
    assert put.path == f"/api/oms/pvt/orders/{order_id}/invoice/55/tracking"
    assert put.body["events"] == [
        {"city": "Campinas", "state": "SP", "description": "In transit", "date": "2026-11-21"}
    ]
    assert register(relay, tracking, order_id, "55").status_code == 200


@pytest.mark.parametrize(
    ("carrier", "body", "headers", "status", "error"),
    [
        ("generic", b"{not json", "signed", 415, "unsupported_media_type"),
        ("generic", b'{"trackingNumber": "X"}', "wrong", 401, "unauthorized"),
        ("generic", b'{"trackingNumber": "X"}', "none", 401, "unauthorized"),
        ("dhl-nope", b"{}", "signed", 404, "not_found"),
        ("generic", b'{"pad": "' + b"x" * 70000 + b'"}', "signed", 413, "payload_too_large"),
        ("generic", b'{"trackingNumber": "X", "events": "soon"}', "signed", 422, "unprocessable"),
        ("generic", b"[1, 2]", "signed", 422, "unprocessable"),
        (
            "generic",
            b'{"trackingNumber": "X", "events": []}',
            "text",
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_bad_input_gets_a_clear_json_error(
    relay: RelayProcess, carrier: str, body: bytes, headers: str, status: int, error: str
) -> None:
    signed = standard_webhooks_headers(GENERIC_SECRET, body)
    chosen = {
        "signed": signed,
        "wrong": standard_webhooks_headers("whsec_d3Jvbmc=", body),
        "none": {"content-type": "application/json"},
        "text": signed | {"content-type": "text/plain"},
    }[headers]
    answer = relay.client.post(f"/webhooks/{carrier}", content=body, headers=chosen)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["detail"]
    assert GENERIC_SECRET not in answer.text
