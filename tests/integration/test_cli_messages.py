"""What ``relay`` says when it cannot start: one line on stderr naming the setting, the
right exit code (2 a bad setting, 1 a database it cannot use), no traceback, and nothing
created. Each runs ``relay`` as a process in an empty directory with no ``RELAY_*``."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from app.ingest.carriers import BUILT_IN
from app.ingest.declared import load_declared_carriers
from app.settings import SUPPORTED_DATABASES
from tests.support.relay_process import free_port
from tests.support.served_app import run_relay

DECLARED_FILE = Path(__file__).parent.parent / "fixtures" / "declared" / "carriers.yaml"
CARRIER_KEYS = (
    "SECRET, PUBLIC_KEY, CLIENT_ID, ALLOW_UNSIGNED, ORDER_ID_FROM, INVOICE_NUMBER_FROM, "
    "REFERENCE_PATTERN"
)
READ_ONLY_COMMANDS = [
    ["deliveries"],
    ["deliveries", "--retry", "1"],
    ["quarantine", "list"],
    ["quarantine", "replay"],
    ["quarantine", "discard", "wh_0"],
    ["quarantine", "discard", "--carrier", "generic"],
    ["reconcile"],
]


relay = run_relay


def assert_one_line(
    result: subprocess.CompletedProcess[str], code: int, line: str, cwd: Path
) -> None:
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [line], result.stderr
    assert result.returncode == code
    assert result.stdout == ""
    assert not (cwd / "relay.db").exists()


# -- settings: exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve"], ["check", "generic", "payload.json"]])
def test_settings_of_an_unknown_carrier_stop_start_up_naming_the_known_ones(
    tmp_path: Path, command: list[str]
) -> None:
    result = relay(tmp_path, *command, RELAY_CARRIERS__PIGEON__SECRET="s3cret")

    known = ", ".join(sorted(BUILT_IN))
    assert_one_line(
        result,
        2,
        "relay: invalid setting RELAY_CARRIERS__PIGEON__SECRET: no carrier named 'pigeon'; "
        f"known carriers: {known}",
        tmp_path,
    )


def test_a_carrier_declared_in_the_carriers_file_is_known_and_listed(tmp_path: Path) -> None:
    declared = relay(
        tmp_path,
        "check",
        "rapidez",
        str(DECLARED_FILE.parent / "rapidez" / "delivered.json"),
        RELAY_CARRIERS_FILE=str(DECLARED_FILE),
        RELAY_CARRIERS__RAPIDEZ__SECRET="s3cret",
    )
    unknown = relay(
        tmp_path,
        "check",
        "rapidez",
        "payload.json",
        RELAY_CARRIERS_FILE=str(DECLARED_FILE),
        RELAY_CARRIERS__RAPIDEZZ__SECRET="s3cret",
    )

    assert (declared.returncode, declared.stderr) == (0, "")
    declared_names = load_declared_carriers(DECLARED_FILE, frozenset(BUILT_IN))
    assert "rapidez" in declared_names
    known = ", ".join(sorted([*BUILT_IN, *declared_names]))
    assert_one_line(
        unknown,
        2,
        "relay: invalid setting RELAY_CARRIERS__RAPIDEZZ__SECRET: no carrier named "
        f"'rapidezz'; known carriers: {known}",
        tmp_path,
    )


def test_an_unknown_carrier_key_stops_start_up_naming_the_known_keys(tmp_path: Path) -> None:
    result = relay(tmp_path, "migrate", RELAY_CARRIERS__GENERIC__SECRETT="s3cret")

    assert_one_line(
        result,
        2,
        "relay: invalid setting RELAY_CARRIERS__GENERIC__SECRETT: unknown key SECRETT; "
        f"known keys: {CARRIER_KEYS}",
        tmp_path,
    )


def test_an_unknown_account_key_stops_start_up_naming_the_known_keys(tmp_path: Path) -> None:
    result = relay(
        tmp_path,
        "serve",
        RELAY_VTEX_ACCOUNTS__ACME__APP_KEY="key",
        RELAY_VTEX_ACCOUNTS__ACME__APP_TOKEN="token",
        RELAY_VTEX_ACCOUNTS__ACME__APP_SECRET="secret",
    )

    assert_one_line(
        result,
        2,
        "relay: invalid setting RELAY_VTEX_ACCOUNTS__ACME__APP_SECRET: unknown key APP_SECRET; "
        "known keys: APP_KEY, APP_TOKEN",
        tmp_path,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://user:hunter2@db/relay", "unsupported database 'mysql'"),
        ("foo", "not a database URL"),
        ("sqlite://relay.db", "a SQLite URL names its file after three slashes, not after two"),
        ("sqlite://", "an in-memory SQLite database is not supported (name a file)"),
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["deliveries"]])
def test_an_unsupported_database_url_is_one_line_saying_what_is_supported(
    tmp_path: Path, url: str, problem: str, command: list[str]
) -> None:
    result = relay(tmp_path, *command, RELAY_DATABASE_URL=url)

    assert_one_line(
        result,
        2,
        f"relay: invalid setting RELAY_DATABASE_URL: {problem}; supported: {SUPPORTED_DATABASES}",
        tmp_path,
    )
    assert "hunter2" not in result.stderr


# -- a database that cannot be used: exit 1 ------------------------------------------


@pytest.mark.parametrize(
    "command", [["migrate"], ["worker"], ["serve"], ["deliveries"], ["quarantine", "list"]]
)
def test_a_postgresql_that_is_down_is_one_line_without_the_password(
    tmp_path: Path, command: list[str]
) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://relay:hunter2@127.0.0.1:{port}/relay"

    result = relay(tmp_path, *command, RELAY_DATABASE_URL=url, RELAY_PORT=str(free_port()))

    assert_one_line(
        result,
        1,
        "relay: cannot open the database "
        f"(RELAY_DATABASE_URL=postgresql://relay:***@127.0.0.1:{port}/relay): connection refused",
        tmp_path,
    )


def test_a_postgresql_that_never_answers_is_one_line_not_a_hang(tmp_path: Path) -> None:
    """A listener that accepts and says nothing (a proxy with no server behind it): libpq
    would wait forever; the relay gives up after its 10 s connect timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        url = f"postgresql://relay@127.0.0.1:{port}/relay"

        result = relay(tmp_path, "migrate", RELAY_DATABASE_URL=url)  # 60 s, else it fails

    assert_one_line(
        result,
        1,
        "relay: cannot open the database "
        f"(RELAY_DATABASE_URL=postgresql://relay@127.0.0.1:{port}/relay): "
        "connection timeout expired",
        tmp_path,
    )


@pytest.mark.parametrize("command", [["migrate"], ["worker"], ["serve"]])
def test_a_sqlite_file_whose_directory_cannot_be_made_is_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "blocker").write_text("a file where the directory should be")
    url = f"sqlite:///{tmp_path}/blocker/data/relay.db"

    result = relay(tmp_path, *command, RELAY_DATABASE_URL=url, RELAY_PORT=str(free_port()))

    assert_one_line(
        result,
        1,
        f"relay: cannot open the database (RELAY_DATABASE_URL={url}): "
        f"cannot create the directory {tmp_path}/blocker/data (Not a directory)",
        tmp_path,
    )


def test_a_sqlite_path_that_sqlite_cannot_open_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data.db").mkdir()  # a directory where the file should be
    url = f"sqlite:///{tmp_path}/data.db"

    result = relay(tmp_path, "migrate", RELAY_DATABASE_URL=url)

    assert_one_line(
        result,
        1,
        f"relay: cannot open the database (RELAY_DATABASE_URL={url}): unable to open database file",
        tmp_path,
    )


# -- read-only commands never create a database --------------------------------------


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=" ".join)
def test_a_read_only_command_refuses_a_missing_sqlite_file_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    result = relay(tmp_path, *command)

    assert_one_line(
        result,
        1,
        f"relay: no database at {tmp_path / 'relay.db'} (RELAY_DATABASE_URL=sqlite:///./relay.db);"
        " run this where the relay runs or set RELAY_DATABASE_URL",
        tmp_path,
    )
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_command_does_not_create_the_database_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/relay.db"

    result = relay(tmp_path, "deliveries", RELAY_DATABASE_URL=url)

    assert_one_line(
        result,
        1,
        f"relay: no database at {tmp_path}/data/relay.db (RELAY_DATABASE_URL={url}); "
        "run this where the relay runs or set RELAY_DATABASE_URL",
        tmp_path,
    )
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_command_reads_a_database_that_exists(tmp_path: Path) -> None:
    assert relay(tmp_path, "migrate").returncode == 0

    result = relay(tmp_path, "deliveries")

    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "[]", "")


@pytest.mark.parametrize("delivery_id", ["99999999999999999999999", str(2**63), "0"])
def test_retry_of_an_out_of_range_delivery_id_is_no_such_delivery(
    tmp_path: Path, delivery_id: str
) -> None:
    assert relay(tmp_path, "migrate").returncode == 0

    result = relay(tmp_path, "deliveries", "--retry", delivery_id)

    assert "Traceback" not in result.stderr
    assert result.stderr == f"relay deliveries: no delivery {delivery_id}\n"
    assert result.returncode == 1
