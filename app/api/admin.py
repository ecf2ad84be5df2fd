"""Operator routes: deliveries and their attempts, retries, quarantine replay and discard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import ADMIN_REFUSALS, AdminDep, IntakeDep, PartsDep, StoreDep
from app.api.views import delivery_json, quarantined_json
from app.errors import Conflict, NotFound
from app.store import MAX_ROW_ID, NotRetriable

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[AdminDep], responses=ADMIN_REFUSALS
)

DeliveryState = Literal["pending", "retrying", "delivered", "dead"]
WEBHOOK_ID_LENGTH = 40  # the webhooks.id column
# What reaches a query is printable ASCII (PostgreSQL's text refuses a NUL; ids and carrier
# names are ASCII); anything else is 422 before the database sees it.
CarrierName = Annotated[str | None, Query(max_length=64, pattern=r"^[!-~]+$")]


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
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], store: StoreDep, parts: PartsDep
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
    store: StoreDep, carrier: CarrierName = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Signed webhooks their adapter could not read, oldest first, with the reason."""
    return {"webhooks": [quarantined_json(w) for w in await store.quarantined(carrier, limit)]}


@router.delete(
    "/quarantine/{webhook_id}", responses={404: {"description": "no such quarantined webhook"}}
)
async def discard_quarantined(
    webhook_id: Annotated[
        str, Path(min_length=1, max_length=WEBHOOK_ID_LENGTH, pattern=r"^[!-~]+$")
    ],
    store: StoreDep,
) -> dict[str, Any]:
    """Delete one quarantined webhook for good; answers what was discarded."""
    discarded = await store.discard_quarantined(webhook_id)
    if discarded is None:
        raise NotFound(f"no quarantined webhook {webhook_id}")
    return {"discarded": quarantined_json(discarded)}


@router.post("/quarantine/replay")
async def replay_quarantine(intake: IntakeDep, carrier: CarrierName = None) -> dict[str, int]:
    """Re-run quarantined webhooks through today's adapters."""
    report = await intake.replay_quarantine(carrier)
    return {
        "replayed": report.replayed,
        "still_quarantined": report.still_quarantined,
        "events": report.new_events,
    }
