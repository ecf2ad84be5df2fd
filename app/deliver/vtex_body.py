"""The VTEX tracking body of an invoice, built from every event the relay holds (SPEC §2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

from app.normalize.model import Status, TrackingEvent

DESCRIPTION_LIMIT = 5000
EventDateFormat = Literal["date", "datetime"]


def _event_date(event: TrackingEvent, zone: ZoneInfo, date_format: EventDateFormat) -> str:
    local = event.occurred_at.astimezone(zone)
    if date_format == "datetime":
        return local.isoformat(timespec="seconds")
    return local.strftime("%Y-%m-%d")


def build_tracking_body(
    events: Sequence[TrackingEvent],
    zone: ZoneInfo,
    date_format: EventDateFormat = "date",
) -> dict[str, Any]:
    """``{isDelivered, deliveredDate, events}`` for ``PUT .../invoice/{n}/tracking``.

    ``events`` is the invoice's deduplicated history in any order; it is sent oldest
    first (ties keep their given order). ``isDelivered`` holds once any event means
    delivered, so adding events can never turn it back to false; ``deliveredDate`` is
    the earliest delivered event's time, ``yyyy-mm-dd hh:mm`` in ``zone``.
    """
    ordered = sorted(events, key=lambda event: event.occurred_at)
    delivered = [event for event in ordered if event.status is Status.DELIVERED]
    return {
        "isDelivered": bool(delivered),
        "deliveredDate": (
            delivered[0].occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if delivered
            else None
        ),
        "events": [
            {
                "city": event.city.strip(),
                "state": event.state.strip(),
                "description": event.description.strip()[:DESCRIPTION_LIMIT],
                "date": _event_date(event, zone, date_format),
            }
            for event in ordered
        ],
    }
