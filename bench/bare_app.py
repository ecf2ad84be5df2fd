"""The ingest baseline: a bare Starlette endpoint that reads the body and answers 202.

Served by the same uvicorn (uvloop + httptools, one process) as ``relay serve``, without an
access log; the gap between it and the relay is what the relay's own work costs.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ACCEPTED = b'{"webhook_id":"wh_bare","events":0,"duplicates":0}'


async def webhook(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, status_code=202, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/webhooks/{carrier}", webhook, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
