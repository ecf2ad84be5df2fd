"""The one owner of SQL. The rest of the relay imports from here only: the :class:`Store`
front, the records it hands back and the errors it raises.

Inside: ``engine`` (threads, group commit), ``schema`` (tables, migration, time
conversion), ``queries`` and ``sql/*.sql`` (named statements), one module per concern
(``webhooks``, ``shipments``, ``deliveries``, ``orders``, ``reads``, ``retention``), ``front`` (the
:class:`SqlStore` on top of them) and ``protocol`` (the :class:`Store` every caller types).
"""

from app.store.engine import StoreUnavailable, sync_url
from app.store.front import SqlStore
from app.store.protocol import Store
from app.store.records import (
    OPEN_STATES,
    RESPONSE_KEEP_BYTES,
    ActiveInvoice,
    AttemptRecord,
    DeliveryJob,
    DeliveryView,
    IngestResult,
    InvoiceCheck,
    InvoiceHistory,
    InvoiceShipment,
    NotRetriable,
    OrderNotification,
    QuarantinedWebhook,
    QueueSnapshot,
    Receipt,
    RecordedAttempt,
    Registration,
    SchemaTooNew,
    ShipmentView,
    StoredEvent,
    first_bytes,
)
from app.store.retention import PruneReport
from app.store.schema import CHECKED_BY, MAX_ROW_ID, SCHEMA_VERSION
from app.store.upkeep_front import UpkeepStore

__all__ = [
    "CHECKED_BY",
    "MAX_ROW_ID",
    "OPEN_STATES",
    "RESPONSE_KEEP_BYTES",
    "SCHEMA_VERSION",
    "ActiveInvoice",
    "AttemptRecord",
    "DeliveryJob",
    "DeliveryView",
    "IngestResult",
    "InvoiceCheck",
    "InvoiceHistory",
    "InvoiceShipment",
    "NotRetriable",
    "OrderNotification",
    "PruneReport",
    "QuarantinedWebhook",
    "QueueSnapshot",
    "Receipt",
    "RecordedAttempt",
    "Registration",
    "SchemaTooNew",
    "ShipmentView",
    "SqlStore",
    "Store",
    "StoreUnavailable",
    "StoredEvent",
    "UpkeepStore",
    "first_bytes",
    "sync_url",
]
