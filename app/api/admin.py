"""Operator routes: deliveries and their attempts, retries, quarantine replay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import AdminDep, IntakeDep, PartsDep, StoreDep
from app.api.views import delivery_json, quarantined_json
from app.errors import Conflict, NotFound
from app.store.store import NotRetriable

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])

DeliveryState = Literal["pending", "retrying", "delivered", "dead"]


@router.get("/deliveries")
async def list_deliveries(
    store: StoreDep,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Deliveries, newest first, with every attempt; filter by ``state``."""
    views = await store.list_deliveries(state, limit)
    return {"deliveries": [delivery_json(view) for view in views]}


@router.post(
    "/deliveries/{delivery_id}/retry",
    responses={404: {"description": "no such delivery"}, 409: {"description": "delivered"}},
)
async def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1)], store: StoreDep, parts: PartsDep
) -> dict[str, Any]:
    """Put a dead (or waiting) delivery back in line now, with a fresh age."""
    try:
        target = await store.retry_delivery(delivery_id, datetime.now(UTC))
    except NotRetriable as error:
        raise Conflict(f"{error}; new events queue a new delivery by themselves") from None
    if target is None:
        raise NotFound(f"no delivery {delivery_id}")
    parts.wake_worker()
    view = await store.get_delivery(target)
    return {"delivery": delivery_json(view) if view else None}


@router.get("/quarantine")
async def list_quarantine(
    store: StoreDep, carrier: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Signed webhooks their adapter could not read, oldest first, with the reason."""
    return {"webhooks": [quarantined_json(w) for w in await store.quarantined(carrier, limit)]}


@router.post("/quarantine/replay")
async def replay_quarantine(intake: IntakeDep, carrier: str | None = None) -> dict[str, int]:
    """Re-run quarantined webhooks through today's adapters."""
    report = await intake.replay_quarantine(carrier)
    return {
        "replayed": report.replayed,
        "still_quarantined": report.still_quarantined,
        "events": report.new_events,
    }
