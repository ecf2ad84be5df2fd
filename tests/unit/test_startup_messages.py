"""What stops start-up, in an operator's words: settings that name no carrier or no key,
database URLs the relay cannot use, and a driver's error cut to its cause. In-process;
``tests/integration/test_cli_messages.py`` runs the same through ``relay`` processes."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from app.cli import main
from app.ingest.carriers import BUILT_IN, UnknownCarrierSettings, configured_carriers
from app.settings import SUPPORTED_DATABASES, Settings, database_url_problem
from app.startup import database_cause, database_setting
from app.store import StoreUnavailable

pytestmark = pytest.mark.usefixtures("clean_environment")

CARRIER_KEYS = (
    "SECRET, PUBLIC_KEY, CLIENT_ID, ALLOW_UNSIGNED, ORDER_ID_FROM, INVOICE_NUMBER_FROM, "
    "REFERENCE_PATTERN"
)
PYDANTIC_WORDING = re.compile(r"Settings\b|instance of|pydantic|Input should be a valid dict")


def invalid_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> list[str]:
    """The lines ``relay migrate`` prints for ``env``; it must exit 2."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["migrate"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.splitlines()


# -- RELAY_CARRIERS__* and RELAY_VTEX_ACCOUNTS__* ------------------------------------


def test_an_unknown_carrier_key_names_the_known_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = invalid_settings(monkeypatch, capsys, RELAY_CARRIERS__GENERIC__SECRETT="s3cret")

    assert lines == [
        "relay: invalid setting RELAY_CARRIERS__GENERIC__SECRETT: unknown key SECRETT; "
        f"known keys: {CARRIER_KEYS}"
    ]


def test_an_account_with_a_misspelt_key_says_both_what_is_unknown_and_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = invalid_settings(
        monkeypatch,
        capsys,
        RELAY_VTEX_ACCOUNTS__ACME__APP_KEY="key",
        RELAY_VTEX_ACCOUNTS__ACME__APP_TOKN="token",
    )

    assert lines == [
        "relay: invalid setting RELAY_VTEX_ACCOUNTS__ACME__APP_TOKEN: required, not set",
        "relay: invalid setting RELAY_VTEX_ACCOUNTS__ACME__APP_TOKN: unknown key APP_TOKN; "
        "known keys: APP_KEY, APP_TOKEN",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "RELAY_CARRIERS__GENERIC",
            "s3cret",
            "relay: invalid setting RELAY_CARRIERS__GENERIC: not a value of its own; set "
            f"RELAY_CARRIERS__GENERIC__<KEY>; known keys: {CARRIER_KEYS}",
        ),
        (
            "RELAY_VTEX_ACCOUNTS__ACME",
            "token",
            "relay: invalid setting RELAY_VTEX_ACCOUNTS__ACME: not a value of its own; set "
            "RELAY_VTEX_ACCOUNTS__ACME__<KEY>; known keys: APP_KEY, APP_TOKEN",
        ),
        (
            "RELAY_CARRIERS",
            "s3cret",
            "relay: invalid setting RELAY_CARRIERS: not valid JSON; or set it as "
            "RELAY_CARRIERS__<NAME>__<KEY>",
        ),
        (
            "RELAY_CARRIERS",
            '"s3cret"',
            "relay: invalid setting RELAY_CARRIERS: not a value of its own; set "
            "RELAY_CARRIERS__<NAME>__<KEY>",
        ),
    ],
)
def test_a_nested_setting_given_as_one_value_says_how_to_set_it_without_class_names(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    line: str,
) -> None:
    lines = invalid_settings(monkeypatch, capsys, **{variable: value})

    assert lines == [line]
    assert not PYDANTIC_WORDING.search(lines[0])


def test_settings_of_a_carrier_the_relay_does_not_have_stop_configured_carriers() -> None:
    settings = Settings(
        _env_file=None,
        carriers={"pigeon": {"secret": "s", "allow_unsigned": True}, "generic": {"secret": "s"}},
    )

    with pytest.raises(UnknownCarrierSettings) as raised:
        configured_carriers(settings)

    reason = "no carrier named 'pigeon'; known carriers: " + ", ".join(sorted(BUILT_IN))
    assert raised.value.problems == [
        ("RELAY_CARRIERS__PIGEON__SECRET", reason),
        ("RELAY_CARRIERS__PIGEON__ALLOW_UNSIGNED", reason),
    ]


def test_a_carrier_configured_as_json_with_no_keys_is_still_named() -> None:
    settings = Settings(_env_file=None, carriers={"pigeon": {}})

    with pytest.raises(UnknownCarrierSettings) as raised:
        configured_carriers(settings)

    assert [variable for variable, _ in raised.value.problems] == ["RELAY_CARRIERS__PIGEON__*"]


def test_settings_of_known_carriers_pass() -> None:
    settings = Settings(_env_file=None, carriers={name: {"secret": "s"} for name in BUILT_IN})

    assert set(configured_carriers(settings)) == set(BUILT_IN)


# -- RELAY_DATABASE_URL --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///./relay.db",
        "sqlite:///relay.db",
        "sqlite:////var/lib/relay/relay.db",
        "postgresql://relay:pw@db:5432/relay",
        "postgresql://relay@db/relay?sslmode=require",
        "postgres://relay@db/relay",
        "postgresql+psycopg://relay@db/relay",
    ],
)
def test_supported_database_urls_pass(url: str) -> None:
    assert database_url_problem(url) is None
    assert Settings(_env_file=None, database_url=url).database_url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://relay:hunter2@db/relay", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://relay@db/relay", "unsupported database 'postgresql+psycopg2'"),
        ("foo", "not a database URL"),
        ("postgresql//relay:hunter2@db/relay", "not a database URL"),
        ("sqlite://relay.db", "a SQLite URL names its file after three slashes, not after two"),
        ("sqlite://", "an in-memory SQLite database is not supported (name a file)"),
        ("sqlite:///:memory:", "an in-memory SQLite database is not supported (name a file)"),
    ],
)
def test_an_unsupported_database_url_says_what_is_supported_and_hides_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, database_url=url)

    lines = invalid_settings(monkeypatch, capsys, RELAY_DATABASE_URL=url)

    assert lines == [
        f"relay: invalid setting RELAY_DATABASE_URL: {problem}; supported: {SUPPORTED_DATABASES}"
    ]
    assert "hunter2" not in lines[0]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///./relay.db", "sqlite:///./relay.db"),
        ("sqlite:///my data/relay.db", "sqlite:///my data/relay.db"),
        ("postgresql://relay:hunter2@db:5432/relay", "postgresql://relay:***@db:5432/relay"),
        (
            "postgresql://relay@db/relay?password=hunter2&sslmode=require",
            "postgresql://relay@db/relay?password=***&sslmode=require",
        ),
    ],
)
def test_the_database_setting_is_shown_as_set_with_passwords_hidden(url: str, shown: str) -> None:
    settings = Settings(_env_file=None, database_url=url)

    assert database_setting(settings) == f"RELAY_DATABASE_URL={shown}"


def unavailable(driver_message: str) -> StoreUnavailable:
    """What the store raises: StoreUnavailable, caused by SQLAlchemy's wrapper of the driver's."""
    error = StoreUnavailable("the database is unavailable (OperationalError)")
    error.__cause__ = OperationalError("SELECT 1", {}, Exception(driver_message))
    return error


@pytest.mark.parametrize(
    ("driver_message", "cause"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 5999 failed: '
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
            "connections?",
            "connection refused",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'password authentication failed for user "relay"',
            'password authentication failed for user "relay"',
        ),
        (
            "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
            "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
        ),
        ("unable to open database file", "unable to open database file"),
    ],
)
def test_a_driver_error_is_cut_to_its_cause(driver_message: str, cause: str) -> None:
    assert database_cause(unavailable(driver_message)) == cause
