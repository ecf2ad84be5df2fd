"""``relay check``, ``relay migrate`` and settings errors, through ``app.cli.main``."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.settings import Settings, duration_text, parse_duration

pytestmark = pytest.mark.usefixtures("clean_environment")

GENERIC_PAYLOAD = {
    "trackingNumber": " QC771093264BR ",
    "orderId": "1172452900788-01",
    "invoiceNumber": "000030711",
    "trackingUrl": "https://carrier.example/t/QC771093264BR",
    "events": [
        {
            "time": "2026-04-11T23:30:00-03:00",
            "status": "delivered",
            "description": "  Objeto entregue ao destinatário ",
            "city": "Porto Alegre",
            "state": "RS",
        },
        {
            "time": "2026-04-10T13:05:00Z",
            "status": "info_received",
            "description": "Etiqueta emitida",
            "city": None,
        },
    ],
}


def write_payload(tmp_path: Path, payload: Any, name: str = "payload.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def tables(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# -- relay check -----------------------------------------------------------------


def test_check_prints_the_events_and_the_vtex_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_payload(tmp_path, GENERIC_PAYLOAD)

    assert main(["check", "generic", path]) == 0

    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {
        "carrier": "generic",
        "shipments": [
            {
                "trackingNumber": "QC771093264BR",
                "aliases": [],
                "references": {},
                "orderId": "1172452900788-01",
                "invoiceNumber": "000030711",
                "trackingUrl": "https://carrier.example/t/QC771093264BR",
                "events": [
                    {
                        "time": "2026-04-12T02:30:00Z",
                        "status": "delivered",
                        "carrierStatus": "delivered",
                        "description": "  Objeto entregue ao destinatário ",
                        "city": "Porto Alegre",
                        "state": "RS",
                    },
                    {
                        "time": "2026-04-10T13:05:00Z",
                        "status": "info_received",
                        "carrierStatus": "info_received",
                        "description": "Etiqueta emitida",
                        "city": "",
                        "state": "",
                    },
                ],
                "vtexBody": {
                    "isDelivered": True,
                    "deliveredDate": "2026-04-12 02:30",
                    "events": [
                        {
                            "city": "",
                            "state": "",
                            "description": "Etiqueta emitida",
                            "date": "2026-04-10",
                        },
                        {
                            "city": "Porto Alegre",
                            "state": "RS",
                            "description": "Objeto entregue ao destinatário",
                            "date": "2026-04-12",
                        },
                    ],
                },
            }
        ],
    }


def test_check_uses_the_configured_vtex_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAY_VTEX_TIMEZONE", "America/Sao_Paulo")
    path = write_payload(tmp_path, GENERIC_PAYLOAD)

    assert main(["check", "generic", path]) == 0

    body = json.loads(capsys.readouterr().out)["shipments"][0]["vtexBody"]
    assert body["deliveredDate"] == "2026-04-11 23:30"
    assert [e["date"] for e in body["events"]] == ["2026-04-10", "2026-04-11"]


def test_check_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_payload(tmp_path, GENERIC_PAYLOAD)

    assert main(["check", "generic", path]) == 0

    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.json"]


def test_check_of_an_unknown_carrier_exits_1_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_payload(tmp_path, GENERIC_PAYLOAD)

    assert main(["check", "pigeon", path]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown carrier 'pigeon'" in captured.err
    assert "generic" in captured.err


DECLARED = Path(__file__).parent.parent / "fixtures" / "declared"


def test_check_reads_a_carrier_declared_in_the_carriers_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAY_CARRIERS_FILE", str(DECLARED / "carriers.yaml"))
    monkeypatch.setenv("RELAY_CARRIERS__RAPIDEZ__ORDER_ID_FROM", "order_id")
    monkeypatch.setenv("RELAY_CARRIERS__RAPIDEZ__INVOICE_NUMBER_FROM", "invoice_number")

    assert main(["check", "rapidez", str(DECLARED / "rapidez" / "delivered.json")]) == 0

    [shipment] = json.loads(capsys.readouterr().out)["shipments"]
    # Its references name the invoice, as the carrier's settings ask.
    assert (shipment["orderId"], shipment["invoiceNumber"]) == ("1402320512345-01", "000123456")
    assert shipment["trackingNumber"] == "RPZ100234567BR"
    assert shipment["vtexBody"]["isDelivered"] is True
    # 17:58 in São Paulo, where the carrier writes its times without an offset.
    assert shipment["events"][-1]["time"] == "2024-03-14T20:58:00Z"


@pytest.mark.parametrize("command", [["check", "rapidez", "payload.json"], ["serve"]])
def test_an_invalid_carriers_file_exits_2_naming_file_carrier_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    broken = tmp_path / "carriers.yaml"
    broken.write_text(
        (DECLARED / "carriers.yaml")
        .read_text(encoding="utf-8")
        .replace("time: data_hora", "time: data_hora[", 1),
        encoding="utf-8",
    )
    write_payload(tmp_path, GENERIC_PAYLOAD)
    monkeypatch.setenv("RELAY_CARRIERS_FILE", str(broken))

    with pytest.raises(SystemExit) as exited:
        main(command)

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "carriers.yaml" in error
    assert "'rapidez'" in error
    assert "event.time" in error
    assert "Traceback" not in error


def test_check_of_a_missing_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "generic", str(tmp_path / "nowhere.json")]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nowhere.json" in captured.err
    assert "No such file" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"{not json", "Expecting property name", id="not-json"),
        pytest.param(
            b'{"trackingNumber": "\xc3\x28", "events": []}',
            "tracking number: contains U+FFFD at position 1",
            id="not-utf8",
        ),
        pytest.param(
            json.dumps({"trackingNumber": "QC1", "events": [{"status": "in_transit"}]}).encode(),
            "events.0.time",
            id="missing-field",
        ),
        pytest.param(
            json.dumps(
                {"trackingNumber": "QC1", "events": [{"time": "yesterday", "status": "x"}]}
            ).encode(),
            "events.0.status",
            id="bad-status",
        ),
        pytest.param(
            json.dumps(
                {
                    "trackingNumber": "QC1",
                    "events": [{"time": "2026-13-45", "status": "in_transit", "description": ""}],
                }
            ).encode(),
            "events.0.time",
            id="bad-time",
        ),
        pytest.param(
            json.dumps(
                {"trackingNumber": "QC1", "orderId": "O", "invoiceNumber": "NF/1", "events": []}
            ).encode(),
            "invoiceNumber",
            id="slash-in-invoice",
        ),
        pytest.param(b"[1, 2]", "body", id="not-an-object"),
    ],
)
def test_check_of_an_unreadable_payload_exits_1_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes(content)

    assert main(["check", "generic", str(path)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("relay check: ")
    assert expected in captured.err
    assert "Traceback" not in captured.err


# -- relay migrate -----------------------------------------------------------------


def test_migrate_creates_the_database_at_relay_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "data" / "nested" / "relay.db"
    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{database}")

    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0

    assert database.is_file()
    assert {"webhooks", "events", "shipments", "deliveries", "attempts"} <= tables(database)
    out = capsys.readouterr().out
    assert "schema version 1" in out
    assert str(database) in out


def test_migrate_reads_the_env_file_in_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(f"RELAY_DATABASE_URL=sqlite:///{database}\n")

    assert main(["migrate"]) == 0

    assert database.is_file()


def test_migrate_defaults_to_relay_db_in_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0

    assert (tmp_path / "relay.db").is_file()


# -- invalid settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELAY_VTEX_TIMEZONE", "Mars/Base"),
        ("RELAY_CARRIER_DEFAULT_TIMEZONE", "Mars/Base"),
        ("RELAY_MAX_DELIVERY_AGE", "soon"),
        ("RELAY_RETENTION", "0"),
        ("RELAY_RETENTION", "forever"),
        ("RELAY_VTEX_HOOK_URL", "relay.example.com/vtex/orders-hook"),
        ("RELAY_VTEX_EVENT_DATE_FORMAT", "epoch"),
        ("RELAY_PORT", "99999"),
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["check", "generic", "payload.json"]])
def test_an_invalid_setting_exits_2_naming_the_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    command: list[str],
) -> None:
    write_payload(tmp_path, GENERIC_PAYLOAD)
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemExit) as exited:
        main(command)

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"invalid setting {variable}:" in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "relay.db").exists()


def test_an_invalid_timezone_message_names_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAY_VTEX_TIMEZONE", "Mars/Base")

    with pytest.raises(SystemExit):
        main(["migrate"])

    assert "Mars/Base" in capsys.readouterr().err


def test_an_invalid_nested_setting_names_the_nested_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAY_CARRIERS__GENERIC__ALLOW_UNSIGNED", "maybe")

    with pytest.raises(SystemExit) as exited:
        main(["migrate"])

    assert exited.value.code == 2
    assert "RELAY_CARRIERS__GENERIC__ALLOW_UNSIGNED" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["launch"])

    assert exited.value.code == 2
    assert "launch" in capsys.readouterr().err


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_admin_token_or_hook_secret_is_unset_never_an_empty_password(blank: str) -> None:
    settings = Settings(_env_file=None, admin_token=blank, vtex_hook_secret=blank)

    assert (settings.admin_token, settings.vtex_hook_secret) == (None, None)


def test_durations_are_written_back_as_the_settings_take_them() -> None:
    assert [
        duration_text(parse_duration(text)) for text in ("90d", "72h", "10m", "30s", "1.5s")
    ] == ["90d", "3d", "10m", "30s", "1.5s"]
    assert duration_text(parse_duration("36h")) == "36h"
    assert Settings().retention == parse_duration("90d")
