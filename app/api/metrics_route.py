"""``GET /metrics``: Prometheus text exposition (SPEC §9)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import PartsDep
from app.metrics import CONTENT_TYPE
from app.store import SqlStore

router = APIRouter(tags=["health"])
log = structlog.get_logger("relay.api")

READ_TIMEOUT_SECONDS = 2.0
T = TypeVar("T")


@router.get("/metrics", response_class=Response)
async def metrics(parts: PartsDep) -> Response:
    """Counters since this process started; gauges as the database holds them now."""
    queue = await _within_timeout(parts.store.queue_snapshot(datetime.now(UTC)), "queue")
    size = None
    if isinstance(parts.store, SqlStore):
        size = await _within_timeout(parts.store.upkeep().database_bytes(), "database_bytes")
    return Response(parts.metrics.exposition(queue, size), media_type=CONTENT_TYPE)


async def _within_timeout(read: Awaitable[T], what: str) -> T | None:
    try:
        return await asyncio.wait_for(read, timeout=READ_TIMEOUT_SECONDS)
    except Exception as error:  # a scrape must still answer while the database is away
        log.warning("metrics.read_unavailable", gauge=what, error=type(error).__name__)
        return None
