"""What every benchmark run shares: the credentials it gives the relay, the rates, the burst
runs and the issue's targets."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
LUA = BENCH / "sign.lua"

SECRET = "bench-webhook-secret"  # plain text: used as the HMAC key as is (not whsec_)
ADMIN_TOKEN = "bench-admin-token"
APP_KEY = "vtexappkey-bench-ABCDEF"
APP_TOKEN = "bench-app-token"
MAX_CONCURRENCY = 8
DRAIN_RATE_LIMIT = 100_000
DEFAULT_RATE_LIMIT = 50

DATABASES = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DEFAULT_POSTGRESQL_URL = "postgresql://postgres@127.0.0.1:5432/test"

# (name, rate limit, seconds the 1,000 webhooks are spread over (0: as fast as they go), run on
# PostgreSQL too) of each burst run; the first is the one the target applies to, the
# others are variants, run on SQLite only to keep the run short: what they show (the rate
# limit and the coalescing window) is the worker's, not the database's.
BURSTS = (
    ("burst", DRAIN_RATE_LIMIT, 0.0, True),
    ("burst-default-rate", DEFAULT_RATE_LIMIT, 0.0, False),
    ("burst-spread-5s", DRAIN_RATE_LIMIT, 5.0, False),
)

TARGET_INGEST_RATIO = 0.20
TARGET_INGEST_P99_MS = 50.0
TARGET_DRAIN_RATIO = 0.50  # requests/s
TARGET_DRAIN_INVOICE_RATIO = 0.35  # invoices/s
TARGET_BURST_PUTS = 1.2
TARGET_RSS_MIB = 150.0
TARGET_READY_S = 2.0
