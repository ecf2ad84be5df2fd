"""``GET /docs``: Swagger UI from the relay's own files (the ``fastapi-offline`` package's
copy of Swagger UI 5, and ``static/swagger-init.js``), so that it works without internet and
under a Content-Security-Policy that allows no inline script and no other origin."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from app.api.safety import SAFETY_HEADERS
from app.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS: dict[str, tuple[Traversable, str]] = {
    "swagger-ui-bundle.js": (files("fastapi_offline") / "static", "text/javascript"),
    "swagger-ui.css": (files("fastapi_offline") / "static", "text/css"),
    "favicon.png": (files("fastapi_offline") / "static", "image/png"),
    "swagger-init.js": (files("app.api") / "static", "text/javascript"),
}
"""What ``/docs/static/{name}`` serves: the directory it is in, and its type."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tracking relay API</title>
<link rel="icon" type="image/png" href="/docs/static/favicon.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=SAFETY_HEADERS)


@router.get("/docs/static/{name}")
async def docs_asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"/docs/static has no file {name!r}")
    directory, media_type = found
    headers = {**SAFETY_HEADERS, "Cache-Control": "public, max-age=86400"}
    return Response((directory / name).read_bytes(), media_type=media_type, headers=headers)
