"""The OpenAPI document describes errors as the relay sends them: ``{"error", "detail"}``."""

from __future__ import annotations

from typing import Any

from app.api.app import create_app
from app.settings import Settings


def document() -> dict[str, Any]:
    return create_app(Settings.model_construct()).openapi()


def test_every_error_answer_is_documented_as_the_relays_error_body() -> None:
    schema = document()
    errors = [
        (path, method, status, response)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]

    assert len(errors) > 20
    for path, method, status, response in errors:
        body = response["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ErrorAnswer"}, (path, method, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["ErrorAnswer"]["required"] == ["error", "detail"]


def test_admin_routes_document_their_401() -> None:
    paths = document()["paths"]

    for path in ("/shipments/{trackingNumber}", "/admin/deliveries", "/admin/quarantine/replay"):
        for operation in paths[path].values():
            assert "401" in operation["responses"], path
