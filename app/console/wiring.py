"""What the console's routes reach of the running relay, and the guard that turns any
failure of theirs into an HTML page with the console's headers (never a stack trace)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import Response

from app.console.render import page
from app.console.tally import MinuteTally
from app.ingest.carriers import Carrier
from app.ingest.intake import Intake
from app.settings import Settings
from app.store import Store, StoreUnavailable
from app.store.console_front import ConsoleStore

log = structlog.get_logger("relay.console")


@dataclass(frozen=True)
class ConsoleParts:
    settings: Settings
    store: ConsoleStore
    relay_store: Store
    intake: Intake
    carriers: Mapping[str, Carrier]
    wake_worker: Callable[[], None]
    tally: MinuteTally


class ConsoleUnavailable(Exception):
    """The relay's store has no console (it is not a SQL store)."""


def console_parts(request: Request) -> ConsoleParts:
    parts = request.app.state.parts
    if parts.console is None:
        raise ConsoleUnavailable("the console needs the relay's SQL store")
    return ConsoleParts(
        settings=parts.settings,
        store=parts.console,
        relay_store=parts.store,
        intake=parts.intake,
        carriers=parts.carriers,
        wake_worker=parts.wake_worker,
        tally=parts.metrics.tally,
    )


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """``handler``, answering an HTML error page if it fails: 503 while the database is
    away (nothing was changed), 500 otherwise (logged, never shown)."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except StoreUnavailable as error:
            log.warning("console.store_unavailable", path=request.url.path, reason=str(error))
            return failure(
                503,
                "Unavailable",
                "The database cannot be reached right now; nothing was changed. Try again shortly.",
            )
        except Exception:
            log.exception("console.failed", path=request.url.path)
            return failure(500, "Something failed", "The relay failed to answer this page.")

    return run


def failure(status: int, title: str, detail: str) -> Response:
    return page(
        "error.html",
        status,
        visitor=None,
        title=title,
        active="",
        query="",
        notice=None,
        detail=detail,
    )
