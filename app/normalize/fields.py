"""Small readers adapters share, so that each adapter is only its carrier's mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from app.normalize.model import PayloadRejected

T = TypeVar("T")


def require_object(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or a rejection naming ``where``."""
    if not isinstance(value, Mapping):
        raise PayloadRejected(f"{where} must be a JSON object")
    return value


def require_list(value: Any, where: str) -> list[Any]:
    """``value`` as a JSON array (``null`` counts as empty), or a rejection naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadRejected(f"{where} must be a JSON array")
    return value


def require_text(value: Any, where: str) -> str:
    """A non-empty string (numbers are accepted as their text), or a rejection."""
    if isinstance(value, int | float) and not isinstance(value, bool):
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


def read_each(value: Any, where: str, read: Callable[[Mapping[str, Any], str], T]) -> tuple[T, ...]:
    """Each object of the JSON array ``value`` through ``read(item, path_of_item)``."""
    return tuple(
        read(require_object(item, f"{where}.{i}"), f"{where}.{i}")
        for i, item in enumerate(require_list(value, where))
    )
