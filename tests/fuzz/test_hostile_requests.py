"""Hostile paths and headers (SPEC §12) to ``relay serve``, sent byte for byte on a socket.

Path parameters of any length or value (an id past 64 bits is 404 or 422, never an
overflow), query parameters, and header values with odd bytes, on every route that reads
them, with and without the admin token: never a 5xx, every error JSON ``{"error",
"detail"}``, nothing in the relay's log that says it crashed, and the relay still serving.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import fixtures, fuzz_settings
from tests.fuzz.relay import (
    ADMIN,
    EASYPOST_SECRET,
    GENERIC_SECRET,
    HOOK_SECRET,
    Answer,
    Findings,
    assert_clear,
    assert_still_serving,
    exchange,
    log_failures,
    log_mark,
    send_raw,
    shown,
)
from tests.support.relay_process import RelayProcess
from tests.support.signing import easypost_headers, standard_webhooks_headers

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

FUZZ = fuzz_settings(max_examples=400)

JSON = {b"Content-Type": b"application/json"}
ADMIN_HEADER = {b"Authorization": b"Bearer " + ADMIN.encode()}
REGISTRATION = json.dumps({"orderId": "1400123450001-01", "invoiceNumber": "000104233"}).encode()
GENERIC_BODY = json.dumps(fixtures("generic")[0]).encode()
NOTIFICATION = json.dumps(
    {"Domain": "Fulfillment", "OrderId": "v40251fuzz-01", "State": "invoiced"}
).encode()


def encoded(text: str) -> bytes:
    return quote(text, safe="").encode()


# Path segments, already percent-encoded where they must be (the request stays valid HTTP).
SEGMENTS: dict[str, bytes] = {
    "empty": b"",
    "129-chars": b"X" * 129,
    "10000-chars": b"X" * 10_000,
    "nul": b"%00",
    "nul-inside": b"AB%00CD",
    "ff": b"%FF",
    "encoded-surrogate": b"%ED%A0%80",
    "overlong-slash": b"%C0%AF",
    "controls": b"%01%1F%7F",
    "crlf": b"a%0D%0Ab",
    "space": b"%20",
    "padded": b"%20%20QB204815537BR%20",
    "dot-dot": b"..%2F..%2Fadmin",
    "encoded-slash": b"a%2Fb",
    "percent": b"%25",
    "bad-escape": b"%zz",
    "unicode": encoded("entregá"),
    "emoji": encoded("📦"),
    "rtl-override": encoded("\u202eRB735518402BQ"),
    "zero-width": encoded("QB2048\u200b15537BR"),
    "bom": b"%EF%BB%BF",
    "quote-injection": encoded("1';DROP TABLE shipments;--"),
    "json": encoded('{"a":[1]}'),
    "past-64-bits": b"99999999999999999999999",
    "int64-max-plus-one": b"9223372036854775808",
    "minus-one": b"-1",
    "zero": b"0",
    "float": b"1.5",
    "exponent": b"1e3",
    "5000-digits": b"9" * 5_000,
    "carrier-upper": b"GENERIC",
    "carrier-nul": b"generic%00",
    "carrier-space": b"%20generic",
}


Route = Callable[[bytes], tuple[str, bytes, dict[bytes, bytes], bytes]]

# Each route with the segment in its path or query; "+admin" sends the admin token.
ROUTES: dict[str, Route] = {
    "POST /webhooks/{carrier}": lambda s: ("POST", b"/webhooks/" + s, JSON, GENERIC_BODY),
    "GET /shipments/{n}": lambda s: ("GET", b"/shipments/" + s, {}, b""),
    "GET /shipments/{n} +admin": lambda s: ("GET", b"/shipments/" + s, ADMIN_HEADER, b""),
    "PUT /shipments/{n}": lambda s: ("PUT", b"/shipments/" + s, JSON, REGISTRATION),
    "PUT /shipments/{n} +admin": lambda s: (
        "PUT",
        b"/shipments/" + s,
        JSON | ADMIN_HEADER,
        REGISTRATION,
    ),
    "POST /admin/deliveries/{id}/retry": lambda s: (
        "POST",
        b"/admin/deliveries/" + s + b"/retry",
        {},
        b"",
    ),
    "POST /admin/deliveries/{id}/retry +admin": lambda s: (
        "POST",
        b"/admin/deliveries/" + s + b"/retry",
        ADMIN_HEADER,
        b"",
    ),
    "GET /admin/deliveries?state= +admin": lambda s: (
        "GET",
        b"/admin/deliveries?state=" + s,
        ADMIN_HEADER,
        b"",
    ),
    "GET /admin/deliveries?limit= +admin": lambda s: (
        "GET",
        b"/admin/deliveries?limit=" + s,
        ADMIN_HEADER,
        b"",
    ),
    "GET /admin/quarantine?carrier= +admin": lambda s: (
        "GET",
        b"/admin/quarantine?carrier=" + s,
        ADMIN_HEADER,
        b"",
    ),
    "POST /admin/quarantine/replay?carrier= +admin": lambda s: (
        "POST",
        b"/admin/quarantine/replay?carrier=" + s,
        ADMIN_HEADER,
        b"",
    ),
    "POST /webhooks/shippo?token=": lambda s: (
        "POST",
        b"/webhooks/shippo?token=" + s,
        JSON,
        json.dumps(fixtures("shippo")[0]).encode(),
    ),
}


def send(relay: RelayProcess, route: str, segment: bytes) -> Answer:
    method, target, headers, body = ROUTES[route](segment)
    return send_raw(relay, method, target, headers, body)


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_path_and_query_parameters(relay: RelayProcess, route: str) -> None:
    findings = Findings(relay)
    for name, segment in SEGMENTS.items():
        findings.check(f"{route} with {name}", lambda segment=segment: send(relay, route, segment))
    assert not findings.found, findings.report()
    assert_still_serving(relay)


@pytest.mark.parametrize("delivery_id", ["99999999999999999999999", "9223372036854775808"])
def test_a_delivery_id_past_64_bits_is_404_or_422(relay: RelayProcess, delivery_id: str) -> None:
    """SPEC §12: an id past 64 bits is 404 or 422, never an overflow."""
    answer = send_raw(
        relay, "POST", f"/admin/deliveries/{delivery_id}/retry".encode(), ADMIN_HEADER
    )
    assert answer.status in (404, 422), (answer.status, answer.body)


segments = st.one_of(
    st.binary(max_size=200).map(lambda raw: quote_from_bytes(raw, safe="").encode()),
    st.text(max_size=200).map(encoded),
    st.integers(min_value=-(2**64), max_value=2**200).map(lambda n: str(n).encode()),
    st.sampled_from(list(SEGMENTS.values())),
)


def test_hypothesis_path_and_query_parameters(relay: RelayProcess) -> None:
    @FUZZ
    @given(route=st.sampled_from(list(ROUTES)), segment=segments)
    def check(route: str, segment: bytes) -> None:
        assert_clear(relay, f"{route} with {shown(segment)}", lambda: send(relay, route, segment))

    check()
    assert_still_serving(relay)


# --- Header values -----------------------------------------------------------------------------

# Field values HTTP allows (visible ASCII, obs-text, inner blanks): they reach the relay.
LEGAL_VALUES: dict[str, bytes] = {
    "empty": b"",
    "obs-text": b"\x80\xfe\xff",
    "latin-1": "ação".encode("latin-1"),
    "utf-8": "ação".encode(),
    "cesu-surrogate": b"\xed\xa0\x80",
    "tab-inside": b"a\tb",
    "8000-chars": b"a" * 8_000,
    "past-64-bits": b"99999999999999999999999",
    "minus-one": b"-1",
    "nan": b"NaN",
    "comma-list": b"v1,a v1,b " * 200,
    "quotes": b'"\\"',
}
# Bytes HTTP forbids in a field value: the server must refuse them itself, not crash.
ILLEGAL_VALUES: dict[str, bytes] = {
    "nul": b"a\x00b",
    "controls": b"\x01\x7f",
    "bare-cr": b"a\rb",
    "60000-chars": b"a" * 60_000,
}


def _generic(value: bytes, name: bytes) -> tuple[str, bytes, dict[bytes, bytes], bytes]:
    signed = {
        k.encode(): v.encode()
        for k, v in standard_webhooks_headers(GENERIC_SECRET, GENERIC_BODY).items()
    }
    return "POST", b"/webhooks/generic", signed | {name: value}, GENERIC_BODY


def _easypost(value: bytes) -> tuple[str, bytes, dict[bytes, bytes], bytes]:
    body = json.dumps(fixtures("easypost")[0]).encode()
    signed = {k.encode(): v.encode() for k, v in easypost_headers(EASYPOST_SECRET, body).items()}
    return "POST", b"/webhooks/easypost", signed | {b"x-hmac-signature": value}, body


HeaderRoute = Callable[[bytes], tuple[str, bytes, dict[bytes, bytes], bytes]]

HEADER_ROUTES: dict[str, HeaderRoute] = {
    "Authorization: Bearer <v> on GET /admin/deliveries": lambda v: (
        "GET",
        b"/admin/deliveries",
        {b"Authorization": b"Bearer " + v},
        b"",
    ),
    "Authorization: <v> on PUT /shipments/{n}": lambda v: (
        "PUT",
        b"/shipments/FZHDR0001BR",
        JSON | {b"Authorization": v},
        REGISTRATION,
    ),
    "Authorization: Basic <v> on POST /webhooks/ups/token": lambda v: (
        "POST",
        b"/webhooks/ups/token",
        {b"Content-Type": b"application/x-www-form-urlencoded", b"Authorization": b"Basic " + v},
        b"grant_type=client_credentials",
    ),
    "Authorization: Bearer <v> on POST /webhooks/dhl": lambda v: (
        "POST",
        b"/webhooks/dhl",
        JSON | {b"Authorization": b"Bearer " + v},
        json.dumps(fixtures("dhl")[0]).encode(),
    ),
    "X-Relay-Hook-Token: <v> on POST /vtex/orders-hook": lambda v: (
        "POST",
        b"/vtex/orders-hook",
        JSON | {b"X-Relay-Hook-Token": v},
        NOTIFICATION,
    ),
    "X-Relay-Hook-Token: <secret><v> on POST /vtex/orders-hook": lambda v: (
        "POST",
        b"/vtex/orders-hook",
        JSON | {b"X-Relay-Hook-Token": HOOK_SECRET.encode() + v},
        NOTIFICATION,
    ),
    "webhook-id on POST /webhooks/generic": lambda v: _generic(v, b"webhook-id"),
    "webhook-timestamp on POST /webhooks/generic": lambda v: _generic(v, b"webhook-timestamp"),
    "webhook-signature on POST /webhooks/generic": lambda v: _generic(v, b"webhook-signature"),
    "x-hmac-signature on POST /webhooks/easypost": _easypost,
    "Content-Type on POST /webhooks/aftership": lambda v: (
        "POST",
        b"/webhooks/aftership",
        {b"Content-Type": v},
        json.dumps(fixtures("aftership")[0]).encode(),
    ),
    "Content-Type: application/json; charset=<v> on POST /webhooks/ups": lambda v: (
        "POST",
        b"/webhooks/ups",
        {b"Content-Type": b"application/json; charset=" + v},
        json.dumps(fixtures("ups")[0]).encode(),
    ),
    "X-Request-ID on GET /shipments/{n}": lambda v: (
        "GET",
        b"/shipments/FZHDR0001BR",
        {b"X-Request-ID": v},
        b"",
    ),
    "X-Request-ID on POST /webhooks/nowhere": lambda v: (
        "POST",
        b"/webhooks/nowhere",
        JSON | {b"X-Request-ID": v},
        b"{}",
    ),
}


def send_header(relay: RelayProcess, route: str, value: bytes) -> Answer:
    method, target, headers, body = HEADER_ROUTES[route](value)
    return send_raw(relay, method, target, headers, body)


@pytest.mark.parametrize("route", HEADER_ROUTES)
def test_hostile_header_values(relay: RelayProcess, route: str) -> None:
    findings = Findings(relay)
    for name, value in LEGAL_VALUES.items():
        findings.check(f"{route}, <v> {name}", lambda v=value: send_header(relay, route, v))
    for name, value in ILLEGAL_VALUES.items():
        findings.check(
            f"{route}, <v> {name} (not valid HTTP)",
            lambda v=value: send_header(relay, route, v),
            json_errors=False,
        )
    assert not findings.found, findings.report()
    assert_still_serving(relay)


# Bytes allowed in a field value; leading and trailing blanks are not part of it.
FIELD_BYTES = [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)]
field_values = st.lists(st.sampled_from(FIELD_BYTES), max_size=120).map(
    lambda values: bytes(values).strip(b" \t")
)


def test_hypothesis_header_values(relay: RelayProcess) -> None:
    @FUZZ
    @given(route=st.sampled_from(list(HEADER_ROUTES)), value=field_values)
    def check(route: str, value: bytes) -> None:
        assert_clear(
            relay, f"{route}, <v> = {shown(value)}", lambda: send_header(relay, route, value)
        )

    check()
    assert_still_serving(relay)


def test_request_framing_the_server_refuses(relay: RelayProcess) -> None:
    """Malformed HTTP never reaches the relay's code: uvicorn answers it with a plain-text
    400 or closes the connection. Only that is checked: no 5xx, no crash in the log, and the
    relay keeps serving."""
    requests = {
        "content-length -1": b"POST /webhooks/generic HTTP/1.1\r\nContent-Length: -1",
        "content-length past 64 bits": (
            b"POST /webhooks/generic HTTP/1.1\r\nContent-Length: 99999999999999999999999"
        ),
        "two content-lengths": (
            b"POST /webhooks/generic HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"
        ),
        "bad chunk size": (
            b"POST /webhooks/generic HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz"
        ),
        "raw 0xff in the path": b"GET /shipments/\xff HTTP/1.1",
        "raw space in the path": b"GET /shipments/a b HTTP/1.1",
        "no HTTP version": b"GET /livez",
        "HTTP/9.9": b"GET /livez HTTP/9.9",
        "header without a colon": b"GET /livez HTTP/1.1\r\nno-colon",
        "60000-byte path": b"GET /shipments/" + b"X" * 60_000 + b" HTTP/1.1",
    }
    problems = []
    for name, request in requests.items():
        mark = log_mark(relay)
        try:
            status = exchange(relay, request + b"\r\n\r\n", half_close=True).status
        except OSError:
            status = None  # closing the connection is a fair answer to garbage
        time.sleep(0.05)  # a crash would be logged by now
        failures = log_failures(relay, mark)
        if (status or 0) >= 500 or failures:
            problems.append(f"{name} -> {status}: {failures}")
    assert not problems, "\n".join(problems)
    assert_still_serving(relay)
