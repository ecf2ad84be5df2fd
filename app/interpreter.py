"""The interpreter settings of a long-running relay process (``relay serve``, ``relay worker``).

Both run an event loop on the main thread and the store's writer on another (it commits
groups of webhooks, see ``app/store/engine.py``); the two share one GIL. Measured with
``bench/`` on the 2-core machine (SQLite ingest, 64 connections): Python's default switch
interval left the writer waiting up to 5 ms for the GIL after each statement while the busy
loop ran (a commit group's statements spent 9.4 ms of wall time for 2.8 ms of CPU), and
the collector's full passes over the objects start-up leaves alive (modules, settings, the
app, SQLAlchemy's engine and caches) stalled every request in flight: p99 70 ms against 35
without them.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_SECONDS = 0.0005
"""How long a thread may hold the GIL while another waits for it (Python's default: 5 ms)."""


def share_the_interpreter() -> None:
    """Hand the GIL over promptly: the store's writer thread waits for it after each of its
    statements (and the loop for it after each commit), so ingest goes at the speed of both."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def settle_heap() -> None:
    """Once start-up is over: collect its garbage, then exempt what is left (it lives as long
    as the process) from the collector's passes, which then walk only what requests allocate.
    Objects freed by reference counting are freed as before."""
    gc.collect()
    gc.freeze()
