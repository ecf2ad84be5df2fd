"""The relay under fuzzing: ``relay serve`` as a process, on SQLite and on PostgreSQL.

One relay per test module and database; every test checks the relay's log for tracebacks
after each request it sends (``tests/fuzz/relay.py``), and the fixture checks, once the relay
has stopped, that nothing else (the worker, shutdown) logged one either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.fuzz.relay import background_failures, excerpt, relay_env
from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.vtex_standin import VtexStandIn


@pytest.fixture(scope="module")
def vtex() -> Iterator[VtexStandIn]:
    with VtexStandIn() as standin:
        yield standin


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relay(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, vtex: VtexStandIn
) -> Iterator[RelayProcess]:
    """The relay on its default SQLite file, and on a PostgreSQL schema of its own."""
    env = relay_env(vtex.url)
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        relay = stack.enter_context(RelayProcess(tmp_path_factory.mktemp("relay"), env))
        # Every request on a connection of its own: after an unhandled error uvicorn closes
        # the connection without saying so, and a pooled client would blame the next request.
        relay.client.close()
        relay.client = httpx.Client(
            base_url=relay.url, timeout=15, limits=httpx.Limits(max_keepalive_connections=0)
        )
        yield relay
        assert relay.stop() == 0, "the relay did not exit cleanly on SIGTERM"
        background = background_failures(relay)
        assert not background, "the relay logged failures outside any request:\n" + "\n".join(
            map(excerpt, background)
        )
