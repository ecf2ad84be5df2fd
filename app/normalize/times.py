"""Timestamp reading shared by adapters: everything ends up timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.normalize.model import PayloadRejected

# Scans outside these years are data errors; refusing them keeps every zone conversion safe.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_timestamp(value: object, zone: ZoneInfo, *, field: str) -> datetime:
    """Read an ISO 8601 timestamp or date; values without an offset are read in ``zone``.

    A bare date means midnight in ``zone``. Raises :class:`PayloadRejected` naming
    ``field`` when the value is missing or unreadable.
    """
    if not isinstance(value, str) or not value.strip():
        raise PayloadRejected(f"{field} is missing or not a timestamp string")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadRejected(f"{field} is not an ISO 8601 timestamp: {text[:40]!r}") from None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PayloadRejected(f"{field} is not a plausible tracking time: {text[:40]!r}")
    return utc
