"""The carriers the relay accepts: each pairs an authentication scheme with a pure parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.ingest.signatures import (
    Verifier,
    verify_aftership,
    verify_easypost,
    verify_standard_webhooks,
)
from app.normalize.carriers import aftership, easypost, generic
from app.normalize.model import ParseContext, ShipmentUpdate

Parser = Callable[[Any, ParseContext], list[ShipmentUpdate]]


@dataclass(frozen=True)
class Carrier:
    """``POST /webhooks/{name}``: how its requests are authenticated and read."""

    name: str
    verify: Verifier
    parse: Parser


BUILT_IN: Mapping[str, Carrier] = {
    carrier.name: carrier
    for carrier in (
        Carrier("generic", verify_standard_webhooks, generic.parse),
        Carrier("aftership", verify_aftership, aftership.parse),
        Carrier("easypost", verify_easypost, easypost.parse),
    )
}
