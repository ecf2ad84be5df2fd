"""``/docs`` is Swagger UI from the relay's own files, under a strict Content-Security-Policy:
it works without internet, and nothing on it comes from another origin or runs inline."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.app import create_app
from app.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = create_app(Settings.model_construct())
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test")


async def test_the_page_loads_only_the_relays_own_files(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == [
        "/docs/static/favicon.png",
        "/docs/static/swagger-init.js",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    assert "<script>" not in page.text  # every script is a file the CSP allows
    types = {
        "favicon.png": "image/png",
        "swagger-init.js": "text/javascript",
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
    }
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        assert asset.headers["content-type"].startswith(types[source.rsplit("/", 1)[1]])
        assert len(asset.content) > 100
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    init = (await client.get("/docs/static/swagger-init.js")).text
    assert '"/openapi.json"' in init
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.")


async def test_the_page_and_its_files_carry_the_safety_headers(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/docs/static/swagger-init.js", "/docs/static/swagger-ui.css"):
        answer = await client.get(path)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy
        assert "http" not in policy  # no other origin, no CDN
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


async def test_a_file_docs_does_not_serve_is_a_json_404(client: httpx.AsyncClient) -> None:
    for name in ("redoc.standalone.js", "..%2F..%2Fsettings.py", "nothing.js"):
        answer = await client.get(f"/docs/static/{name}")
        assert answer.status_code == 404, name
        assert answer.json()["error"] == "not_found"
    assert (await client.get("/redoc")).status_code == 404


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=60))
async def test_any_file_name_gets_an_answer_and_never_a_5xx(
    client: httpx.AsyncClient, name: str
) -> None:
    answer = await client.get("/docs/static/" + quote(name, safe=""))
    assert answer.status_code < 500, (name, answer.status_code)
    if answer.status_code == 404:
        assert answer.json()["error"] == "not_found"
