"""Request bodies, read only after the route has authenticated the caller (SPEC §12):
within a size limit, through the one JSON reader, checked by a model in the sender's terms."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.types import Receive

from app.errors import BadRequest, InvalidJson, InvalidRequest, PayloadTooLarge
from app.json_reader import read_json
from app.problems import describe_problems

Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` bytes without reading it all."""
    return await read_received(request.headers.get("content-length"), request.receive, limit)


async def read_received(declared: str | None, receive: Receive, limit: int) -> bytes:
    """The body of an ASGI request, given its ``Content-Length``: over ``limit`` bytes, 413
    without reading it all; the client gone before its end, 400 (nothing was stored and
    nobody is listening; the sender will retry)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_json_body(request: Request, limit: int) -> Any:
    """The body's JSON value; 413 over ``limit``, 400 ``invalid_json`` when unreadable."""
    body = await read_body(request, limit)
    if not body.strip():
        raise InvalidJson("the body is empty; a JSON object is expected")
    return read_json(body)


def validated(model: type[Model], value: Any) -> Model:
    """``value`` as ``model``; 422 ``invalid_request`` naming each field and its problem."""
    if not isinstance(value, dict):
        raise InvalidRequest("body: must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise InvalidRequest(describe_problems(error.errors())) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body the route reads itself (after authentication)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
