"""``GET /metrics``: Prometheus text exposition (SPEC §9)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import PartsDep
from app.metrics import CONTENT_TYPE
from app.store import QueueSnapshot

router = APIRouter(tags=["health"])
log = structlog.get_logger("relay.api")

QUEUE_READ_TIMEOUT_SECONDS = 2.0


@router.get("/metrics", response_class=Response)
async def metrics(parts: PartsDep) -> Response:
    """Counters since this process started; queue gauges as the database holds them now."""
    queue: QueueSnapshot | None = None
    try:
        queue = await asyncio.wait_for(
            parts.store.queue_snapshot(datetime.now(UTC)), timeout=QUEUE_READ_TIMEOUT_SECONDS
        )
    except Exception as error:  # a scrape must still answer while the database is away
        log.warning("metrics.queue_unavailable", error=type(error).__name__)
    return Response(parts.metrics.exposition(queue), media_type=CONTENT_TYPE)
