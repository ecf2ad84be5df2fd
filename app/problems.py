"""Validation problems in the sender's terms: a field path and what is wrong with it.

pydantic's messages name Python types and classes ("Input should be a valid dictionary or
instance of _GenericWebhook"); what reaches a carrier, an operator or a log is said here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_BY_TYPE = {
    "missing": "is required",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be text",
    "string_unicode": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing_size": "is too long a number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "none_required": "must be null",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "string_pattern_mismatch": "contains characters that are not allowed here",
    "url_parsing": "must be a URL",
    "datetime_parsing": "must be a date and time",
    "datetime_from_date_parsing": "must be a date and time",
    "timezone_aware": "must have a UTC offset",
}


def field_path(location: Sequence[Any]) -> str:
    """``("body", "events", 0, "time")`` → ``events.0.time`` (the adapters' own notation);
    the whole body is ``body``."""
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def problem_message(error: Mapping[str, Any]) -> str:
    """What is wrong with one field, e.g. ``must be text`` or ``must be at most 128 characters``."""
    kind = str(error.get("type", ""))
    context: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    if kind in ("enum", "literal_error"):
        return f"must be one of {context.get('expected', 'the documented values')}"
    if kind == "string_too_short":
        minimum = context.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must have at least {minimum} characters"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    if kind == "too_short":
        minimum = context.get("min_length", 1)
        return f"must have at least {minimum} item{'s' if minimum != 1 else ''}"
    if kind == "too_long":
        return f"must have at most {context.get('max_length')} items"
    bounds = {
        "greater_than": "greater than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(context.values()), "")
        return f"must be {bounds[kind]} {limit}"
    if kind in ("value_error", "assertion_error"):
        return str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return "is not valid"


def describe_problems(errors: Iterable[Mapping[str, Any]], limit: int = 5) -> str:
    """``events[0].time: is required; orderId: must be text`` (the first ``limit``)."""
    described = [
        f"{field_path(error.get('loc', ()))}: {problem_message(error)}"
        for error, _ in zip(errors, range(limit), strict=False)
    ]
    return "; ".join(described) or "the request is not valid"
