"""The carriers the relay accepts: each pairs an authentication scheme with a pure parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.ingest.signatures import (
    Verifier,
    verify_17track,
    verify_aftership,
    verify_easypost,
    verify_melhor_envio,
    verify_shipengine,
    verify_shippo,
    verify_standard_webhooks,
    verify_static_token,
    verify_ups,
)
from app.normalize.carriers import (
    aftership,
    dhl,
    easypost,
    generic,
    intelipost,
    melhor_envio,
    seventeen_track,
    shipengine,
    shippo,
    ups,
)
from app.normalize.model import ParseContext, ShipmentUpdate
from app.settings import Settings

Parser = Callable[[Any, ParseContext], list[ShipmentUpdate]]


@dataclass(frozen=True)
class Carrier:
    """``POST /webhooks/{name}``: how its requests are authenticated and read."""

    name: str
    verify: Verifier
    parse: Parser
    credential: Literal["secret", "public_key"] = "secret"
    """Which setting ``verify`` receives: ``RELAY_CARRIERS__<NAME>__SECRET`` or ``__PUBLIC_KEY``."""
    url_token: bool = False
    """Also accept the secret as ``?token=`` in the URL (for carriers that offer nothing else)."""


BUILT_IN: Mapping[str, Carrier] = {
    carrier.name: carrier
    for carrier in (
        Carrier("generic", verify_standard_webhooks, generic.parse),
        Carrier("aftership", verify_aftership, aftership.parse),
        Carrier("easypost", verify_easypost, easypost.parse),
        Carrier("shippo", verify_shippo, shippo.parse, url_token=True),
        Carrier("17track", verify_17track, seventeen_track.parse),
        Carrier("ups", verify_ups, ups.parse),
        Carrier("intelipost", verify_static_token, intelipost.parse),
        Carrier("melhor_envio", verify_melhor_envio, melhor_envio.parse),
        Carrier("dhl", verify_static_token, dhl.parse),
        Carrier("shipengine", verify_shipengine, shipengine.parse, credential="public_key"),
    )
}


def configured_carriers(settings: Settings) -> dict[str, Carrier]:
    """The built-in carriers plus those declared in ``RELAY_CARRIERS_FILE``.

    Raises :class:`~app.ingest.declared.DeclaredCarrierError` naming the file, the
    carrier and the field when the file is not valid, so start-up stops.
    """
    if settings.carriers_file is None:
        return dict(BUILT_IN)
    from app.ingest.declared import load_declared_carriers

    return {**BUILT_IN, **load_declared_carriers(settings.carriers_file, frozenset(BUILT_IN))}
