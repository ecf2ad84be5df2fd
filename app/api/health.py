"""Probes: ``/livez`` while the process runs, ``/readyz`` when it can do its job."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import PartsDep
from app.store import StoreUnavailable

router = APIRouter(tags=["health"])

DATABASE_TIMEOUT_SECONDS = 2.0


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "not ready, with the reason"}})
async def readyz(parts: PartsDep) -> JSONResponse:
    """200 when the database answers and the worker's heartbeat is fresh; else 503 and why."""
    checks: dict[str, Any] = {}
    problems: list[str] = []
    if parts.draining:
        checks["shutdown"] = "draining"
        problems.append("the relay is shutting down")
    try:
        await asyncio.wait_for(parts.store.ping(), timeout=DATABASE_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", with its reason
        reason = str(error) if isinstance(error, StoreUnavailable) else type(error).__name__
        checks["database"] = f"failing: {reason}"
        problems.append("the database does not answer")
    if parts.worker is None:
        checks["worker"] = "disabled"
    else:
        silence = max(3 * parts.settings.worker_poll_interval.total_seconds(), 10.0)
        if parts.worker_running() and parts.worker.is_alive(silence):
            checks["worker"] = "ok"
        else:
            checks["worker"] = "stalled"
            problems.append(f"the delivery worker has not reported for over {silence:.0f}s")
    if not problems:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse(
        {"error": "not_ready", "detail": "; ".join(problems), "checks": checks}, status_code=503
    )
