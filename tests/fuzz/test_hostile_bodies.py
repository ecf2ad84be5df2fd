"""Hostile bodies (SPEC §12) to every route that reads one, over HTTP to ``relay serve``.

Every built-in carrier's webhook (signed for ``generic`` and ``easypost``, unsigned for the
others), VTEX's orders hook with and without its token, UPS's token endpoint, and the shipment
registry: never a 5xx, every error JSON ``{"error", "detail"}``, and nothing in the relay's log
that says it crashed. Each route first gets a named corpus (every case is tried, every failing
one is listed), then hypothesis (derandomized: the same examples on every run).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import (
    NOT_VALUES,
    VALUES,
    duplicated_first_key,
    encodings,
    fixtures,
    fuzz_settings,
    hostile_bodies,
    hostile_values,
    locations,
    with_value,
)
from tests.fuzz.relay import (
    CARRIERS,
    HOOK_HEADER,
    HOOK_SECRET,
    Answer,
    Findings,
    admin,
    assert_clear,
    assert_still_serving,
    shown,
    webhook_headers,
)
from tests.support.relay_process import RelayProcess

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]


# The generic format with room for hostile values, and where EasyPost's Event keeps its own.
GENERIC_EVENT = {
    "trackingNumber": "FZ000000001BR",
    "events": [
        {
            "time": "2026-11-20T09:15:00Z",
            "status": "in_transit",
            "description": "Objeto em trânsito",
            "city": "Curitiba",
            "state": "PR",
        }
    ],
}
GENERIC_PLACES = [
    ("trackingNumber",),
    ("events", 0, "description"),
    ("events", 0, "city"),
    ("events", 0, "state"),
    ("events", 0, "time"),
    ("events", 0, "status"),
    ("events", 0),
    ("events",),
]
EASYPOST_PLACES = [
    ("result", "tracking_code"),
    ("result", "tracking_details", 0, "message"),
    ("result", "tracking_details", 0, "description"),
    ("result", "tracking_details"),
]
INSIDE: dict[str, tuple[Any, list[tuple[str | int, ...]]]] = {
    "generic": (GENERIC_EVENT, GENERIC_PLACES),
    "easypost": (fixtures("easypost")[0], EASYPOST_PLACES),
}

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "application/vnd.carrier+json",
    "text/plain",
    "",
]


def post_webhook(
    relay: RelayProcess, carrier: str, body: bytes, content_type: str = "application/json"
) -> Answer:
    return Answer.of(
        relay.client.post(
            f"/webhooks/{carrier}",
            content=body,
            headers=webhook_headers(carrier, body, content_type),
        )
    )


def carrier_corpus(carrier: str) -> dict[str, bytes]:
    """Named bodies for one carrier: hostile values alone, its own payload re-encoded, a
    duplicated key, and hostile values inside its payload where the carrier keeps text."""
    base = fixtures(carrier)[0]
    corpus = {f"body {name}": body for name, body in (VALUES | NOT_VALUES).items()}
    corpus |= {f"payload as {name}": body for name, body in encodings(base).items()}
    corpus |= {
        f"payload with its first key repeated as {name}": duplicated_first_key(base, VALUES[name])
        for name in ("escaped-nul", "raw-high-surrogate", "object-1000-deep", "int-5000-digits")
    }
    if carrier in INSIDE:
        payload, places = INSIDE[carrier]
        for place in places:
            for name, value in VALUES.items():
                corpus[f"{'.'.join(map(str, place))} = {name}"] = with_value(payload, place, value)
    return corpus


@pytest.mark.parametrize("carrier", CARRIERS)
def test_hostile_corpus_to_every_carrier(relay: RelayProcess, carrier: str) -> None:
    findings = Findings(relay)
    for name, body in carrier_corpus(carrier).items():
        findings.check(
            f"POST /webhooks/{carrier} {name}", lambda body=body: post_webhook(relay, carrier, body)
        )
    assert not findings.found, findings.report()
    assert_still_serving(relay)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_hypothesis_bodies_to_every_carrier(relay: RelayProcess, carrier: str) -> None:
    @fuzz_settings(max_examples=150)
    @given(body=hostile_bodies(fixtures(carrier)), content_type=st.sampled_from(CONTENT_TYPES))
    def check(body: bytes, content_type: str) -> None:
        assert_clear(
            relay,
            f"POST /webhooks/{carrier} content-type={content_type!r} body={shown(body)}",
            lambda: post_webhook(relay, carrier, body, content_type),
        )

    check()
    assert_still_serving(relay)


# --- VTEX's orders hook ----------------------------------------------------------------------

NOTIFICATION = {
    "Domain": "Fulfillment",
    "OrderId": "v40251fuzz-01",
    "State": "invoiced",
    "LastState": "ready-for-handling",
    "LastChange": "2026-11-20T09:15:00.0000000Z",
    "CurrentChange": "2026-11-20T09:16:00.0000000Z",
    "Origin": {"Account": "fuzzstore", "Key": "vtexappkey-fuzz-KEY"},
}
PING = {"hookConfig": "ping"}


def post_hook(relay: RelayProcess, body: bytes, token: bool) -> Answer:
    headers = {"content-type": "application/json"}
    if token:
        headers[HOOK_HEADER] = HOOK_SECRET
    return Answer.of(relay.client.post("/vtex/orders-hook", content=body, headers=headers))


def hook_corpus() -> dict[str, bytes]:
    corpus = {f"body {name}": body for name, body in (VALUES | NOT_VALUES).items()}
    for payload in (NOTIFICATION, PING):
        corpus |= {
            f"{next(iter(payload))}-payload as {name}": body
            for name, body in encodings(payload).items()
        }
        for place in locations(payload):
            for name, value in VALUES.items():
                corpus[f"{'.'.join(map(str, place))} = {name}"] = with_value(payload, place, value)
    return corpus


@pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
def test_hostile_corpus_to_the_orders_hook(relay: RelayProcess, token: bool) -> None:
    findings = Findings(relay)
    for name, body in hook_corpus().items():
        findings.check(
            f"POST /vtex/orders-hook ({'token' if token else 'no token'}) {name}",
            lambda body=body: post_hook(relay, body, token),
        )
    assert not findings.found, findings.report()
    assert_still_serving(relay)


def test_hypothesis_bodies_to_the_orders_hook(relay: RelayProcess) -> None:
    @fuzz_settings(max_examples=300)
    @given(body=hostile_bodies([NOTIFICATION, PING]), token=st.booleans())
    def check(body: bytes, token: bool) -> None:
        assert_clear(
            relay,
            f"POST /vtex/orders-hook token={token} body={shown(body)}",
            lambda: post_hook(relay, body, token),
        )

    check()
    assert_still_serving(relay)


# --- UPS's token endpoint: a form, not JSON ----------------------------------------------------

form_values = st.binary(max_size=40).map(lambda raw: raw.replace(b"&", b"").replace(b"=", b""))


def test_hypothesis_forms_to_the_ups_token_endpoint(relay: RelayProcess) -> None:
    @fuzz_settings(max_examples=200)
    @given(
        body=st.binary(max_size=300)
        | st.lists(
            st.tuples(
                st.sampled_from([b"grant_type", b"client_id", b"client_secret", b"%ff", b""]),
                st.sampled_from([b"client_credentials", b"%00", b"%ed%a0%80", b"%ff"])
                | form_values,
            ),
            max_size=5,
        ).map(lambda pairs: b"&".join(name + b"=" + value for name, value in pairs)),
        authorization=st.none()
        | st.sampled_from(["Basic", "Basic !!!", "Basic w4k=", "Basic Og==", "Bearer x"]),
    )
    def check(body: bytes, authorization: str | None) -> None:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if authorization is not None:
            headers["authorization"] = authorization
        assert_clear(
            relay,
            f"POST /webhooks/ups/token authorization={authorization!r} body={shown(body)}",
            lambda: Answer.of(
                relay.client.post("/webhooks/ups/token", content=body, headers=headers)
            ),
        )

    check()
    assert_still_serving(relay)


# --- The shipment registry: admin, JSON body ---------------------------------------------------

REGISTRATION = {
    "orderId": "1400123450001-01",
    "invoiceNumber": "000104233",
    "carrier": "generic",
    "account": "fuzzstore",
}


def put_shipment(relay: RelayProcess, body: bytes, token: bool) -> Answer:
    headers = {"content-type": "application/json"} | (admin() if token else {})
    return Answer.of(relay.client.put("/shipments/FZSHIP0001BR", content=body, headers=headers))


def registration_corpus() -> dict[str, bytes]:
    corpus = {f"body {name}": body for name, body in (VALUES | NOT_VALUES).items()}
    for place in locations(REGISTRATION):
        for name, value in VALUES.items():
            corpus[f"{place[0]} = {name}"] = with_value(REGISTRATION, place, value)
    return corpus


def test_hostile_registrations_with_the_admin_token(relay: RelayProcess) -> None:
    findings = Findings(relay)
    for name, body in registration_corpus().items():
        findings.check(
            f"PUT /shipments/FZSHIP0001BR {name}", lambda body=body: put_shipment(relay, body, True)
        )
    assert not findings.found, findings.report()
    assert_still_serving(relay)


def test_hostile_registrations_without_a_token_are_refused_before_reading(
    relay: RelayProcess,
) -> None:
    """SPEC §12: authentication is checked before the body is parsed on admin routes."""
    wrong = []
    for name, body in registration_corpus().items():
        answer = put_shipment(relay, body, False)
        if answer.status != 401:
            wrong.append(f"{name} -> {answer.status} {answer.body[:120]!r}")
    assert not wrong, f"{len(wrong)} bodies were read before the token was checked:\n" + "\n".join(
        wrong
    )


def test_hypothesis_registrations(relay: RelayProcess) -> None:
    @fuzz_settings(max_examples=200)
    @given(
        body=st.one_of(
            st.sampled_from(list(locations(REGISTRATION))).flatmap(
                lambda place: hostile_values().map(lambda v: with_value(REGISTRATION, place, v))
            ),
            hostile_bodies([REGISTRATION]),
        )
    )
    def check(body: bytes) -> None:
        assert_clear(
            relay,
            f"PUT /shipments/FZSHIP0001BR body={shown(body)}",
            lambda: put_shipment(relay, body, True),
        )

    check()
    assert_still_serving(relay)


def test_registered_hostile_identifiers_read_back(relay: RelayProcess) -> None:
    """What the registry accepted (2xx) can be read back without a 5xx."""
    findings = Findings(relay)
    for name in ("escaped-controls", "raw-controls", "escaped-nul", "raw-high-surrogate"):
        body = with_value(REGISTRATION, ("orderId",), VALUES[name])
        put = put_shipment(relay, body, True)
        if put.status < 300:
            findings.check(
                f"GET /shipments/FZSHIP0001BR after orderId = {name}",
                lambda: Answer.of(relay.client.get("/shipments/FZSHIP0001BR", headers=admin())),
            )
    assert not findings.found, findings.report()
    assert_still_serving(relay)
