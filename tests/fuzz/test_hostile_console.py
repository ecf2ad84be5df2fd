"""Hostile input to the console (SPEC §10, §12): path segments, query values, form fields and
session cookies a stranger controls, signed in and not. Never a 5xx, nothing crashed in the
log, every answer with the console's safety headers, and the relay still serving."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import fuzz_settings
from tests.fuzz.relay import ADMIN, Answer, Findings, assert_still_serving, send_raw, shown
from tests.fuzz.test_hostile_requests import SEGMENTS, segments
from tests.support.relay_process import RelayProcess

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

FUZZ = fuzz_settings(max_examples=300)
FORM = {b"Content-Type": b"application/x-www-form-urlencoded"}


def signed_in(relay: RelayProcess) -> tuple[bytes, bytes]:
    """An admin session's cookie header value and its CSRF token."""
    answer = httpx.post(f"{relay.url}/console/sign-in", data={"token": ADMIN})
    assert answer.status_code == 303, answer.text
    cookie = answer.cookies["relay_console"]
    page = httpx.get(f"{relay.url}/console", headers={"Cookie": f"relay_console={cookie}"})
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return b"relay_console=" + cookie.encode(), found.group(1).encode()


Request = tuple[str, bytes, dict[bytes, bytes], bytes]
ConsoleRoute = Callable[[bytes, bytes, bytes], Request]

# Each route with the hostile value ``v`` in its path, query or form; ``c`` is the cookie
# header (a live session, or the hostile value itself), ``t`` the session's CSRF token.
ROUTES: dict[str, ConsoleRoute] = {
    "GET /console/shipments/{v}": lambda v, c, t: ("GET", b"/console/shipments/" + v, {}, b""),
    "GET /console/webhooks/{v}": lambda v, c, t: ("GET", b"/console/webhooks/" + v, {}, b""),
    "GET /console/{v}": lambda v, c, t: ("GET", b"/console/" + v, {}, b""),
    "GET /console/search?q={v}": lambda v, c, t: ("GET", b"/console/search?q=" + v, {}, b""),
    "GET /console/deliveries?...={v}": lambda v, c, t: (
        "GET",
        b"/console/deliveries?state=dead&account=" + v + b"&carrier=" + v + b"&status=" + v,
        {},
        b"",
    ),
    "GET /console/deliveries?since={v}&before={v}": lambda v, c, t: (
        "GET",
        b"/console/deliveries?since=" + v + b"&until=" + v + b"&before=" + v,
        {},
        b"",
    ),
    "GET /console/quarantine?carrier={v}&after={v}": lambda v, c, t: (
        "GET",
        b"/console/quarantine?carrier=" + v + b"&after=" + v,
        {},
        b"",
    ),
    "POST /console/sign-in token={v}": lambda v, c, t: (
        "POST",
        b"/console/sign-in",
        FORM,
        b"token=" + v,
    ),
    "POST /console/deliveries/{v}/retry": lambda v, c, t: (
        "POST",
        b"/console/deliveries/" + v + b"/retry",
        FORM,
        b"csrf=" + t + b"&back=" + v,
    ),
    "POST /console/deliveries/retry-all ...={v}": lambda v, c, t: (
        "POST",
        b"/console/deliveries/retry-all",
        FORM,
        b"csrf=" + t + b"&carrier=" + v + b"&since=" + v + b"&status=" + v,
    ),
    "POST /console/send-again tracking_number={v}": lambda v, c, t: (
        "POST",
        b"/console/send-again",
        FORM,
        b"csrf=" + t + b"&tracking_number=" + v,
    ),
    "POST /console/quarantine/replay id={v}": lambda v, c, t: (
        "POST",
        b"/console/quarantine/replay",
        FORM,
        b"csrf=" + t + b"&id=" + v,
    ),
    "POST /console/quarantine/discard id={v}": lambda v, c, t: (
        "POST",
        b"/console/quarantine/discard",
        FORM,
        b"csrf=" + t + b"&id=" + v,
    ),
    "POST /console/sign-out csrf={v}": lambda v, c, t: (
        "POST",
        b"/console/sign-out",
        FORM,
        b"csrf=" + v,
    ),
}


def send(relay: RelayProcess, route: str, value: bytes, cookie: bytes, csrf: bytes) -> Answer:
    method, target, headers, body = ROUTES[route](value, cookie, csrf)
    return send_raw(relay, method, target, headers | {b"Cookie": cookie}, body)


def unsafe(answer: Answer) -> list[str]:
    """What the answer lacks of the console's safety headers."""
    policy = answer.headers.get("content-security-policy", "")
    problems = []
    if "script-src 'self'" not in policy or "unsafe-inline" in policy:
        problems.append(f"Content-Security-Policy {policy!r}")
    if answer.headers.get("x-frame-options") != "DENY":
        problems.append("no X-Frame-Options: DENY")
    if answer.headers.get("referrer-policy") != "no-referrer":
        problems.append("no Referrer-Policy: no-referrer")
    return problems


class Checked:
    """Findings (5xx, crashes in the log) plus the safety headers of each answer."""

    def __init__(self, relay: RelayProcess) -> None:
        self.findings = Findings(relay)
        self.unsafe: list[str] = []

    def check(self, what: str, request: Callable[[], Answer]) -> None:
        def sent() -> Answer:
            answer = request()
            if problems := unsafe(answer):
                self.unsafe.append(f"{what} -> {answer.status}: {'; '.join(problems)}")
            return answer

        self.findings.check(what, sent, json_errors=False)

    def assert_clear(self) -> None:
        assert not self.findings.found, self.findings.report()
        assert not self.unsafe, "\n".join(self.unsafe[:20])


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_values_on_every_console_route(relay: RelayProcess, route: str) -> None:
    cookie, csrf = signed_in(relay)
    checked = Checked(relay)
    for name, value in SEGMENTS.items():
        checked.check(f"{route} with {name}", lambda v=value: send(relay, route, v, cookie, csrf))
        checked.check(
            f"{route} with {name}, signed out",
            lambda v=value: send(relay, route, v, b"relay_console=" + v, v),
        )
    checked.assert_clear()
    assert_still_serving(relay)


def test_hypothesis_console_values_and_cookies(relay: RelayProcess) -> None:
    cookie, csrf = signed_in(relay)
    cookies = st.one_of(
        st.just(cookie),
        st.binary(max_size=300).map(lambda raw: b"relay_console=" + quote_from_bytes(raw).encode()),
        st.sampled_from(
            [
                cookie + b"0",
                cookie.replace(b".", b"", 1),
                cookie.rsplit(b".", 1)[0] + b"." + b"0" * 64,
                b"relay_console=a.99999999999999999999999." + b"0" * 64,
                b"relay_console=" + b"x" * 5000,
            ]
        ),
    )

    @FUZZ
    @given(route=st.sampled_from(list(ROUTES)), value=segments, session=cookies)
    def check(route: str, value: bytes, session: bytes) -> None:
        checked = Checked(relay)
        checked.check(
            f"{route} with {shown(value)}, cookie {shown(session)}",
            lambda: send(relay, route, value, session, csrf),
        )
        checked.assert_clear()

    check()
    assert_still_serving(relay)
