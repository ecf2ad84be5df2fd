"""The console's routes (SPEC §10), added to the relay's app outside its OpenAPI: plain
Starlette endpoints, no dependency solving. The last one answers any other ``/console``
path with an HTML 404 carrying the console's headers."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.api.safety import SAFETY_HEADERS
from app.console import actions, pages

STATIC = files("app.console") / "static"
STATIC_TYPES = {"console.css": "text/css"}


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return await pages.not_found(request)
    headers = {**SAFETY_HEADERS, "Cache-Control": "public, max-age=3600"}
    return Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[name], headers=headers)


ROUTES: list[BaseRoute] = [
    Route("/console", pages.overview, methods=["GET"]),
    Route("/console/search", pages.search, methods=["GET"]),
    Route("/console/shipments/{tracking_number:path}", pages.shipment, methods=["GET"]),
    Route("/console/webhooks/{webhook_id:path}", pages.webhook, methods=["GET"]),
    Route("/console/deliveries", pages.deliveries, methods=["GET"]),
    Route("/console/quarantine", pages.quarantine, methods=["GET"]),
    Route("/console/accounts", pages.accounts, methods=["GET"]),
    Route("/console/static/{name}", static, methods=["GET"]),
    Route("/console/sign-in", actions.sign_in, methods=["POST"]),
    Route("/console/sign-out", actions.sign_out, methods=["POST"]),
    Route("/console/send-again", actions.send_again, methods=["POST"]),
    Route("/console/deliveries/retry-all", actions.retry_all, methods=["POST"]),
    Route("/console/deliveries/{delivery_id}/retry", actions.retry, methods=["POST"]),
    Route("/console/quarantine/replay", actions.replay, methods=["POST"]),
    Route("/console/quarantine/replay-all", actions.replay_all, methods=["POST"]),
    Route("/console/quarantine/discard", actions.discard, methods=["POST"]),
    Route("/console/{rest:path}", pages.not_found),
]
