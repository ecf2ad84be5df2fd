"""``create_app(settings)``: the lifespan owns the store, the HTTP client and the worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from app.api import admin, docs, health, metrics_route, shipments, vtex_hook, webhooks
from app.api.deps import Parts
from app.api.errors import install_error_handlers
from app.api.openapi import relay_openapi
from app.api.request_log import RequestLogMiddleware
from app.api.webhook_route import WebhookRoute
from app.configured import log_configuration
from app.console import routes as console_routes
from app.deliver.worker import Worker
from app.ingest.carriers import Carrier, configured_carriers
from app.ingest.intake import Intake
from app.metrics import RelayMetrics
from app.settings import Settings
from app.store import SqlStore
from app.wiring import counts_kept, opened_delivery

log = structlog.get_logger("relay")


def create_app(settings: Settings, carriers: Mapping[str, Carrier] | None = None) -> FastAPI:
    """The relay's ASGI app; nothing is opened until the lifespan starts.

    ``carriers`` defaults to the built-in ones plus ``RELAY_CARRIERS_FILE``'s, read now so
    that an invalid file stops start-up.
    """
    accepted = configured_carriers(settings) if carriers is None else carriers
    metrics = RelayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_configuration(settings, accepted, worker=settings.worker)
        async with (
            opened_delivery(settings, metrics=metrics) as delivery,
            counts_kept(metrics, delivery.store),
        ):
            store = delivery.store
            worker = Worker(delivery) if settings.worker else None
            intake = Intake(
                store, settings, accepted, on_queued=worker.wake if worker else lambda: None
            )
            parts = Parts(
                settings=settings,
                store=store,
                intake=intake,
                worker=worker,
                metrics=metrics,
                carriers=accepted,
                console=store.console() if isinstance(store, SqlStore) else None,
            )
            if worker is not None:
                parts.worker_task = asyncio.create_task(worker.run(), name="delivery-worker")
            app.state.parts = parts
            log.info("relay.started", database=store.describe(), worker=settings.worker)
            try:
                yield
            finally:
                if worker is not None and parts.worker_task is not None:
                    await worker.stop(grace=settings.vtex_timeout.total_seconds())
                    await parts.worker_task

    app = FastAPI(
        title="Tracking relay",
        summary="Carrier tracking webhooks in, VTEX OMS invoice tracking out.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app/api/docs.py serves it from the relay's own files
        redoc_url=None,
    )
    app.openapi = relay_openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(webhooks.router)
    app.include_router(shipments.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(vtex_hook.router)
    app.include_router(docs.router)
    app.router.routes.extend(console_routes.ROUTES)
    return app


def served(app: FastAPI) -> WebhookRoute:
    """What ``relay serve`` hands uvicorn: the app behind the webhook route's fast path."""
    return WebhookRoute(app)


def begin_draining(app: FastAPI) -> None:
    """SIGTERM arrived: /readyz answers 503 from now on; everything else keeps working."""
    parts: Parts | None = getattr(app.state, "parts", None)
    if parts is not None:
        parts.draining = True
