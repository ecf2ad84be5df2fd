"""The webhooks and shipments each phase sends, and the signed request files wrk replays.

Signatures are tests/support's Standard Webhooks signer (HMAC-SHA256 of
``id.timestamp.body``, base64, ``v1,``), as ``app/ingest/signatures.py`` checks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.config import SECRET
from tests.support.signing import standard_webhooks_headers

STATUSES = ("info_received", "in_transit", "in_transit", "in_transit", "out_for_delivery")
PLACES = (
    ("Curitiba", "PR"),
    ("São Paulo", "SP"),
    ("Campinas", "SP"),
    ("Belo Horizonte", "MG"),
    ("Rio de Janeiro", "RJ"),
    ("Porto Alegre", "RS"),
)
BRT = timezone(timedelta(hours=-3))  # carriers in Brazil send local times with an offset
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def signed_headers(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """A fresh ``webhook-id``, the timestamp (now by default) and the signature."""
    return standard_webhooks_headers(SECRET, body, timestamp)


def compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def event(when: datetime, status: str, place: int, text: str) -> dict[str, Any]:
    city, state = PLACES[place % len(PLACES)]
    return {
        "time": when.astimezone(BRT).isoformat(),
        "status": status,
        "description": text,
        "city": city,
        "state": state,
    }


def ingest_payload(prefix: str, k: int) -> bytes:
    """Webhook ``k`` of a run: 6 new events (about 1.5 KB); 4 webhooks share a tracking number
    and each names its invoice (so it registers the shipment and queues a delivery)."""
    shipment = k // 4
    number = f"{prefix}{shipment:07d}BR"
    base = T0 + timedelta(minutes=7 * k)
    events = [
        event(
            base + timedelta(seconds=37 * j),
            STATUSES[j % len(STATUSES)],
            k + j,
            f"Objeto em trânsito - por favor aguarde; unidade de tratamento {k}-{j}, "
            "encaminhado para a unidade de distribuição do destinatário",
        )
        for j in range(6)
    ]
    return compact(
        {
            "trackingNumber": number,
            "orderId": f"{prefix}{shipment:07d}-01",
            "invoiceNumber": f"NF{shipment:09d}",
            "trackingUrl": f"https://carrier.example/track/{number}",
            "events": events,
        }
    )


def write_ingest_requests(path: Path, prefix: str, count: int, stamp: int) -> list[int]:
    """One signed request a line for sign.lua: id, timestamp, signature, body (TAB between);
    the sizes of the bodies."""
    sizes = []
    with path.open("wb") as out:
        for k in range(count):
            body = ingest_payload(prefix, k)
            headers = signed_headers(body, stamp)
            out.write(
                f"{headers['webhook-id']}\t{stamp}\t{headers['webhook-signature']}\t".encode()
            )
            out.write(body + b"\n")
            sizes.append(len(body))
    return sizes


def first_request(request_file: Path) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a request file's first line."""
    with request_file.open("rb") as lines:
        msg_id, stamp, signature, body = next(lines).rstrip(b"\n").split(b"\t", 3)
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id.decode(),
        "webhook-timestamp": stamp.decode(),
        "webhook-signature": signature.decode(),
    }


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    order_id: str
    invoice_number: str


# bench/standin.py gives each order its invoice back (Get order) from these numbers.
def drain_shipment(i: int) -> Shipment:
    return Shipment(f"DR{i:08d}BR", f"{1172452900000 + i}-01", f"{30000 + i:09d}")


def burst_shipment(i: int) -> Shipment:
    return Shipment(f"BU{i:06d}BR", f"{1272452900000 + i}-01", f"{40000 + i:09d}")


def drain_webhook(shipment: Shipment, count: int, first: int = 0) -> bytes:
    """Events ``first`` to ``first + count - 1`` of the shipment, 3 hours apart; the tenth
    (``j == 9``) says delivered."""
    events = [
        event(
            T0 + timedelta(hours=3 * j),
            "delivered" if j == 9 else STATUSES[j % len(STATUSES)],
            j,
            f"Objeto em trânsito - por favor aguarde (etapa {j + 1})",
        )
        for j in range(first, first + count)
    ]
    return compact({"trackingNumber": shipment.tracking_number, "events": events})


def burst_webhook(shipment: Shipment, k: int) -> bytes:
    one = event(
        T0 + timedelta(hours=k),
        STATUSES[k % len(STATUSES)],
        k,
        f"Objeto em trânsito - por favor aguarde (etapa {k + 1})",
    )
    return compact({"trackingNumber": shipment.tracking_number, "events": [one]})
