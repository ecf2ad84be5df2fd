"""Turning a page's facts into an HTML answer: the Jinja2 environment (autoescaping every
value, so a stranger's payload shows as text), and the safety headers every answer of the
console carries (SPEC §10)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from app.api.safety import SAFETY_HEADERS
from app.console.views import age, size, when

ENVIRONMENT = Environment(
    loader=PackageLoader("app.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters["when"] = when
ENVIRONMENT.filters["age"] = age
ENVIRONMENT.filters["size"] = size
ENVIRONMENT.filters["segment"] = lambda value: quote(str(value), safe="")
ENVIRONMENT.filters["text"] = lambda body: body.decode("utf-8", errors="replace")

NO_STORE = {**SAFETY_HEADERS, "Cache-Control": "no-store"}
"""Pages show live data and may show payloads: no cache keeps them."""


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The rendered template as an answer with the console's headers."""
    html = ENVIRONMENT.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)
