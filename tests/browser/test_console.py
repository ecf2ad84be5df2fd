"""The operator console (SPEC §10) in Debian's Chromium, against ``relay serve`` and a VTEX
stand-in: signing in and out, search, a shipment's page, retries, quarantine replay,
hostile payloads, CSRF and roles, 375 px, and the safety headers of every answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support import patched_relay
from tests.support.console_browser import (
    ADMIN,
    VIEWER,
    generic_payload,
    lacking_safety_headers,
    post_generic,
    post_melhor_envio,
    relay_env,
    reload_until,
    screenshot,
    sign_in,
    unique,
    watch_headers,
)
from tests.support.relay_process import RelayProcess
from tests.support.vtex_standin import Answer, Recorded, VtexStandIn, receipt_for

pytestmark = pytest.mark.browser


@dataclass
class Scene:
    relay: RelayProcess
    vtex: VtexStandIn
    refused_orders: set[str]
    """Orders whose tracking PUT the stand-in answers 400."""
    env: dict[str, str]


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    refused: set[str] = set()
    with VtexStandIn() as vtex:

        def respond(recorded: Recorded) -> Answer:
            if any(order in recorded.path for order in refused):
                return Answer(400, {"error": {"message": "Invalid tracking"}})
            return receipt_for(recorded.path)

        vtex.responder = respond
        env = relay_env(vtex.url)
        with RelayProcess(tmp_path, env) as relay:
            yield Scene(relay, vtex, refused, env)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def delivered(scene: Scene, order_id: str) -> bool:
    return any(
        order_id in put.path
        for put, answer in scene.vtex.tracking_answers()
        if answer.status == 200
    )


# -- signing in and out --------------------------------------------------------------------


def test_admin_and_viewer_sign_in_a_wrong_token_is_an_error_and_sign_out_ends_it(
    scene: Scene, page: Page, tmp_path: Path
) -> None:
    relay = scene.relay
    seen = watch_headers(page, relay)
    page.goto(f"{relay.url}/console")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.get_by_label("Token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    assert "neither the admin nor the viewer token" in page.get_by_role("alert").inner_text()
    assert "Traceback" not in page.content()

    sign_in(page, relay, VIEWER)
    assert page.locator(".role").inner_text() == "viewer"
    for name in ("Overview", "Deliveries", "Quarantine", "Accounts"):
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    [cookie] = [c for c in page.context.cookies() if c["name"] == "relay_console"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    screenshot(page, tmp_path, "overview-viewer")

    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    assert "You are signed out" in page.inner_text("main")
    # The old cookie, replayed, no longer opens anything.
    old = httpx.get(f"{relay.url}/console", cookies={"relay_console": cookie["value"]})
    assert "<h1>Sign in</h1>" in old.text

    sign_in(page, relay, ADMIN)
    assert page.locator(".role").inner_text() == "admin"
    assert lacking_safety_headers(seen) == []


# -- search and the shipment page ------------------------------------------------------------


def test_search_finds_a_shipment_by_number_alias_and_order_and_a_webhook_by_id(
    scene: Scene, page: Page
) -> None:
    relay = scene.relay
    tracking, order_id = unique("SR"), unique("ORD")
    answer = post_generic(relay, generic_payload(tracking, order_id, "NF-1", ["Saiu do CD"]))
    assert answer.status_code == 202, answer.text
    webhook_id = answer.json()["webhook_id"]
    label, code = str(__import__("uuid").uuid4()), unique("AA")
    assert post_melhor_envio(relay, label, code).status_code == 202
    sign_in(page, relay, ADMIN)

    def search(text: str, found: str) -> str:
        """Search, open what was found, and answer the heading of its page."""
        page.get_by_label("Search").fill(text)
        page.get_by_role("button", name="Search", exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == "Search"
        page.get_by_role("link", name=found).click()
        return page.get_by_role("heading", level=1).inner_text()

    assert search(tracking, f"Shipment {tracking}") == f"Shipment {tracking}"
    assert search(order_id, f"Shipment {tracking}") == f"Shipment {tracking}"
    assert search(code, f"Shipment {label}") == f"Shipment {label}"
    assert code in page.inner_text("main")  # its aliases are listed
    assert search(webhook_id, f"Webhook {webhook_id}") == f"Webhook {webhook_id}"
    page.get_by_label("Search").fill("nothing-like-this")
    page.get_by_role("button", name="Search", exact=True).click()
    assert "Nothing found" in page.inner_text("main")


def test_a_shipment_page_shows_events_in_order_the_last_body_attempts_and_receipt(
    scene: Scene, page: Page
) -> None:
    relay = scene.relay
    tracking, order_id = unique("SH"), unique("ORD")
    payload = generic_payload(tracking, order_id, "NF-2", ["Postado", "Em trânsito", "Saiu"])
    payload["events"].reverse()  # sent newest first: shown oldest first
    assert post_generic(relay, payload).status_code == 202
    scene.vtex.wait_for(lambda vtex: delivered(scene, order_id))
    sign_in(page, relay, ADMIN)
    page.goto(f"{relay.url}/console/shipments/{tracking}")

    reload_until(page, lambda p: "delivered" in p.inner_text("main"), "the delivery")
    rows = page.locator("section", has=page.locator("#events")).locator("tbody tr")
    assert [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)] == [
        "Postado",
        "Em trânsito",
        "Saiu",
    ]
    assert "Recife, PE" in rows.first.inner_text()
    last_body = page.locator("section", has=page.locator("#last-body")).inner_text()
    assert '"description": "Saiu"' in last_body
    [receipt] = [answer.body["receipt"] for _, answer in scene.vtex.tracking_answers()]
    deliveries = page.locator("section", has=page.locator("#deliveries")).inner_text()
    assert receipt in deliveries
    assert "200" in deliveries  # the attempt's status code
    assert page.get_by_role("button", name="Send again").is_visible()


# -- retries ---------------------------------------------------------------------------------


def test_a_dead_delivery_is_retried_from_its_shipment_page_and_then_delivered(
    scene: Scene, page: Page
) -> None:
    relay = scene.relay
    tracking, order_id = unique("DD"), unique("ORD")
    scene.refused_orders.add(order_id)
    assert post_generic(relay, generic_payload(tracking, order_id, "NF-3", ["Postado"])).is_success
    sign_in(page, relay, ADMIN)
    page.goto(f"{relay.url}/console/shipments/{tracking}")
    reload_until(page, lambda p: ": dead" in p.inner_text("main"), "the dead delivery")
    assert "Invalid tracking" in page.inner_text("main")  # VTEX's answer, kept

    scene.refused_orders.clear()  # VTEX takes it now
    page.get_by_role("button", name="Retry", exact=True).click()
    assert "back in line" in page.get_by_role("status").inner_text()
    reload_until(page, lambda p: ": delivered" in p.inner_text("main"), "the retried delivery")
    assert delivered(scene, order_id)


def test_retry_all_names_the_count_and_retries_every_match_not_only_the_first_page(
    scene: Scene, page: Page, tmp_path: Path
) -> None:
    relay = scene.relay
    orders = [unique("RA") for _ in range(27)]
    scene.refused_orders.update(orders)
    for n, order_id in enumerate(orders):
        payload = generic_payload(f"TRA{n}-{order_id}", order_id, "NF-4", ["Postado"])
        assert post_generic(relay, payload).is_success
    sign_in(page, relay, ADMIN)
    page.goto(f"{relay.url}/console/deliveries?state=dead&carrier=generic")
    reload_until(page, lambda p: "27 deliveries match" in p.inner_text("main"), "27 dead")
    assert page.locator("tbody tr").count() == 25  # a page holds 25
    screenshot(page, tmp_path, "deliveries")

    scene.refused_orders.clear()
    page.get_by_role("button", name="Retry all").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Retry dead deliveries"
    assert "27 dead deliveries match" in page.inner_text("main")
    assert sum(delivered(scene, order_id) for order_id in orders) == 0  # not yet confirmed
    page.get_by_role("button", name="Retry all").click()

    assert "27 dead deliveries put back in line" in page.get_by_role("status").inner_text()
    scene.vtex.wait_for(lambda vtex: all(delivered(scene, order_id) for order_id in orders), 30)

    # The Overview counts them, and a carrier's refused calls, from the database.
    bad = relay.client.post(
        "/webhooks/generic", content=b"{}", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 401
    page.get_by_role("link", name="Overview", exact=True).click()
    reload_until(
        page,
        lambda p: (
            "deliveries: 27" in p.inner_text("main")
            and p.locator("tr", has_text="generic").locator("td").nth(3).inner_text() == "1"
        ),
        "the day's counts",
    )
    generic = page.locator("tr", has_text="generic").locator("td")
    assert [generic.nth(i).inner_text() for i in (0, 2, 3, 4)] == ["configured", "27", "1", "0"]
    assert "webhooks accepted: 27" in page.inner_text("main")
    assert page.locator("svg polyline").count() == 2
    screenshot(page, tmp_path, "overview")


# -- quarantine ------------------------------------------------------------------------------


def test_a_quarantined_webhook_is_replayed_from_the_page_once_the_adapter_is_fixed(
    scene: Scene, page: Page, tmp_path: Path
) -> None:
    scene.relay.stop()
    env = scene.env | {"PYTHONPATH": str(patched_relay.ROOT)}
    tracking, order_id = unique("QR"), unique("ORD")
    payload = generic_payload(tracking, order_id, "NF-5", ["<b>Postado</b>"])
    with RelayProcess(
        tmp_path, env | {patched_relay.BREAK_VARIABLE: "1"}, command=patched_relay.COMMAND
    ) as broken:
        answer = post_generic(broken, payload)
        assert answer.status_code == 422
        webhook_id = answer.json()["webhook_id"]
    with RelayProcess(tmp_path, env, command=patched_relay.COMMAND) as fixed:
        sign_in(page, fixed, ADMIN)
        page.get_by_role("link", name="Quarantine", exact=True).click()
        item = page.locator("article", has_text=webhook_id)
        assert patched_relay.BROKEN_DETAIL in item.inner_text()
        assert "<b>Postado</b>" in item.locator("pre").inner_text()  # the raw body, as text
        screenshot(page, tmp_path, "quarantine")

        item.get_by_role("button", name="Replay", exact=True).click()

        assert "1 read by today's adapters, 0 still quarantined" in page.inner_text("main")
        assert "0 quarantined webhooks" in page.inner_text("main")
        scene.vtex.wait_for(lambda vtex: delivered(scene, order_id))


# -- hostile payloads, CSRF, roles -------------------------------------------------------------


def test_markup_in_a_description_shows_as_text_and_runs_nothing(scene: Scene, page: Page) -> None:
    relay = scene.relay
    tracking, order_id = unique("XS"), unique("ORD")
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    assert post_generic(relay, generic_payload(tracking, order_id, "NF-6", [hostile])).is_success
    sign_in(page, relay, ADMIN)
    page.goto(f"{relay.url}/console/shipments/{tracking}")

    assert hostile in page.locator("#events ~ div table").inner_text()
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("() => window.pwned") is None


def test_an_action_without_the_csrf_token_or_by_a_viewer_is_403_and_changes_nothing(
    scene: Scene, page: Page, browser: Browser
) -> None:
    relay = scene.relay
    tracking, order_id = unique("CS"), unique("ORD")
    scene.refused_orders.add(order_id)
    assert post_generic(relay, generic_payload(tracking, order_id, "NF-7", ["Postado"])).is_success
    sign_in(page, relay, ADMIN)
    page.goto(f"{relay.url}/console/shipments/{tracking}")
    reload_until(page, lambda p: ": dead" in p.inner_text("main"), "the dead delivery")
    action = page.locator("form", has=page.get_by_role("button", name="Retry", exact=True))
    path = action.get_attribute("action")
    csrf = action.locator("input[name=csrf]").get_attribute("value")
    assert path is not None
    assert csrf
    scene.refused_orders.clear()

    without = page.request.post(f"{relay.url}{path}", form={"back": tracking})
    wrong = page.request.post(f"{relay.url}{path}", form={"csrf": "0" * 64})
    assert (without.status, wrong.status) == (403, 403)
    assert "security token" in without.text()

    viewer_context = browser.new_context()
    viewer = viewer_context.new_page()
    sign_in(viewer, relay, VIEWER)
    viewer.goto(f"{relay.url}/console/shipments/{tracking}")
    assert viewer.get_by_role("button", name="Retry").count() == 0
    assert viewer.get_by_role("button", name="Send again").count() == 0
    viewer_csrf = viewer.locator("form.sign-out input[name=csrf]").get_attribute("value")
    refused = viewer.request.post(f"{relay.url}{path}", form={"csrf": viewer_csrf or ""})
    assert refused.status == 403
    assert "Viewers may look but not act" in refused.text()
    viewer_context.close()

    page.reload()
    assert ": dead" in page.inner_text("main")  # nothing changed
    assert not delivered(scene, order_id)


# -- 375 px ----------------------------------------------------------------------------------


def test_every_page_is_usable_at_375_px_with_the_safety_headers(
    scene: Scene, browser: Browser, tmp_path: Path
) -> None:
    relay = scene.relay
    tracking, order_id = unique("NR"), unique("ORD")
    assert post_generic(relay, generic_payload(tracking, order_id, "NF-8", ["Postado"])).is_success
    scene.vtex.wait_for(lambda vtex: delivered(scene, order_id))
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    seen = watch_headers(page, relay)
    sign_in(page, relay, ADMIN)

    for path, heading, name in (
        ("/console", "Overview", "overview-375"),
        ("/console/deliveries", "Deliveries", "deliveries-375"),
        ("/console/quarantine", "Quarantine", None),
        ("/console/accounts", "Accounts", "accounts"),
        (f"/console/shipments/{tracking}", f"Shipment {tracking}", "shipment-375"),
        ("/console/no-such-page", "Not found", None),
    ):
        page.goto(f"{relay.url}{path}")
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert page.locator("h1").count() == 1
        for link in ("Overview", "Deliveries", "Quarantine", "Accounts"):
            assert page.get_by_role("link", name=link, exact=True).is_visible(), (path, link)
        assert page.get_by_label("Search").is_visible()
        assert page.get_by_role("button", name="Sign out").is_visible()
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 375, (path, overflow)
        if name:
            screenshot(page, tmp_path, name)
    assert lacking_safety_headers(seen) == []
    assert any(url.endswith("console.css") for url, _ in seen)
    context.close()
