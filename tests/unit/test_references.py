"""Order references in payloads → the VTEX invoice, per the carrier's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from app.ingest.references import invoice_from_references, with_invoice_from_references
from app.normalize.model import ShipmentUpdate, Status, TrackingEvent
from app.settings import CarrierSettings

INTELIPOST = {"order_number": "1400991230001-01", "invoice_number": "77120", "volume_number": "1"}


def rule(**values: Any) -> CarrierSettings:
    return CarrierSettings.model_validate(values)


def test_two_references_name_the_order_and_the_invoice() -> None:
    found = invoice_from_references(
        INTELIPOST, rule(order_id_from="order_number", invoice_number_from="invoice_number")
    )

    assert found == ("1400991230001-01", "77120")


def test_a_pattern_splits_one_reference_into_order_and_invoice() -> None:
    shippo = rule(
        order_id_from="metadata",
        reference_pattern=r"Pedido (?P<order_id>\d+-\d{2}) NF (?P<invoice_number>\d+)",
    )

    assert invoice_from_references({"metadata": "Pedido 1400-01 NF 5531"}, shippo) == (
        "1400-01",
        "5531",
    )
    assert invoice_from_references({"metadata": "Order 000123"}, shippo) is None


def test_a_pattern_with_only_the_order_takes_the_invoice_from_its_own_reference() -> None:
    setting = rule(
        order_id_from="tag",
        invoice_number_from="invoice",
        reference_pattern=r"^vtex:(?P<order_id>\S+)$",
    )

    assert invoice_from_references({"tag": "vtex:1500-01", "invoice": "88"}, setting) == (
        "1500-01",
        "88",
    )


@pytest.mark.parametrize(
    "references",
    [
        {},
        {"order_number": "1400991230001-01"},
        {"order_number": "  ", "invoice_number": "77120"},
        {"order_number": "1400991230001-01", "invoice_number": "NF/77120"},
    ],
)
def test_incomplete_or_unaddressable_references_give_nothing(references: dict[str, str]) -> None:
    setting = rule(order_id_from="order_number", invoice_number_from="invoice_number")

    assert invoice_from_references(references, setting) is None


def test_without_settings_references_register_nothing() -> None:
    assert invoice_from_references(INTELIPOST, rule()) is None


def update(**values: Any) -> ShipmentUpdate:
    event = TrackingEvent(datetime(2026, 5, 1, tzinfo=UTC), Status.IN_TRANSIT, "IT", "Em trânsito")
    return ShipmentUpdate("QI123BR", (event,), **values)


def test_the_update_names_the_invoice_its_references_give() -> None:
    setting = rule(order_id_from="order_number", invoice_number_from="invoice_number")

    named = with_invoice_from_references(update(references=INTELIPOST), setting)

    assert (named.order_id, named.invoice_number) == ("1400991230001-01", "77120")
    assert named.events == update().events


def test_an_invoice_the_payload_names_itself_wins_over_references() -> None:
    setting = rule(order_id_from="order_number", invoice_number_from="invoice_number")
    own = update(order_id="OWN-01", invoice_number="1", references=INTELIPOST)

    assert with_invoice_from_references(own, setting) is own


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"order_id_from": "order_number"}, "needed together"),
        ({"invoice_number_from": "invoice_number"}, "needed together"),
        ({"reference_pattern": "(?P<order_id>.+)"}, "needs order_id_from"),
        ({"order_id_from": "m", "reference_pattern": "(?P<invoice_number>.+)"}, "order_id"),
        ({"order_id_from": "m", "reference_pattern": "(?P<order_id>.+)(?P<x>.)"}, "no other"),
        ({"order_id_from": "m", "reference_pattern": "(?P<order_id>"}, "regular expression"),
    ],
)
def test_inconsistent_reference_settings_stop_start_up(
    values: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CarrierSettings.model_validate(values)

    assert complaint in str(refused.value)
