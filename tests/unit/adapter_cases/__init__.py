"""Expected readings of our own carrier fixtures, one module per carrier.

Each module names its ``CARRIER`` (the path name of ``POST /webhooks/{carrier}``) and
defines ``CASES`` (fixture → expected events) and ``REJECTIONS`` (a field of its
``delivered`` fixture broken → a rejection naming that field). Optionally
``ZONELESS_TIMES = "documented"`` when the carrier documents the zone of times written
without an offset (they then ignore ``RELAY_CARRIER_DEFAULT_TIMEZONE``). The fixtures
themselves are ``tests/fixtures/<carrier>/<fixture>.json``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

from app.normalize.model import Status

S = Status
DROP: Any = object()
"""In a rejection: remove the field instead of replacing it."""


class Ev(NamedTuple):
    """One expected event; ``utc`` is the ISO form of the UTC instant."""

    utc: str
    city: str
    state: str
    description: str
    status: Status
    carrier_status: str


@dataclass(frozen=True)
class Case:
    carrier: str
    fixture: str
    tracking_number: str
    events: tuple[Ev, ...]
    tracking_url: str | None = None
    order_id: str | None = None
    invoice_number: str | None = None
    aliases: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)
    update: int = 0
    """Which of the webhook's shipment updates this case describes (several per POST)."""

    @property
    def id(self) -> str:
        suffix = f"-{self.update}" if self.update else ""
        return f"{self.carrier}-{self.fixture}{suffix}"


def modules() -> list[ModuleType]:
    """Every carrier's case module."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
    ]
