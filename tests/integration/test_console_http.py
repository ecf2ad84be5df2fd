"""The console over HTTP, the relay in this process on a real SQLite file: the session
cookie's attributes, sessions shared and ended across two relays on one database, the
console with no token set, refusals without a session, and no secret on any page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from app.settings import Settings
from tests.support.served_app import served_app

ADMIN = "console-admin-secret-1"
VIEWER = "console-viewer-secret-2"
APP_TOKEN = "vtex-app-token-secret-3"
CARRIER_SECRET = "generic-carrier-secret-4"


def settings(tmp_path: Path, **more: str) -> Settings:
    values = {
        "database_url": f"sqlite:///{tmp_path}/relay.db",
        "worker": "false",
        "vtex_account": "shop",
        "vtex_app_key": "vtexappkey-shop",
        "vtex_app_token": APP_TOKEN,
        "carriers": {"generic": {"secret": CARRIER_SECRET}},
        **more,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def sign_in(url: str, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/console/sign-in", data={"token": token}, headers=headers)


def test_the_session_cookie_is_http_only_strict_12_hours_and_secure_behind_https(
    tmp_path: Path,
) -> None:
    with served_app(settings(tmp_path, admin_token=ADMIN)) as url:
        plain = sign_in(url, ADMIN)
        proxied = sign_in(url, ADMIN, **{"X-Forwarded-Proto": "https"})

    assert plain.status_code == 303
    assert plain.headers["location"] == "/console"
    cookie = plain.headers["set-cookie"]
    for attribute in ("HttpOnly", "Max-Age=43200", "Path=/console", "SameSite=strict"):
        assert attribute in cookie
    assert "Secure" not in cookie
    assert "Secure" in proxied.headers["set-cookie"]
    assert ADMIN not in cookie


def test_a_session_works_on_every_relay_and_signing_out_on_one_ends_it_on_all(
    tmp_path: Path,
) -> None:
    shared = settings(tmp_path, admin_token=ADMIN, viewer_token=VIEWER)
    with served_app(shared) as first, served_app(shared) as second:
        cookie = sign_in(first, VIEWER).cookies["relay_console"]
        jar = {"Cookie": f"relay_console={cookie}"}
        on_second = httpx.get(f"{second}/console", headers=jar)
        assert "<h1>Overview</h1>" in on_second.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', on_second.text)
        assert csrf is not None

        signed_out = httpx.post(
            f"{second}/console/sign-out", data={"csrf": csrf.group(1)}, headers=jar
        )

        assert signed_out.status_code == 303
        assert "<h1>Sign in</h1>" in httpx.get(f"{first}/console", headers=jar).text
        assert "<h1>Sign in</h1>" in httpx.get(f"{second}/console", headers=jar).text


def test_changing_a_token_signs_everybody_out(tmp_path: Path) -> None:
    with served_app(settings(tmp_path, admin_token=ADMIN)) as url:
        cookie = sign_in(url, ADMIN).cookies["relay_console"]
    with served_app(settings(tmp_path, admin_token=ADMIN + "-rotated")) as url:
        page = httpx.get(f"{url}/console", headers={"Cookie": f"relay_console={cookie}"})
    assert "<h1>Sign in</h1>" in page.text


def test_with_no_token_set_the_console_says_which_to_set(tmp_path: Path) -> None:
    with served_app(settings(tmp_path)) as url:
        page = httpx.get(f"{url}/console")
        tried = sign_in(url, "anything")

    assert page.status_code == 200
    assert "RELAY_ADMIN_TOKEN" in page.text
    assert "RELAY_VIEWER_TOKEN" in page.text
    assert tried.status_code == 401
    assert "no token to sign in with" in tried.text


def test_pages_send_the_signed_out_to_sign_in_and_actions_refuse_them(tmp_path: Path) -> None:
    with served_app(settings(tmp_path, admin_token=ADMIN)) as url:
        page = httpx.get(f"{url}/console/deliveries")
        action = httpx.post(f"{url}/console/quarantine/replay-all", data={"csrf": "x"})
        wrong = sign_in(url, VIEWER)

    assert (page.status_code, page.headers["location"]) == (303, "/console")
    assert action.status_code == 403
    assert "Sign in first" in action.text
    assert wrong.status_code == 401
    assert "neither the admin nor the viewer token" in wrong.text
    assert VIEWER not in wrong.text


def test_replaying_or_discarding_an_unknown_webhook_is_404(tmp_path: Path) -> None:
    with served_app(settings(tmp_path, admin_token=ADMIN)) as url:
        cookie = sign_in(url, ADMIN).cookies["relay_console"]
        jar = {"Cookie": f"relay_console={cookie}"}
        overview = httpx.get(f"{url}/console", headers=jar).text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', overview)
        assert csrf is not None
        answers = [
            httpx.post(f"{url}{path}", data={"csrf": csrf.group(1), "id": "nope"}, headers=jar)
            for path in ("/console/quarantine/replay", "/console/quarantine/discard")
        ]

    assert [answer.status_code for answer in answers] == [404, 404]
    assert all("No quarantined webhook" in answer.text for answer in answers)


def test_no_page_shows_a_secret(tmp_path: Path) -> None:
    with served_app(settings(tmp_path, admin_token=ADMIN, viewer_token=VIEWER)) as url:
        cookie = sign_in(url, ADMIN).cookies["relay_console"]
        jar = {"Cookie": f"relay_console={cookie}"}
        pages = [
            httpx.get(f"{url}{path}", headers=jar).text
            for path in (
                "/console",
                "/console/deliveries",
                "/console/quarantine",
                "/console/accounts",
                "/console/search?q=x",
                "/console/nowhere",
            )
        ]

    assert "<h1>Accounts</h1>" in pages[3]
    assert "shop" in pages[3]
    for html in pages:
        for secret in (ADMIN, VIEWER, APP_TOKEN, CARRIER_SECRET):
            assert secret not in html
