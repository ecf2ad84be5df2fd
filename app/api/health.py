"""Probes: ``/livez`` while the process runs, ``/readyz`` when it can do its job."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import Parts, PartsDep
from app.store import SqlStore, StoreUnavailable

router = APIRouter(tags=["health"])

DATABASE_TIMEOUT_SECONDS = 2.0


async def _write_refusal(parts: Parts) -> str | None:
    """While the last commit failed for the disk's sake, whether a write works again (so
    that the relay recovers by itself once space returns, even with no webhook coming)."""
    store = parts.store
    if not isinstance(store, SqlStore) or store.write_problem() is None:
        return None
    with contextlib.suppress(Exception):
        await asyncio.wait_for(store.probe_write(), timeout=DATABASE_TIMEOUT_SECONDS)
    return store.write_problem()


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
    else:
        refusal = await _write_refusal(parts)
        if refusal is not None:
            checks["database"] = f"cannot write: {refusal}"
            problems.append(f"the database cannot write ({refusal}); webhooks get 503")
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
