"""Reading VTEX orders (Get order): packages, invoices, tracking numbers, what VTEX lacks;
and the orders hook configuration the relay wants (SPEC §2, §4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.deliver.orders import HOOK_HEADER, desired_hook_config, hook_matches
from app.deliver.vtex_order import (
    NotAnOrder,
    Notification,
    Package,
    package_of_invoice,
    packages,
    read_notification,
    registrable_packages,
    tracking_number_patch,
    what_vtex_lacks,
)
from app.errors import BadRequest, InvalidRequest
from app.normalize.model import MAX_IDENTIFIER_LENGTH

HOOK_URL = "https://relay.example.com/vtex/orders-hook"
SECRET = "hook-secret"


def package(
    invoice_number: Any = "INV-1",
    tracking_number: Any = "TRK-1",
    **extra: Any,
) -> dict[str, Any]:
    """One ``packageAttachment.packages[]`` item, as Get order answers it."""
    item: dict[str, Any] = {
        "invoiceNumber": invoice_number,
        "trackingNumber": tracking_number,
        "invoiceValue": 1000,
        "type": "Output",
    }
    item.update(extra)
    return item


def order(*items: Any, hostname: Any = "acme") -> dict[str, Any]:
    """A Get order answer, trimmed to what the relay reads."""
    return {
        "orderId": "1234567890-01",
        "status": "invoiced",
        "hostname": hostname,
        "packageAttachment": {"packages": list(items)},
    }


def vtex_event(description: str, city: str = "Curitiba", state: str = "PR") -> dict[str, Any]:
    """One item of ``courierStatus.data``."""
    return {
        "city": city,
        "state": state,
        "description": description,
        "createDate": "2026-04-10T12:00:00+00:00",
        "lastChange": "2026-04-10T12:00:00+00:00",
    }


def body_event(description: str, city: str = "Curitiba", state: str = "PR") -> dict[str, Any]:
    """One event of the tracking body the relay holds (``build_tracking_body``)."""
    return {"city": city, "state": state, "description": description, "date": "2026-04-10"}


def held(
    *events: Any,
    finished: Any = False,
    delivered_date: Any = None,
) -> Package:
    """A package whose ``courierStatus`` holds ``events``."""
    return Package(
        invoice_number="INV-1",
        tracking_number="TRK-1",
        tracking_url="",
        courier="",
        courier_status={
            "status": "ok",
            "finished": finished,
            "deliveredDate": delivered_date,
            "data": list(events),
        },
    )


def tracking_body(*events: dict[str, Any], delivered: bool = False) -> dict[str, Any]:
    return {
        "isDelivered": delivered,
        "deliveredDate": "2026-04-11 10:00" if delivered else None,
        "events": list(events),
    }


# -- packages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"orderId": "1", "status": "invoiced"},
        {"orderId": "1", "packageAttachment": None},
        {"orderId": "1", "packageAttachment": []},
        {"orderId": "1", "packageAttachment": "packages"},
        None,
        [],
        "not an order",
    ],
)
def test_an_answer_without_package_attachment_is_not_an_order(answer: Any) -> None:
    with pytest.raises(NotAnOrder):
        packages(answer)
    with pytest.raises(NotAnOrder):
        package_of_invoice(answer, "INV-1")
    with pytest.raises(NotAnOrder):
        registrable_packages(answer)


def test_not_an_order_is_a_value_error() -> None:
    assert issubclass(NotAnOrder, ValueError)


@pytest.mark.parametrize("found", [None, "packages", 3, {"invoiceNumber": "INV-1"}])
def test_packages_that_are_null_or_not_a_list_are_none(found: Any) -> None:
    answer = {"hostname": "acme", "packageAttachment": {"packages": found}}

    assert packages(answer) == []
    assert package_of_invoice(answer, "INV-1") is None
    assert registrable_packages(answer) == []


def test_an_attachment_without_packages_has_none() -> None:
    assert packages({"packageAttachment": {}}) == []


def test_package_items_that_are_not_objects_are_skipped() -> None:
    answer = order(None, "INV-0", 7, ["INV-0"], package("INV-1", "TRK-1"))

    assert [(p.invoice_number, p.tracking_number) for p in packages(answer)] == [("INV-1", "TRK-1")]


def test_a_package_is_read_with_its_fields_trimmed() -> None:
    status = {"finished": False, "data": [vtex_event("Postado")]}
    answer = order(
        package(
            " INV-1\t",
            "  TRK-1 ",
            trackingUrl=" https://track.example/TRK-1 ",
            courier=" Correios ",
            courierStatus=status,
        )
    )

    assert packages(answer) == [
        Package(
            invoice_number="INV-1",
            tracking_number="TRK-1",
            tracking_url="https://track.example/TRK-1",
            courier="Correios",
            courier_status=status,
        )
    ]


def test_missing_or_non_text_fields_read_as_empty() -> None:
    answer = order(
        {"invoiceNumber": 24382, "trackingNumber": None, "courier": ["x"], "courierStatus": "ok"}
    )

    [read] = packages(answer)

    assert read == Package("", "", "", "", {})


def test_package_of_invoice_finds_the_invoice_among_several() -> None:
    answer = order(package("INV-1", "TRK-1"), package(" INV-2 ", "TRK-2"))

    found = package_of_invoice(answer, "INV-2")

    assert found is not None
    assert found.tracking_number == "TRK-2"
    # The wanted number is trimmed too.
    again = package_of_invoice(answer, "  INV-1 ")
    assert again is not None
    assert again.tracking_number == "TRK-1"


def test_package_of_an_invoice_the_order_does_not_have_is_none() -> None:
    answer = order(package("INV-1", "TRK-1"))

    assert package_of_invoice(answer, "INV-9") is None
    assert package_of_invoice(order(), "INV-1") is None


def test_a_package_without_tracking_number_is_still_found() -> None:
    # Before the first PUT the relay looks for exactly this: the package, without its number.
    found = package_of_invoice(order(package("INV-1", None)), "INV-1")

    assert found is not None
    assert found.tracking_number == ""


# -- registrable_packages ----------------------------------------------------------------


def test_registrable_packages_have_a_tracking_number_and_an_addressable_invoice() -> None:
    longest = "T" * MAX_IDENTIFIER_LENGTH
    answer = order(
        package("INV-1", "TRK-1", courier="Correios"),
        package("INV-2", None),
        package("INV-3", ""),
        package("INV-4", "   "),
        package("", "TRK-5"),
        package("  ", "TRK-6"),
        package("NF/7", "TRK-7"),
        package("INV-8", "T" * (MAX_IDENTIFIER_LENGTH + 1)),
        package("I" * (MAX_IDENTIFIER_LENGTH + 1), "TRK-9"),
        package("INV-10", longest),
        package(" INV-11 ", " TRK-11 "),
    )

    found = registrable_packages(answer)

    assert [(p.invoice_number, p.tracking_number) for p in found] == [
        ("INV-1", "TRK-1"),
        ("INV-10", longest),
        ("INV-11", "TRK-11"),
    ]
    assert found[0].courier == "Correios"


def test_an_order_without_registrable_packages_registers_none() -> None:
    assert registrable_packages(order()) == []
    assert registrable_packages(order(package("INV-1", None))) == []


# -- tracking_number_patch ------------------------------------------------------------------


def test_the_patch_carries_the_tracking_number_url_and_courier() -> None:
    assert tracking_number_patch("TRK-1", "https://track.example/TRK-1", "Correios") == {
        "trackingNumber": "TRK-1",
        "trackingUrl": "https://track.example/TRK-1",
        "courier": "Correios",
    }


@pytest.mark.parametrize(("url", "courier"), [(None, None), ("", "")])
def test_the_patch_leaves_out_what_the_relay_does_not_know(
    url: str | None, courier: str | None
) -> None:
    assert tracking_number_patch("TRK-1", url, courier) == {"trackingNumber": "TRK-1"}


def test_the_patch_without_url_still_names_the_courier() -> None:
    assert tracking_number_patch("TRK-1", None, "Correios") == {
        "trackingNumber": "TRK-1",
        "courier": "Correios",
    }


# -- what_vtex_lacks -----------------------------------------------------------------------


def test_vtex_holding_every_event_lacks_nothing() -> None:
    vtex = held(vtex_event("Postado", "Recife", "PE"), vtex_event("Em trânsito"))

    assert what_vtex_lacks(vtex, tracking_body(body_event("Postado", "Recife", "PE"))) is None
    assert (
        what_vtex_lacks(
            vtex,
            tracking_body(body_event("Em trânsito"), body_event("Postado", "Recife", "PE")),
        )
        is None
    )


def test_events_compare_without_case_or_surrounding_whitespace() -> None:
    vtex = held(vtex_event("  OBJETO   em\ttrânsito ", " curitiba ", "pr "))

    assert what_vtex_lacks(vtex, tracking_body(body_event("Objeto em trânsito"))) is None


def test_one_missing_event_is_named() -> None:
    vtex = held(vtex_event("Postado"))

    lacking = what_vtex_lacks(vtex, tracking_body(body_event("Postado"), body_event("Entregue")))

    assert lacking == "VTEX lacks 1 of the invoice's 2 events"


@pytest.mark.parametrize(
    "other",
    [
        body_event("Postado", city="Natal"),
        body_event("Postado", state="RN"),
        body_event("Postado novamente"),
    ],
)
def test_a_different_city_state_or_description_is_another_event(other: dict[str, Any]) -> None:
    vtex = held(vtex_event("Postado"))

    assert what_vtex_lacks(vtex, tracking_body(other)) == "VTEX lacks 1 of the invoice's 1 events"


def test_vtex_without_courier_status_lacks_every_event() -> None:
    bare = Package("INV-1", "TRK-1", "", "", {})

    assert (
        what_vtex_lacks(bare, tracking_body(body_event("Postado"), body_event("Em trânsito")))
        == "VTEX lacks 2 of the invoice's 2 events"
    )
    assert what_vtex_lacks(bare, tracking_body()) is None


def test_unreadable_courier_status_data_counts_as_no_events() -> None:
    for data in (None, "events", {"city": "Curitiba"}):
        vtex = Package("INV-1", "TRK-1", "", "", {"data": data})
        assert what_vtex_lacks(vtex, tracking_body(body_event("Postado"))) == (
            "VTEX lacks 1 of the invoice's 1 events"
        )
    mixed = held(None, "Postado", vtex_event("Postado"))
    assert what_vtex_lacks(mixed, tracking_body(body_event("Postado"))) is None


def test_events_are_counted_as_a_multiset() -> None:
    once = held(vtex_event("Em trânsito"))
    twice = held(vtex_event("Em trânsito"), vtex_event("Em trânsito"))
    repeated = tracking_body(body_event("Em trânsito"), body_event("Em trânsito"))

    assert what_vtex_lacks(once, repeated) == "VTEX lacks 1 of the invoice's 2 events"
    assert what_vtex_lacks(twice, repeated) is None
    # VTEX holding more than the relay sent is not a lack.
    assert what_vtex_lacks(twice, tracking_body(body_event("Em trânsito"))) is None


@pytest.mark.parametrize(
    ("finished", "delivered_date"),
    [(False, None), (None, None), ("true", None), (False, "")],
)
def test_delivered_in_the_body_but_not_at_vtex_is_a_lack(
    finished: Any, delivered_date: Any
) -> None:
    vtex = held(vtex_event("Entregue"), finished=finished, delivered_date=delivered_date)

    lacking = what_vtex_lacks(vtex, tracking_body(body_event("Entregue"), delivered=True))

    assert lacking == "VTEX does not have the invoice as delivered"


@pytest.mark.parametrize(
    ("finished", "delivered_date"),
    [(True, None), (False, "2026-04-11T10:00:00+00:00"), (True, "2026-04-11T10:00:00+00:00")],
)
def test_delivered_at_vtex_lacks_nothing(finished: Any, delivered_date: Any) -> None:
    vtex = held(vtex_event("Entregue"), finished=finished, delivered_date=delivered_date)

    assert what_vtex_lacks(vtex, tracking_body(body_event("Entregue"), delivered=True)) is None


def test_missing_events_are_reported_before_the_delivered_state() -> None:
    vtex = held(finished=False)

    lacking = what_vtex_lacks(vtex, tracking_body(body_event("Entregue"), delivered=True))

    assert lacking == "VTEX lacks 1 of the invoice's 1 events"


def test_not_delivered_in_the_body_needs_no_delivery_at_vtex() -> None:
    vtex = held(vtex_event("Postado"), finished=False)

    assert what_vtex_lacks(vtex, tracking_body(body_event("Postado"))) is None


# -- the published Get order example -----------------------------------------------------------


def test_the_published_get_order_example(reference_dir: Path) -> None:
    path = reference_dir / "vtex" / "get-order-response-example.json"
    example = json.loads(path.read_text(encoding="utf-8"))["example"]

    found = package_of_invoice(example, "24382")

    assert found is not None
    assert found.tracking_number == "TRK-48960684"
    assert [p.tracking_number for p in registrable_packages(example)] == ["TRK-48960684"]
    assert package_of_invoice(example, "99999") is None
    [vtex_held] = found.courier_status["data"]
    same = body_event(vtex_held["description"], vtex_held["city"], vtex_held["state"])
    # The example's courierStatus is finished, with that one event.
    assert what_vtex_lacks(found, tracking_body(same, delivered=True)) is None
    assert what_vtex_lacks(found, tracking_body(same, body_event("Entregue"), delivered=True)) == (
        "VTEX lacks 1 of the invoice's 2 events"
    )


# -- the orders hook configuration --------------------------------------------------------------


def test_the_desired_hook_is_invoiced_orders_to_the_relay_with_its_token() -> None:
    assert desired_hook_config(HOOK_URL, SECRET) == {
        "filter": {"type": "FromWorkflow", "status": ["invoiced"]},
        "hook": {"url": HOOK_URL, "headers": {HOOK_HEADER: SECRET}},
    }
    assert HOOK_HEADER == "X-Relay-Hook-Token"


def test_the_same_configuration_matches() -> None:
    desired = desired_hook_config(HOOK_URL, SECRET)
    # As VTEX answers it: a copy, possibly with more fields.
    current = json.loads(json.dumps(desired))
    current["filter"]["disableSingleFire"] = False
    current["origin"] = {"account": "acme", "appKey": "vtexappkey-acme"}

    assert hook_matches(current, desired)


def test_the_header_name_matches_in_any_case() -> None:
    desired = desired_hook_config(HOOK_URL, SECRET)
    current = desired_hook_config(HOOK_URL, SECRET)
    current["hook"]["headers"] = {"x-relay-hook-token": SECRET}

    assert hook_matches(current, desired)


def test_the_statuses_match_in_any_order() -> None:
    desired = desired_hook_config(HOOK_URL, SECRET)
    desired["filter"]["status"] = ["invoiced", "handling"]
    current = desired_hook_config(HOOK_URL, SECRET)
    current["filter"]["status"] = ["handling", "invoiced"]

    assert hook_matches(current, desired)


def _changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    current = desired_hook_config(HOOK_URL, SECRET)
    target: Any = current
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return current


@pytest.mark.parametrize(
    "current",
    [
        _changed(("hook", "url"), "https://other.example.com/vtex/orders-hook"),
        _changed(("hook", "headers"), {HOOK_HEADER: "old-secret"}),
        _changed(("hook", "headers"), {HOOK_HEADER: SECRET.upper()}),
        _changed(("hook", "headers"), {"X-Other": SECRET}),
        _changed(("hook", "headers"), {}),
        _changed(("hook", "headers"), None),
        _changed(("hook", "headers"), [HOOK_HEADER, SECRET]),
        _changed(("filter", "type"), "FromOrders"),
        _changed(("filter", "status"), ["invoiced", "handling"]),
        _changed(("filter", "status"), ["handling"]),
        _changed(("filter", "status"), []),
        _changed(("filter", "status"), None),
        _changed(("filter",), None),
        _changed(("filter",), "FromWorkflow"),
        _changed(("hook",), None),
        _changed(("hook",), HOOK_URL),
        {"filter": {"type": "FromWorkflow", "status": ["invoiced"]}},
        {},
        None,
        [],
        "configured",
    ],
    ids=lambda current: json.dumps(current)[:60],
)
def test_another_configuration_does_not_match(current: Any) -> None:
    assert not hook_matches(current, desired_hook_config(HOOK_URL, SECRET))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"OrderId": " 1172452900788-01 ", "State": "invoiced", "Origin": {"Account": "loja"}},
            Notification("1172452900788-01", "invoiced", "loja"),
        ),
        ({"OrderId": "O-1", "State": "canceled"}, Notification("O-1", "canceled", None)),
        ({"OrderId": "O-1", "State": 7, "Origin": {"Account": " "}}, Notification("O-1", "", None)),
    ],
)
def test_a_notification_is_read_with_its_account(payload: Any, expected: Notification) -> None:
    assert read_notification(payload) == expected


@pytest.mark.parametrize(
    ("payload", "error", "detail"),
    [
        ([1], BadRequest, "must be a JSON object"),
        ({"State": "invoiced"}, BadRequest, "has no OrderId"),
        ({"OrderId": 123}, InvalidRequest, "OrderId: must be text"),
        ({"OrderId": "O\x00-1"}, InvalidRequest, "OrderId: contains U+0000"),
        ({"OrderId": "O" * 129}, InvalidRequest, "OrderId: 'OOOO"),
        ({"OrderId": "O-1", "Origin": {"Account": "x\ny"}}, InvalidRequest, "Account: contains"),
        ({"OrderId": "O-1", "Origin": {"Account": ["x"]}}, InvalidRequest, "Account: must be text"),
    ],
)
def test_a_payload_that_is_no_notification_is_refused_saying_why(
    payload: Any, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as refused:
        read_notification(payload)

    assert detail in str(refused.value)
