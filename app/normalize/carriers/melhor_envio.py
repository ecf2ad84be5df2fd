"""Melhor Envio label lifecycle webhooks (``order.*`` events, webhooks API of 2024).

The envelope is ``{event, data}``; ``data`` is the label (``id``, ``protocol``,
``status``, ``tracking``, ``self_tracking``, ``tracking_url``, ``tags``, and the
milestone timestamps ``created_at``, ``paid_at``, ``generated_at``, ``posted_at``,
``delivered_at``, ``canceled_at``, ``expired_at``). These are not carrier scans: there
is no event list, no place and no carrier text.

Identity. The tracking number is always ``data.id``, the label UUID: ``data.tracking``
(the carrier's code) can stay ``null`` for up to a business day after posting, so it
cannot name the shipment. ``aliases`` are the non-blank ``data.tracking``,
``data.protocol`` and ``data.self_tracking`` (in that order, without repeats), so a
shipment registered under any of them matches.

Events. Each milestone timestamp present becomes one event, so each webhook carries
the label's milestones so far and a resend (or the next webhook) repeats them with
the same time, code and text, which the relay's identity dedupes:

=================  ===============  ==================  ===========================
field              carrier_status   status              description
=================  ===============  ==================  ===========================
``created_at``     ``created``      info_received       Etiqueta criada
``paid_at``        ``released``     info_received       Etiqueta paga
``generated_at``   ``generated``    info_received       Etiqueta gerada
``posted_at``      ``posted``       in_transit          Objeto postado
``delivered_at``   ``delivered``    delivered           Objeto entregue
``canceled_at``    ``cancelled``    exception           Etiqueta cancelada
``expired_at``     ``expired``      exception           Etiqueta expirada
=================  ===============  ==================  ===========================

``carrier_status`` is the name of the webhook event announcing the milestone
(``paid_at`` comes with ``order.released``; no event announces expiry). A webhook
whose own milestone is ``null`` (``order.delivered`` without ``delivered_at``...) is
rejected naming that field: it is the one thing such a webhook says.

Events without a milestone carry their time in ``data.updated_at`` (not in the
documented sample, present on Melhor Envio's label objects):

- ``order.undelivered`` (Objeto não entregue), ``order.paused`` (Entrega pausada:
  aguardando ação do destinatário) and ``order.suspended`` (Envio suspenso) add an
  exception event at ``data.updated_at``. Without ``data.updated_at`` the webhook is
  rejected naming it: silently dropping the only notice of a problem is worse than a
  quarantined body an operator can replay.
- ``order.received`` (received at a Pegaki drop-off point) adds an in_transit event
  "Objeto recebido no ponto de postagem" when ``data.updated_at`` is present, and
  nothing otherwise (``posted_at`` follows anyway).
- ``order.pending`` (label back in the cart) and unknown events add nothing.

Times are ISO 8601 with ``+00:00``; Melhor Envio documents no zone for a time without
an offset, so one is read in the default zone. A blank milestone counts as ``null``.

``tracking_url``: ``data.tracking_url`` when it is an http(s) URL. The documented
sample writes ``"https: //www.melhorrastreio..."``: blanks between the scheme's colon
and ``//`` are removed; any other unusable value (no scheme, blanks inside) is dropped.

``references``: ``tag`` (the first non-blank ``data.tags[].tag``, usually the
platform's order id) and ``protocol`` (``data.protocol``, ``ORD-...``). Malformed tags
are skipped rather than rejected: they never change the events.

Registering a webhook makes Melhor Envio send a signed test POST without a label
(no ``data`` or no ``data.id``); it yields no update (``[]``), so the relay answers it
with a success and registration succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from app.normalize.fields import (
    http_url,
    optional_text,
    require_object,
    require_text,
    text_or_number,
)
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    Status,
    TrackingEvent,
    oldest_first,
)
from app.normalize.times import parse_timestamp


class _Step(NamedTuple):
    carrier_status: str
    status: Status
    description: str


_MILESTONES: dict[str, _Step] = {
    "created_at": _Step("created", Status.INFO_RECEIVED, "Etiqueta criada"),
    "paid_at": _Step("released", Status.INFO_RECEIVED, "Etiqueta paga"),
    "generated_at": _Step("generated", Status.INFO_RECEIVED, "Etiqueta gerada"),
    "posted_at": _Step("posted", Status.IN_TRANSIT, "Objeto postado"),
    "delivered_at": _Step("delivered", Status.DELIVERED, "Objeto entregue"),
    "canceled_at": _Step("cancelled", Status.EXCEPTION, "Etiqueta cancelada"),
    "expired_at": _Step("expired", Status.EXCEPTION, "Etiqueta expirada"),
}
# The milestone each event announces: that field must be there.
_EVENT_MILESTONES = {step.carrier_status: name for name, step in _MILESTONES.items()}
# Events without a milestone, timed by data.updated_at; True: the time is required.
_UPDATES: dict[str, tuple[_Step, bool]] = {
    "undelivered": (_Step("undelivered", Status.EXCEPTION, "Objeto não entregue"), True),
    "paused": (
        _Step("paused", Status.EXCEPTION, "Entrega pausada: aguardando ação do destinatário"),
        True,
    ),
    "suspended": (_Step("suspended", Status.EXCEPTION, "Envio suspenso"), True),
    "received": (
        _Step("received", Status.IN_TRANSIT, "Objeto recebido no ponto de postagem"),
        False,
    ),
}
_SCHEME_GAP = re.compile(r"^(https?):\s+//", re.IGNORECASE)


def _present(value: Any) -> bool:
    """Whether a milestone is set: Melhor Envio writes ``null`` (or, leniently, ``""``)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _event(step: _Step, when: datetime) -> TrackingEvent:
    return TrackingEvent(
        occurred_at=when,
        status=step.status,
        carrier_status=step.carrier_status,
        description=step.description,
    )


def _events(name: str, label: Mapping[str, Any], context: ParseContext) -> list[TrackingEvent]:
    events = [
        _event(step, parse_timestamp(label[field], context.default_zone, field=f"data.{field}"))
        for field, step in _MILESTONES.items()
        if _present(label.get(field))
    ]
    own = _EVENT_MILESTONES.get(name)
    if own is not None and not _present(label.get(own)):
        raise PayloadRejected(f"data.{own} is missing: event order.{name} needs it")
    update = _UPDATES.get(name)
    if update is not None:
        step, required = update
        updated_at = label.get("updated_at")
        if _present(updated_at) or required:
            when = parse_timestamp(updated_at, context.default_zone, field="data.updated_at")
            events.append(_event(step, when))
    return events


def _tracking_url(value: Any) -> str | None:
    return http_url(_SCHEME_GAP.sub(r"\1://", optional_text(value)))


def _first_tag(tags: Any) -> str:
    if not isinstance(tags, list):
        return ""
    for tag in tags:
        text = text_or_number(tag.get("tag")) if isinstance(tag, Mapping) else ""
        if text:
            return text
    return ""


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read an ``order.*`` webhook; the label's milestones become the events."""
    body = require_object(payload, "body")
    label = body.get("data")
    if label is None:
        return []  # the registration test POST: no label
    label = require_object(label, "data")
    if not _present(label.get("id")):
        return []
    tracking_number = require_text(label["id"], "data.id")
    name = require_text(body.get("event"), "event").removeprefix("order.")

    aliases = tuple(
        dict.fromkeys(
            alias
            for alias in (
                text_or_number(label.get(key)) for key in ("tracking", "protocol", "self_tracking")
            )
            if alias and alias != tracking_number
        )
    )
    found = (
        ("tag", _first_tag(label.get("tags"))),
        ("protocol", text_or_number(label.get("protocol"))),
    )
    references = {key: value for key, value in found if value}
    return [
        ShipmentUpdate(
            tracking_number,
            oldest_first(_events(name, label, context)),
            tracking_url=_tracking_url(label.get("tracking_url")),
            aliases=aliases,
            references=references,
        )
    ]
