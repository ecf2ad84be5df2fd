"""The relay's OpenAPI document, with its errors as they are sent: FastAPI documents a 422
as its own ``{"detail": [...]}`` list, while every error the relay answers is
``{"error": code, "detail": sentence}`` (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field


class ErrorAnswer(BaseModel):
    """Every error the relay answers; a few carry more (``webhook_id`` for a quarantine)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="a code from the README's table, e.g. unauthorized")
    detail: str = Field(description="what was wrong, in words")


def relay_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document with every 4xx and 5xx answer an ErrorAnswer."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_error_answers(schema)
        return app.openapi_schema

    return openapi


def with_error_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each error response's body an ErrorAnswer (FastAPI's validation
    error schemas removed)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorAnswer"] = ErrorAnswer.model_json_schema()
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = content
    return schema
