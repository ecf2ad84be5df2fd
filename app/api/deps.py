"""``Annotated`` dependencies: the app's parts, and the admin check."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from app.deliver.worker import Worker
from app.errors import Unauthorized
from app.ingest.carriers import Carrier
from app.ingest.intake import Intake
from app.metrics import RelayMetrics
from app.settings import Settings
from app.store import Store
from app.store.console_front import ConsoleStore


@dataclass
class Parts:
    """What the lifespan opened; routes reach it through dependencies only."""

    settings: Settings
    store: Store
    intake: Intake
    worker: Worker | None
    metrics: RelayMetrics
    carriers: Mapping[str, Carrier] = field(default_factory=dict)
    console: ConsoleStore | None = None
    """The console's reads and actions; None where the store is not SQL (unit tests)."""
    worker_task: asyncio.Task[None] | None = field(default=None)
    draining: bool = False

    def worker_running(self) -> bool:
        return self.worker_task is not None and not self.worker_task.done()

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()


async def _parts(request: Request) -> Parts:
    parts: Parts = request.app.state.parts
    return parts


PartsDep = Annotated[Parts, Depends(_parts)]


async def _store(parts: PartsDep) -> Store:
    return parts.store


async def _intake(parts: PartsDep) -> Intake:
    return parts.intake


StoreDep = Annotated[Store, Depends(_store)]
IntakeDep = Annotated[Intake, Depends(_intake)]


async def require_admin(
    parts: PartsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """``Authorization: Bearer <RELAY_ADMIN_TOKEN>``, compared in constant time."""
    token = parts.settings.admin_token
    if token is None or not token.get_secret_value().strip():
        raise Unauthorized("admin routes are disabled: RELAY_ADMIN_TOKEN is not set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    ):
        raise Unauthorized("missing or wrong admin bearer token")


AdminDep = Depends(require_admin)
ADMIN_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong admin bearer token (checked before anything else)"}
}
