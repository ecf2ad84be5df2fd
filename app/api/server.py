"""uvicorn with the relay's shutdown: on SIGTERM, /readyz turns 503 at once while requests
are still served for ``RELAY_SHUTDOWN_GRACE`` (so Kubernetes takes the pod out of its
Service), then the listener closes, in-flight deliveries finish (bounded) and the process
exits 0. A second SIGTERM or SIGINT skips the grace period. ``relay.ready`` is logged once
the listener accepts connections, not before."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

import structlog
import uvicorn

from app.api.connections import listen_address
from app.interpreter import settle_heap

log = structlog.get_logger("relay")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._grace = grace
        self._on_drain = on_drain
        self._draining: threading.Thread | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            # Only now does the port accept connections: whoever waits for this line (an
            # operator, a test) can send requests at once.
            addresses = [
                listen_address(*sock.getsockname()[:2])
                for server in self.servers
                for sock in server.sockets
            ]
            log.info("relay.ready", listening=", ".join(addresses))
            # The lifespan has opened all that lives as long as we do. After the line is out
            # (it leaves at the end of this turn of the loop): a collection takes a while.
            asyncio.get_running_loop().call_soon(settle_heap)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in uvicorn's captured signals: it would re-raise SIGTERM on the way
        # out, and the process would end "killed by SIGTERM" instead of exiting 0. The work
        # happens on a thread: a signal handler must not take locks (a log line does).
        if self._draining is None and not self.should_exit:
            self._draining = threading.Thread(target=self._drain, name="drain", daemon=True)
            self._draining.start()
            return
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    def _drain(self) -> None:
        self._on_drain()
        log.info("relay.draining", grace_seconds=self._grace)
        time.sleep(self._grace)
        self.should_exit = True
