"""``python -m tests.support.patched_relay serve ...``: the ``relay`` command with faults
injected on request, for end-to-end tests of what the relay does about them.

- ``RELAY_TEST_BREAK_GENERIC=1``: the generic carrier keeps its signature check but its parser
  rejects every payload with :data:`BROKEN_DETAIL` (quarantine, then replay after the "fix").
- ``RELAY_TEST_CLAIM_DELAY=<seconds>``: a claim that took deliveries returns that much later,
  as if the database were slow, so that a signal can arrive while the worker is claiming.
- ``RELAY_TEST_INGEST_HOLD=<seconds>``: a webhook's transaction waits that long after its
  events and deliveries are written, before its COMMIT (holding its locks), as a busy writer
  would; another replica's webhooks commit meanwhile.
- ``RELAY_TEST_HISTORY_DELAY=<seconds>``: the worker reads an invoice's history that much
  later, as when the delivery waits for a free sending slot after its claim.

Without them this is exactly ``relay``. The process runs from a temporary directory, so
:data:`COMMAND` needs :data:`ROOT` on ``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMMAND = (sys.executable, "-m", "tests.support.patched_relay")
BREAK_VARIABLE = "RELAY_TEST_BREAK_GENERIC"
CLAIM_DELAY_VARIABLE = "RELAY_TEST_CLAIM_DELAY"
INGEST_HOLD_VARIABLE = "RELAY_TEST_INGEST_HOLD"
HISTORY_DELAY_VARIABLE = "RELAY_TEST_HISTORY_DELAY"
BROKEN_DETAIL = "events.0.status: this test broke the generic adapter on purpose"


def _broken_parse(payload: Any, context: Any) -> Any:
    from app.normalize.model import PayloadRejected

    raise PayloadRejected(BROKEN_DETAIL)


def break_generic() -> None:
    """Swap the generic carrier's parser in the registry every part of the relay reads."""
    from app.ingest.carriers import BUILT_IN

    assert isinstance(BUILT_IN, dict), "BUILT_IN is no longer a dict: update this helper"
    BUILT_IN["generic"] = dataclasses.replace(BUILT_IN["generic"], parse=_broken_parse)


def slow_claims(seconds: float) -> None:
    """Claims that took deliveries return ``seconds`` later (the claim itself is committed)."""
    from app.store import SqlStore

    original = SqlStore.claim_due_deliveries

    async def claim(self: SqlStore, *args: Any, **kwargs: Any) -> Any:
        jobs = await original(self, *args, **kwargs)
        if jobs:
            await asyncio.sleep(seconds)
        return jobs

    SqlStore.claim_due_deliveries = claim  # type: ignore[method-assign]


def hold_ingest(seconds: float) -> None:
    """Webhook transactions sleep ``seconds`` on the writer thread before they commit."""
    from app.store import webhooks

    original = webhooks.accept

    def accept(*args: Any, **kwargs: Any) -> Any:
        results = original(*args, **kwargs)
        time.sleep(seconds)
        return results

    webhooks.accept = accept  # type: ignore[assignment]


def slow_history(seconds: float) -> None:
    """The worker reads an invoice's history ``seconds`` later."""
    from app.store import SqlStore

    original = SqlStore.invoice_history

    async def invoice_history(self: SqlStore, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(seconds)
        return await original(self, *args, **kwargs)

    SqlStore.invoice_history = invoice_history  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    if os.environ.get(BREAK_VARIABLE) == "1":
        break_generic()
    if os.environ.get(CLAIM_DELAY_VARIABLE):
        slow_claims(float(os.environ[CLAIM_DELAY_VARIABLE]))
    if os.environ.get(INGEST_HOLD_VARIABLE):
        hold_ingest(float(os.environ[INGEST_HOLD_VARIABLE]))
    if os.environ.get(HISTORY_DELAY_VARIABLE):
        slow_history(float(os.environ[HISTORY_DELAY_VARIABLE]))
    from app.cli import main as relay_main

    return relay_main(argv)


if __name__ == "__main__":
    sys.exit(main())
