"""``relay``: serve, worker, migrate, check, … (SPEC §7); prune and backup in ``upkeep_cli``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.settings import Settings, VtexNotConfigured
from app.startup import (
    setting_problem,
    unparsable_setting,
)
from app.store import MAX_ROW_ID, SCHEMA_VERSION
from app.upkeep_cli import add_commands
from app.wiring import (
    DatabaseUnusable,
    counts_kept,
    opened_delivery,
    opened_store,
    vtex_http_client,
)

if TYPE_CHECKING:
    from app.ingest.carriers import Carrier
    from app.store import Store

EXIT_USAGE = 2


def load_settings() -> Settings:
    """Settings from the environment; a bad value stops here, naming its variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = [setting_problem(item) for item in error.errors()]
    except SettingsError as error:  # a nested setting given as invalid JSON
        problems = [unparsable_setting(error)]
    _print_invalid(problems)


def _print_invalid(problems: list[tuple[str, str]]) -> NoReturn:
    for variable, reason in problems:
        print(f"relay: invalid setting {variable}: {reason}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def load_carriers(settings: Settings) -> dict[str, Carrier]:
    """Built-in and declared carriers; an invalid ``RELAY_CARRIERS_FILE``, or settings of a
    carrier that is neither, stop here."""
    from app.ingest.carriers import UnknownCarrierSettings, configured_carriers
    from app.ingest.declared import DeclaredCarrierError

    try:
        return configured_carriers(settings)
    except DeclaredCarrierError as error:
        print(f"relay: invalid RELAY_CARRIERS_FILE: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except UnknownCarrierSettings as error:
        _print_invalid(error.problems)


def _run(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)``; a database that cannot be used is one line on stderr, exit 1."""
    try:
        return asyncio.run(main)
    except DatabaseUnusable as error:
        print(f"relay: {error}", file=sys.stderr)
        return 1


def _database_or_exit(settings: Settings) -> None:
    """Before serving: open and migrate the database, or say why not and exit 1. Failing
    fast gives one readable line (and a pod that restarts until the database is there)
    instead of uvicorn's lifespan traceback; the lifespan opens the store again."""

    async def check() -> int:
        async with opened_store(settings):
            return 0

    if _run(check()):
        raise SystemExit(1)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.app import begin_draining, create_app, served
    from app.api.connections import ListenError, RelayHttpProtocol, bind_listener
    from app.api.server import GracefulServer
    from app.interpreter import share_the_interpreter
    from app.logs import configure_logging

    share_the_interpreter()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings, load_carriers(settings))
    host, port = args.host or settings.host, args.port or settings.port
    try:
        # Bound (not yet listening) before anything opens: a taken port is one line, and
        # creates no database.
        listener = bind_listener(host, port)
    except ListenError as error:
        hint = "set RELAY_HOST / RELAY_PORT or --host / --port"
        print(f"relay serve: {error} ({hint})", file=sys.stderr)
        return 1
    _database_or_exit(settings)  # one line, exit 1, when it cannot be opened
    config = uvicorn.Config(
        served(app),
        host=host,
        port=port,
        http=RelayHttpProtocol.configured(
            settings.read_timeout.total_seconds(), settings.max_connections
        ),
        ws="none",
        log_config=None,
        access_log=False,  # RequestLogMiddleware writes the access line, with the request id
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.vtex_timeout.total_seconds()) + 1,
    )
    server = GracefulServer(
        config, settings.shutdown_grace.total_seconds(), on_drain=lambda: begin_draining(app)
    )
    server.run(sockets=[listener])
    return 0


async def _run_worker(settings: Settings) -> int:
    from app.configured import log_configuration
    from app.deliver.worker import Worker
    from app.interpreter import settle_heap

    async with opened_delivery(settings) as delivery, counts_kept(delivery.metrics, delivery.store):
        log_configuration(settings, None, worker=True)
        worker = Worker(delivery)
        settle_heap()
        task = asyncio.create_task(worker.run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await worker.stop(grace=settings.vtex_timeout.total_seconds())
        await task
    return 0


def _worker(_args: argparse.Namespace) -> int:
    from app.interpreter import share_the_interpreter
    from app.logs import configure_logging

    share_the_interpreter()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    return _run(_run_worker(settings))


def _migrate(_args: argparse.Namespace) -> int:
    settings = load_settings()

    async def run() -> int:
        async with opened_store(settings) as store:
            print(f"relay: schema version {SCHEMA_VERSION} at {store.describe()}")
            return 0

    return _run(run())


def _deliveries(args: argparse.Namespace) -> int:
    """List deliveries (JSON), or put one back in line with --retry."""
    from app.api.views import delivery_json
    from app.store import NotRetriable

    settings = load_settings()

    async def run() -> int:
        async with opened_store(settings, existing=True) as store:
            if args.retry is None:
                views = await store.list_deliveries(args.state, args.limit)
                print(json.dumps([delivery_json(v) for v in views], indent=2, ensure_ascii=False))
                return 0
            try:
                in_range = 1 <= args.retry <= MAX_ROW_ID
                now = datetime.now(UTC)
                target = await store.retry_delivery(args.retry, now) if in_range else None
            except NotRetriable as error:
                print(f"relay deliveries: {error}", file=sys.stderr)
                return 1
            if target is None:
                print(f"relay deliveries: no delivery {args.retry}", file=sys.stderr)
                return 1
            print(f"relay: delivery {target} is due now (the worker picks it up within a second)")
            return 0

    return _run(run())


def _quarantine(args: argparse.Namespace) -> int:
    """``relay quarantine list``, ``replay`` or ``discard (ID | --carrier NAME)``."""
    from app.api.views import quarantined_json
    from app.ingest.intake import Intake

    if args.action == "discard" and (args.id is None) == (args.carrier is None):
        args.parser.error("discard takes a webhook ID or --carrier NAME (one of them)")
    if args.action != "discard" and args.id is not None:
        args.parser.error(f"{args.action} takes no webhook ID (only discard does)")
    settings = load_settings()
    carriers = load_carriers(settings)

    async def run() -> int:
        async with opened_store(settings, existing=True) as store:
            if args.action == "list":
                held = await store.quarantined(args.carrier)
                print(json.dumps([quarantined_json(w) for w in held], indent=2))
                return 0
            if args.action == "discard":
                return await _discard(store, args)
            report = await Intake(store, settings, carriers).replay_quarantine(args.carrier)
            print(
                f"relay: {report.replayed} replayed ({report.new_events} new events), "
                f"{report.still_quarantined} still quarantined"
            )
            return 0

    return _run(run())


async def _discard(store: Store, args: argparse.Namespace) -> int:
    """``relay quarantine discard ID`` or ``--carrier NAME``: delete for good."""
    if args.carrier is not None:
        discarded = await store.discard_quarantine(args.carrier)
        print(f"relay: {len(discarded)} quarantined webhooks of {args.carrier!r} discarded")
        return 0
    webhook = await store.discard_quarantined(args.id)
    if webhook is None:
        print(f"relay quarantine: no quarantined webhook {args.id}", file=sys.stderr)
        return 1
    print(f"relay: quarantined webhook {webhook.id} ({webhook.carrier}) discarded")
    return 0


def check_report(carrier: Carrier, body: bytes, settings: Settings) -> dict[str, Any]:
    """What ``relay check`` prints: the events and the VTEX body, nothing stored."""
    from app.deliver.vtex_body import build_tracking_body
    from app.ingest.intake import read_updates
    from app.json_reader import read_json

    updates = read_updates(carrier, read_json(body), settings)
    return {
        "carrier": carrier.name,
        "shipments": [
            {
                "trackingNumber": update.tracking_number,
                "aliases": list(update.aliases),
                "references": dict(update.references),
                "orderId": update.order_id,
                "invoiceNumber": update.invoice_number,
                "trackingUrl": update.tracking_url,
                "events": [
                    {
                        "time": event.occurred_at.isoformat().replace("+00:00", "Z"),
                        "status": event.status.value,
                        "carrierStatus": event.carrier_status,
                        "description": event.description,
                        "city": event.city,
                        "state": event.state,
                    }
                    for event in update.events
                ],
                "vtexBody": build_tracking_body(
                    update.events, settings.vtex_timezone, settings.vtex_event_date_format
                ),
            }
            for update in updates
        ],
    }


def _check(args: argparse.Namespace) -> int:
    from app.errors import InvalidJson
    from app.normalize.model import PayloadRejected

    settings = load_settings()
    carriers = load_carriers(settings)
    carrier = carriers.get(args.carrier)
    if carrier is None:
        known = ", ".join(sorted(carriers))
        print(f"relay check: unknown carrier {args.carrier!r}; known: {known}", file=sys.stderr)
        return 1
    try:
        report = check_report(carrier, Path(args.payload).read_bytes(), settings)
    except InvalidJson as error:
        print(f"relay check: {args.payload} is not valid JSON: {error.detail}", file=sys.stderr)
        return 1
    except (OSError, ValueError, PayloadRejected) as error:
        detail = error.detail if isinstance(error, PayloadRejected) else str(error)
        print(f"relay check: {detail}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def _vtex(args: argparse.Namespace) -> int:
    """``relay vtex subscribe --url URL``: configure VTEX's orders hook for invoiced orders."""
    from app.deliver.orders import subscribe_orders_hook
    from app.deliver.vtex_client import VtexClient

    settings = load_settings()
    if settings.vtex_hook_secret is None:
        print("relay vtex subscribe: set RELAY_VTEX_HOOK_SECRET first", file=sys.stderr)
        return EXIT_USAGE
    secret = settings.vtex_hook_secret.get_secret_value()
    try:
        target = settings.vtex_target(args.account)
    except VtexNotConfigured as missing:
        print(f"relay vtex subscribe: {missing}", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> int:
        async with vtex_http_client(settings) as http:
            try:
                result = await subscribe_orders_hook(VtexClient(http), target, args.url, secret)
            except RuntimeError as error:
                print(f"relay vtex subscribe: {error}", file=sys.stderr)
                return 1
        print(f"relay vtex subscribe: {result.message}")
        return 0

    return asyncio.run(run())


def _reconcile(_args: argparse.Namespace) -> int:
    """``relay reconcile``: re-send invoices whose VTEX tracking lacks what the relay holds."""
    from app.deliver.worker import Worker
    from app.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level, stream=sys.stderr)

    async def run() -> int:
        async with opened_delivery(settings, existing=True) as delivery:
            worker = Worker(delivery)  # its drain sends what the reconciliation queued
            report = await worker.reconciler.reconcile()
            if report.resent:
                await worker.drain()  # send what was queued (and anything else due now)
        print(
            f"relay reconcile: {report.checked} invoice(s) compared with VTEX, {report.resent} "
            f"re-sent, {report.unreadable} could not be read"
        )
        return 0

    return _run(run())


def _prune(args: argparse.Namespace) -> int:
    """``relay prune [--dry-run]``: remove what is older than ``RELAY_RETENTION``."""
    from app.upkeep_cli import prune

    return _run(prune(load_settings(), args.dry_run))


def _backup(args: argparse.Namespace) -> int:
    """``relay backup PATH``: a consistent copy of the SQLite database, taken while serving."""
    from app.upkeep_cli import backup

    return backup(load_settings(), args.path, _run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="Carrier tracking webhooks in, VTEX OMS tracking out."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and the delivery worker")
    serve.add_argument("--host", help="listen address (default RELAY_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default RELAY_PORT or 8080)")
    serve.set_defaults(run=_serve)
    commands.add_parser("worker", help="run the delivery worker only").set_defaults(run=_worker)
    commands.add_parser("migrate", help="create or upgrade the schema").set_defaults(run=_migrate)
    check = commands.add_parser(
        "check", help="dry run: print the events and VTEX body a payload gives"
    )
    check.add_argument("carrier", help="carrier name, e.g. generic, aftership, easypost")
    check.add_argument("payload", help="path to the webhook body (JSON)")
    check.set_defaults(run=_check)
    deliveries = commands.add_parser("deliveries", help="list deliveries, or retry one")
    deliveries.add_argument(
        "--state", choices=["pending", "retrying", "delivered", "dead"], help="only this state"
    )
    deliveries.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    deliveries.add_argument("--retry", type=int, metavar="ID", help="put delivery ID back in line")
    deliveries.set_defaults(run=_deliveries)
    quarantine = commands.add_parser("quarantine", help="webhooks their adapter could not read")
    quarantine.add_argument("action", choices=["list", "replay", "discard"])
    quarantine.add_argument("id", nargs="?", metavar="ID", help="the webhook to discard")
    quarantine.add_argument("--carrier", help="only this carrier's webhooks")
    quarantine.set_defaults(run=_quarantine, parser=quarantine)
    vtex = commands.add_parser("vtex", help="VTEX configuration")
    vtex_commands = vtex.add_subparsers(dest="vtex_command", required=True)
    subscribe = vtex_commands.add_parser(
        "subscribe", help="configure VTEX's orders hook to call this relay for invoiced orders"
    )
    subscribe.add_argument(
        "--url", required=True, help="public URL of this relay's /vtex/orders-hook"
    )
    subscribe.add_argument("--account", help="VTEX account (default RELAY_VTEX_ACCOUNT)")
    subscribe.set_defaults(run=_vtex)
    commands.add_parser(
        "reconcile", help="re-send invoices whose VTEX tracking lacks events the relay holds"
    ).set_defaults(run=_reconcile)
    add_commands(commands, _prune, _backup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        code: int = args.run(args)
        return code
    return 130


if __name__ == "__main__":
    sys.exit(main())
