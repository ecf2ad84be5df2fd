"""Tables of the relay, for SQLite and PostgreSQL alike. Every time column is UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from app.store.records import SchemaTooNew

SCHEMA_VERSION = 1
MIGRATION_LOCK = 7_441_226_100  # any constant, the same in every relay
MAX_ROW_ID = 2**63 - 1
"""Ids are BIGINT: past this SQLite's driver overflows and PostgreSQL refuses."""


def stored_time(value: datetime, dialect: str) -> Any:
    """A time as the database keeps it: UTC; on SQLite the text SQLAlchemy's DateTime writes
    (no offset, which SQLite would drop silently anyway). The one conversion on the way in."""
    if value.utcoffset() is None:
        raise ValueError("naive datetime given to the store; times must be timezone-aware")
    utc = value.astimezone(UTC)
    if dialect == "sqlite":  # "%Y-%m-%d %H:%M:%S.%f" (the offset cut), twice as fast as strftime
        return utc.isoformat(" ", "microseconds")[:26]
    return utc


def read_time(value: Any) -> datetime:
    """A stored time back as an aware UTC datetime. The one conversion on the way out."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(parsed, datetime)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, for the statements SQLAlchemy builds."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc: datetime = stored_time(value, "postgresql")
        # On SQLite, SQLAlchemy's DateTime writes the naive UTC time as stored_time's text.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else read_time(value)


# BigInteger ids that are still SQLite rowids (autoincrement works only on INTEGER there).
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

meta = Table(
    "relay_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("carrier", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    # accepted | quarantined | replayed
    Column("state", String(16), nullable=False),
    Column("error", Text),
    Column("new_events", Integer, nullable=False, server_default="0"),
    Column("duplicate_events", Integer, nullable=False, server_default="0"),
    Index("ix_webhooks_state", "state", "received_at"),
)

shipments = Table(
    "shipments",
    metadata,
    Column("tracking_number", String(128), primary_key=True),
    Column("carrier", String(64)),
    Column("tracking_url", Text),
    Column("order_id", String(128)),
    Column("invoice_number", String(128)),
    Column("account", String(128)),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("registered_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_shipments_invoice", "order_id", "invoice_number"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("identity", String(64), nullable=False, unique=True),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(128), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("carrier_status", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("city", Text, nullable=False),
    Column("state", Text, nullable=False),
    # The webhook that first reported the event (written in the same transaction).
    Column("webhook_id", String(40), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_events_tracking", "tracking_number", "occurred_at"),
)

# Other identifiers a carrier gives the same shipment (Melhor Envio: the label's carrier
# tracking code and protocol, while its events are keyed by the label id). A shipment
# registered under an alias delivers the events of the tracking number it stands for.
shipment_aliases = Table(
    "shipment_aliases",
    metadata,
    Column("alias", String(128), primary_key=True),
    Column("tracking_number", String(128), nullable=False),
    Index("ix_shipment_aliases_tracking", "tracking_number"),
)

# Invoices whose VTEX package was seen to carry a tracking number (set by the relay's
# PATCH if it lacked one): the check before an invoice's first PUT is done once.
# checked_by: what showed it, one of CHECKED_BY.
invoice_checks = Table(
    "invoice_checks",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("invoice_number", String(128), primary_key=True),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("patched", Boolean, nullable=False),
    Column("checked_by", String(32), nullable=False, server_default="Get order"),
)
CHECKED_BY = ("Get order", "partial invoice PATCH", "orders hook")

ADDED_COLUMNS = {
    ("invoice_checks", "checked_by"): "VARCHAR(32) NOT NULL DEFAULT 'Get order'",
}
"""Columns added since a table was first created: ``migrate`` adds them where missing (an
older relay's rows take the default, and an older relay still writes rows that work)."""

# VTEX orders hook notifications ("invoiced"), acknowledged at once and worked off here:
# the order is read and its packages registered.
order_notifications = Table(
    "order_notifications",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("account", String(128)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Index("ix_order_notifications_due", "next_attempt_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(128), nullable=False),
    Column("invoice_number", String(128), nullable=False),
    Column("account", String(128)),
    # pending | retrying | delivered | dead
    Column("state", String(16), nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    # The newest event id the last sent body contained.
    Column("covered_event_id", Id),
    Column("body", Text),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("receipt", Text),
    Column("vtex_date", String(64)),
    Column("delivered_at", UTCDateTime),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    Index("ix_deliveries_invoice", "order_id", "invoice_number"),
    # At most one open delivery per invoice: new events join it instead of queueing more.
    Index(
        "ux_deliveries_open_invoice",
        "order_id",
        "invoice_number",
        unique=True,
        sqlite_where=text("state IN ('pending', 'retrying')"),
        postgresql_where=text("state IN ('pending', 'retrying')"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer),
    Column("response_body", Text),
    Column("error", Text),
    Index("ix_attempts_delivery", "delivery_id", "attempt"),
)

# A 429 pauses every delivery to its account ("" is the default account) until then.
account_pauses = Table(
    "account_pauses",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("paused_until", UTCDateTime, nullable=False),
)


# Console sign-ins (SPEC §10): the cookie carries the id, this row its role and end; signing
# out deletes it, so the old cookie stops working on every replica. Only a hash of the id is
# kept, so that a copy of the database signs nobody in.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# What the console's Overview and Accounts pages count, per minute (SPEC §10): webhooks by
# carrier and outcome (accepted, refused, quarantined), deliveries by account and outcome,
# delivery latencies by bucket. Each relay adds its own tally to the minute's row, so a
# flood of refused calls costs one row per carrier per minute, and every replica's counts
# are seen by all. ``last_at``: the newest occurrence counted in the row.
minute_counts = Table(
    "minute_counts",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("outcome", String(32), primary_key=True),
    Column("minute", UTCDateTime, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Index("ix_minute_counts_minute", "minute"),
)

# Tombstones of pruned invoices (SPEC §11): each tracking number and alias of a pruned
# invoice, so that a carrier resending its old webhooks gets 202 and VTEX no PUT of a partial
# history. Kept for one more retention period after pruning.
pruned_shipments = Table(
    "pruned_shipments",
    metadata,
    Column("tracking_number", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False),
    Column("invoice_number", String(128), nullable=False),
    Column("pruned_at", UTCDateTime, nullable=False),
    Index("ix_pruned_shipments_at", "pruned_at"),
)

# Periodic tasks run once per interval per fleet (SPEC §11): a relay runs one only after
# moving its ``started_at`` forward, which one relay at a time can do.
periodic_runs = Table(
    "periodic_runs",
    metadata,
    Column("task", String(32), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
)

ADDED_INDEXES = (
    # Pruning: whether a webhook still reported an event that is kept.
    Index("ix_events_webhook", events.c.webhook_id),
    # The console's Deliveries page: a state's newest first, by keyset.
    Index("ix_deliveries_state_id", deliveries.c.state, deliveries.c.id),
    # Its search box: an invoice by its number alone (orderId has ix_shipments_invoice).
    Index("ix_shipments_invoice_number", shipments.c.invoice_number),
)
"""Indexes added to a table after it was first created: ``migrate`` creates those missing."""


def insert_into(conn: Connection, table: Table) -> Any:
    """The database's own INSERT, which knows ``ON CONFLICT``."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def migrate(conn: Connection) -> int:
    """Create missing tables; return the schema version. Safe to run repeatedly, and from
    several pods at once (PostgreSQL: they queue on an advisory lock)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
    metadata.create_all(conn)
    _add_missing_columns(conn)
    for index in ADDED_INDEXES:
        index.create(conn, checkfirst=True)
    version = conn.scalar(select(meta.c.value).where(meta.c.key == "schema_version"))
    if version is not None and int(version) > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema is version {version}, this relay knows {SCHEMA_VERSION}"
        )
    if version is None:
        conn.execute(
            insert_into(conn, meta).on_conflict_do_nothing(),
            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
        )
    return SCHEMA_VERSION


def _add_missing_columns(conn: Connection) -> None:
    inspector = inspect(conn)
    for (table, column), definition in ADDED_COLUMNS.items():
        if column not in {found["name"] for found in inspector.get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
