"""The carriers the relay accepts: each pairs an authentication scheme with a pure parser."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.ingest.signatures import (
    Verifier,
    verify_17track,
    verify_aftership,
    verify_easypost,
    verify_fedex,
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
    fedex,
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
        Carrier("fedex", verify_fedex, fedex.parse),
    )
}


class UnknownCarrierSettings(ValueError):
    """``RELAY_CARRIERS__<NAME>__*`` names no carrier the relay has (a typo would otherwise
    leave the real carrier unconfigured); ``problems`` holds (variable, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{variable}: {reason}" for variable, reason in problems))
        self.problems = problems


def unknown_carrier_settings(settings: Settings, known: Collection[str]) -> list[tuple[str, str]]:
    """(variable, reason) for each ``RELAY_CARRIERS__<NAME>__<KEY>`` of a name not in ``known``."""
    names = ", ".join(sorted(known))
    problems = []
    for name, configured in settings.carriers.items():
        if name in known:
            continue
        keys = [key for key in type(configured).model_fields if key in configured.model_fields_set]
        for key in keys or ["*"]:
            variable = f"RELAY_CARRIERS__{name.upper()}__{key.upper()}"
            problems.append((variable, f"no carrier named {name!r}; known carriers: {names}"))
    return problems


def configured_carriers(settings: Settings) -> dict[str, Carrier]:
    """The built-in carriers plus those declared in ``RELAY_CARRIERS_FILE``.

    Raises :class:`~app.ingest.declared.DeclaredCarrierError` naming the file, the
    carrier and the field when the file is not valid, and :class:`UnknownCarrierSettings`
    when ``RELAY_CARRIERS__<NAME>__*`` names no carrier, so start-up stops.
    """
    carriers = dict(BUILT_IN)
    if settings.carriers_file is not None:
        from app.ingest.declared import load_declared_carriers

        carriers.update(load_declared_carriers(settings.carriers_file, frozenset(BUILT_IN)))
    problems = unknown_carrier_settings(settings, carriers)
    if problems:
        raise UnknownCarrierSettings(problems)
    return carriers
