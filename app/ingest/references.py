"""Order references in carrier payloads → the VTEX invoice they name (a pure decision)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from app.normalize.model import ShipmentUpdate, identifier_problem, invoice_number_problem
from app.settings import CarrierSettings


def invoice_from_references(
    references: Mapping[str, str], rule: CarrierSettings
) -> tuple[str, str] | None:
    """(orderId, invoiceNumber) that a carrier's reference settings read, or None.

    ``order_id_from`` names the reference holding the orderId; ``reference_pattern``,
    when set, is searched in it and its named groups take precedence; the invoice number
    otherwise comes from ``invoice_number_from``. An incomplete answer, or an invoice
    number VTEX cannot address, or a value that is not an identifier, is None.
    """
    if rule.order_id_from is None:
        return None
    found: dict[str, str] = {}
    source = references.get(rule.order_id_from, "")
    if rule.reference_pattern is not None:
        match = rule.reference_pattern.search(source)
        if match is None:
            return None
        found = {name: value for name, value in match.groupdict().items() if value}
    else:
        found["order_id"] = source
    if "invoice_number" not in found and rule.invoice_number_from is not None:
        found["invoice_number"] = references.get(rule.invoice_number_from, "")
    order_id = found.get("order_id", "").strip()
    invoice_number = found.get("invoice_number", "").strip()
    if identifier_problem("orderId", order_id) or invoice_number_problem(invoice_number):
        return None
    return order_id, invoice_number


def with_invoice_from_references(update: ShipmentUpdate, rule: CarrierSettings) -> ShipmentUpdate:
    """The update naming the invoice its references give, unless it names one already."""
    if update.order_id is not None or not update.references:
        return update
    invoice = invoice_from_references(update.references, rule)
    if invoice is None:
        return update
    return dataclasses.replace(update, order_id=invoice[0], invoice_number=invoice[1])
