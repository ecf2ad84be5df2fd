"""Small readers adapters share, so that each adapter is only its carrier's mapping."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.normalize.model import PayloadRejected

T = TypeVar("T")


def _is_number(value: Any) -> bool:
    """A JSON number that names something (Python's JSON reads ``NaN`` and ``1e400`` too)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def require_object(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or a rejection naming ``where``."""
    if not isinstance(value, Mapping):
        raise PayloadRejected(f"{where} must be a JSON object")
    return value


def object_or_empty(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (for optional parts)."""
    return value if isinstance(value, Mapping) else {}


def require_list(value: Any, where: str) -> list[Any]:
    """``value`` as a JSON array (``null`` counts as empty), or a rejection naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadRejected(f"{where} must be a JSON array")
    return value


def require_text(value: Any, where: str) -> str:
    """A non-empty string (numbers are accepted as their text), or a rejection."""
    if _is_number(value):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PayloadRejected(f"{where} is missing or empty")
    return value.strip()


def optional_text(*values: Any) -> str:
    """The first of ``values`` that is a non-blank string, trimmed; ``""`` when none is."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def text_or_number(value: Any) -> str:
    """A non-blank string trimmed, or a JSON number as its text; ``""`` otherwise.

    For identifiers and references that carriers send either way (``"123"`` or ``123``).
    """
    if _is_number(value):
        return str(value)
    return optional_text(value)


def http_url(value: Any) -> str | None:
    """``value`` when it is a usable http(s) URL without blanks; None otherwise."""
    text = optional_text(value)
    if not text or any(char.isspace() for char in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in {"http", "https"} and parts.netloc else None


def read_each(value: Any, where: str, read: Callable[[Mapping[str, Any], str], T]) -> tuple[T, ...]:
    """Each object of the JSON array ``value`` through ``read(item, path_of_item)``."""
    return tuple(
        read(require_object(item, f"{where}.{i}"), f"{where}.{i}")
        for i, item in enumerate(require_list(value, where))
    )
