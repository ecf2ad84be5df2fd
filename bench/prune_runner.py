"""``python -m bench.prune_runner URL RETENTION_S PAUSE_S OUT.json``: one prune the way the
relay's worker runs it (app/deliver/periodic.py: ``upkeep.prune(now, retention,
pause=PRUNE_PAUSE)`` then ``upkeep.free_space(pause=PRUNE_PAUSE)``), in a process of its own,
timed; bench/prune.py starts it while the relay serves webhooks.

It calls the relay's store front and nothing else of it; to say where the time goes it only
watches: each transaction's wall time (``Database.write``, queue to commit), the time of each
batch function inside it, and each SQL statement's time (SQLAlchemy's cursor events on the
writer engine). The watching costs microseconds a statement.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from app.store import SqlStore
from app.store import retention as retention_module

STEPS = ("prune_invoices", "prune_unmatched", "prune_silent_webhooks", "prune_quarantined")


def normalized(statement: str) -> str:
    """A statement without its bound values' count: ``IN (?, ?, ...)`` lists become ``(…)``."""
    text = " ".join(statement.split())
    text = re.sub(r"\((?:\s*(?:\?|%\(\w+\)s|\$\d+)\s*,?)+\)", "(…)", text)
    text = re.sub(r"(?:\(…\)\s*,\s*)+\(…\)", "(…)", text)
    return text


class Watch:
    """What the prune's transactions and statements took."""

    def __init__(self) -> None:
        self.transactions: list[dict[str, Any]] = []
        self.statements: dict[str, list[float]] = defaultdict(list)
        self._work: dict[str, Any] = {}
        self.phase = "prune"

    def wrap_steps(self) -> None:
        for name in STEPS:
            original = getattr(retention_module, name)
            setattr(retention_module, name, self._timed(name, original))

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any) -> Any:
            started = time.perf_counter()
            batch = original(*args)
            self._work = {
                "step": name,
                "work_ms": (time.perf_counter() - started) * 1000,
                "rows": batch.report.total(),
            }
            return batch

        return step

    def wrap_writes(self, db: Any) -> None:
        write = db.write

        async def timed(work: Callable[[Any], Any], **options: Any) -> Any:
            self._work = {}
            at = time.monotonic()
            started = time.perf_counter()
            result = await write(work, **options)
            self.transactions.append(
                {
                    "at": at,
                    "step": self._work.get("step", self.phase),
                    "work_ms": self._work.get("work_ms", 0.0),
                    "wall_ms": (time.perf_counter() - started) * 1000,
                    "rows": self._work.get("rows", 0),
                }
            )
            return result

        db.write = timed
        engine = db._writer

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            started = conn.info.pop("bench_started", None)
            if started is not None:
                self.statements[normalized(statement)].append(
                    (time.perf_counter() - started) * 1000
                )


async def run(url: str, retention: timedelta, pause: float) -> dict[str, Any]:
    store = SqlStore.open(url)
    watch = Watch()
    watch.wrap_steps()
    upkeep = store.upkeep()
    watch.wrap_writes(upkeep._db)
    try:
        bytes_before = await upkeep.database_bytes()
        started = time.monotonic()
        watch.phase = "small_rows"
        report = await upkeep.prune(datetime.now(UTC), retention, pause=pause)
        pruned = time.monotonic()
        watch.phase = "free_space"
        await upkeep.free_space(pause=pause)
        freed = time.monotonic()
        bytes_after = await upkeep.database_bytes()
    finally:
        await store.close()
    for transaction in watch.transactions:
        transaction["at"] -= started
    return {
        "report": report.as_dict(),
        "started": started,
        "prune_s": pruned - started,
        "free_space_s": freed - pruned,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "transactions": watch.transactions,
        "statements": {
            text: {"count": len(times), "total_ms": sum(times), "max_ms": max(times)}
            for text, times in watch.statements.items()
        },
    }


def main() -> None:
    url, retention_s, pause_s, out = sys.argv[1:5]
    print("prune-runner: started", flush=True)
    result = asyncio.run(run(url, timedelta(seconds=float(retention_s)), float(pause_s)))
    Path(out).write_text(json.dumps(result))
    print(f"prune-runner: done in {result['prune_s']:.1f} s: {result['report']}", flush=True)


if __name__ == "__main__":
    main()
