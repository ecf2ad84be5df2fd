"""uvicorn with the relay's shutdown: on SIGTERM, /readyz turns 503 at once while requests
are still served for ``RELAY_SHUTDOWN_GRACE`` (so Kubernetes takes the pod out of its
Service), then the listener closes, in-flight deliveries finish (bounded) and the process
exits 0. A second SIGTERM or SIGINT skips the grace period."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType

import structlog
import uvicorn

log = structlog.get_logger("relay")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._grace = grace
        self._on_drain = on_drain
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in uvicorn's captured signals: it would re-raise SIGTERM on the way
        # out, and the process would end "killed by SIGTERM" instead of exiting 0.
        if self._timer is None and not self.should_exit:
            self._on_drain()
            log.info("relay.draining", grace_seconds=self._grace)
            self._timer = threading.Timer(self._grace, self._close_listener)
            self._timer.daemon = True
            self._timer.start()
            return
        if self.should_exit:
            self.force_exit = True
        self._close_listener()

    def _close_listener(self) -> None:
        self.should_exit = True
