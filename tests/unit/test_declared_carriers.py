"""Declarative carriers: the YAML file's validation and the parse it builds.

``tests/fixtures/declared/carriers.yaml`` is the documented example (carriers
``rapidez`` and ``log_norte``); payloads in each carrier's format are beside it.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ingest.carriers import BUILT_IN, Carrier
from app.ingest.declared import DeclaredCarrierError, load_declared_carriers
from app.ingest.signatures import SignatureInvalid, verify_standard_webhooks, verify_static_token
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status

FIXTURES = Path(__file__).parent.parent / "fixtures" / "declared"
CARRIERS_FILE = FIXTURES / "carriers.yaml"
MANAUS = ZoneInfo("America/Manaus")
CONTEXT = ParseContext(default_zone=MANAUS)
NOW = datetime(2024, 3, 16, 13, 0, tzinfo=UTC)


def load_payload(carrier: str, name: str) -> Any:
    return json.loads((FIXTURES / carrier / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def declared() -> dict[str, Carrier]:
    return load_declared_carriers(CARRIERS_FILE, BUILT_IN)


@functools.cache
def example_carriers() -> dict[str, Carrier]:
    return load_declared_carriers(CARRIERS_FILE, BUILT_IN)


def rapidez(payload: Any, context: ParseContext = CONTEXT) -> list[ShipmentUpdate]:
    return example_carriers()["rapidez"].parse(payload, context)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def summary(update: ShipmentUpdate) -> list[tuple[str, Status, str, str, str, str]]:
    return [
        (
            event.occurred_at.isoformat(),
            event.status,
            event.carrier_status,
            event.description,
            event.city,
            event.state,
        )
        for event in update.events
    ]


# --- the documented example -------------------------------------------------------------


def test_the_example_file_declares_rapidez_and_log_norte(declared: dict[str, Carrier]) -> None:
    assert list(declared) == ["rapidez", "log_norte"]
    assert all(carrier.name == name for name, carrier in declared.items())


def test_delivered_history_is_read_in_sao_paulo_sorted_and_deduplicated() -> None:
    [update] = rapidez(load_payload("rapidez", "delivered"))

    assert update.tracking_number == "RPZ100234567BR"
    assert update.tracking_url == "https://rastreio.rapidez.com.br/RPZ100234567BR"
    assert dict(update.references) == {
        "order_id": "1402320512345-01",
        "invoice_number": "000123456",
    }
    # Newest first in the payload, one arrival scan sent twice; 17:58 in Brasília is 20:58Z.
    assert summary(update) == [
        (
            "2024-03-12T22:03:00+00:00",
            Status.IN_TRANSIT,
            "COLETADO",
            "Objeto coletado no remetente",
            "São Paulo",
            "SP",
        ),
        (
            "2024-03-14T01:15:00+00:00",
            Status.IN_TRANSIT,
            "CHEGADA_NA_UNIDADE",
            "Objeto chegou na unidade de distribuição",
            "Campinas",
            "SP",
        ),
        (
            "2024-03-14T11:41:00+00:00",
            Status.OUT_FOR_DELIVERY,
            "SAIU_PARA_ENTREGA",
            "Objeto saiu para entrega ao destinatário",
            "Campinas",
            "SP",
        ),
        (
            "2024-03-14T20:58:00+00:00",
            Status.DELIVERED,
            "ENTREGUE",
            "Objeto entregue ao destinatário",
            "Campinas",
            "SP",
        ),
    ]
    assert all(event.occurred_at.tzinfo is UTC for event in update.events)


def test_in_transit_missing_places_are_empty_text() -> None:
    [update] = rapidez(load_payload("rapidez", "in_transit"))

    assert update.tracking_number == "RPZ100298811BR"
    assert [(e.status, e.city, e.state) for e in update.events] == [
        (Status.INFO_RECEIVED, "", ""),  # "local": null
        (Status.IN_TRANSIT, "São Paulo", ""),  # no "uf"
        (Status.IN_TRANSIT, "Cajamar", "SP"),
    ]
    # nota_fiscal is null: the reference is left out, not "None".
    assert dict(update.references) == {"order_id": "1402320599876-01"}


def test_exception_and_a_code_missing_from_the_table() -> None:
    [update] = rapidez(load_payload("rapidez", "exception"))

    assert [(e.status, e.carrier_status, e.description) for e in update.events] == [
        (Status.OUT_FOR_DELIVERY, "SAIU_PARA_ENTREGA", "Objeto saiu para entrega ao destinatário"),
        (
            Status.EXCEPTION,
            "DESTINATARIO_AUSENTE",
            "Destinatário ausente - 1ª tentativa de entrega. Nova tentativa no próximo dia útil",
        ),
        # default_status, and `descricao || codigo` stands in for the empty text.
        (Status.UNKNOWN, "AGUARDANDO_REAGENDAMENTO", "AGUARDANDO_REAGENDAMENTO"),
    ]


def test_one_post_carries_several_shipments() -> None:
    updates = rapidez(load_payload("rapidez", "batch"))

    assert [(u.tracking_number, len(u.events)) for u in updates] == [
        ("RPZ100402233BR", 1),
        ("RPZ100402234BR", 2),
        ("RPZ100402235BR", 0),
    ]
    assert updates[0].events[0].status is Status.OUT_FOR_DELIVERY
    assert [e.status for e in updates[1].events] == [Status.RETURNED, Status.RETURNED]
    assert updates[1].events[0].occurred_at == utc("2024-03-11T18:20:00-03:00")
    assert updates[2].tracking_url is None
    assert dict(updates[2].references) == {"order_id": "1402320700458-01"}


def test_iso_times_without_offset_use_the_default_zone(declared: dict[str, Carrier]) -> None:
    [update] = declared["log_norte"].parse(load_payload("log_norte", "delivered"), CONTEXT)

    assert update.tracking_number == "LN0004471236"
    assert [(e.occurred_at, e.status, e.carrier_status) for e in update.events] == [
        (utc("2024-05-02T10:15:00-04:00"), Status.IN_TRANSIT, "01"),  # Manaus, from the context
        (utc("2024-05-03T14:40:00-04:00"), Status.DELIVERED, "03"),
    ]
    assert dict(update.references) == {"order_id": "1402320812345-01"}


def test_the_spec_zone_wins_over_the_default_zone() -> None:
    payload = load_payload("rapidez", "batch")
    tokyo = ParseContext(default_zone=ZoneInfo("Asia/Tokyo"))

    assert rapidez(payload, tokyo) == rapidez(payload, CONTEXT)


# --- rejections -------------------------------------------------------------------------


def edit(path: str, value: Any) -> Callable[[Any], Any]:
    """A copy of the payload with ``value`` at the dotted ``path`` (``DELETE`` removes it)."""

    def apply(payload: Any) -> Any:
        payload = copy.deepcopy(payload)
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
        return payload

    return apply


DELETE = object()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        pytest.param(lambda p: [p], "body must be a JSON object", id="array-body"),
        pytest.param(lambda p: "ok", "body must be a JSON object", id="string-body"),
        pytest.param(lambda p: None, "body must be a JSON object", id="null-body"),
        pytest.param(
            edit("dados", DELETE),
            "shipments (expression 'dados.pacotes') must be a JSON array, found nothing",
            id="no-shipments",
        ),
        pytest.param(
            edit("dados.pacotes", {"codigo_rastreio": "X"}),
            "shipments (expression 'dados.pacotes') must be a JSON array, found a JSON object",
            id="shipments-not-a-list",
        ),
        pytest.param(
            edit("dados.pacotes.0.codigo_rastreio", "  "),
            "shipments.0.tracking_number (expression 'codigo_rastreio') is missing or empty",
            id="blank-tracking-number",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias", None),
            "shipments.0.events (expression 'ocorrencias') must be a JSON array",
            id="events-null",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.2.data_hora", DELETE),
            "shipments.0.events.2.time (expression 'data_hora') is missing or empty",
            id="missing-time",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.1.data_hora", "2024-03-14T08:41:00-03:00"),
            "shipments.0.events.1.time (expression 'data_hora') does not match the format "
            "'%d/%m/%Y %H:%M'",
            id="time-in-another-format",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.1.data_hora", "31/02/2024 10:00"),
            "shipments.0.events.1.time (expression 'data_hora') does not match",
            id="impossible-date",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.1.data_hora", "01/01/1970 00:00"),
            "shipments.0.events.1.time (expression 'data_hora') is not a plausible tracking time",
            id="implausible-year",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.0.codigo", None),
            "shipments.0.events.0.status (expression 'codigo') is missing or empty",
            id="missing-status",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.0.codigo", True),
            "shipments.0.events.0.status (expression 'codigo') is missing or empty",
            id="boolean-status",
        ),
        pytest.param(
            edit("dados.pacotes.0.ocorrencias.0", "ENTREGUE"),
            "shipments.0.events.0.time (expression 'data_hora') is missing or empty",
            id="event-not-an-object",
        ),
    ],
)
def test_unreadable_payloads_are_rejected_naming_the_field(
    change: Callable[[Any], Any], detail: str
) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        rapidez(change(load_payload("rapidez", "delivered")))

    assert detail in rejected.value.detail


def test_numbers_are_read_as_text_where_text_is_expected() -> None:
    payload = edit("dados.pacotes.0.codigo_rastreio", 100234567)(load_payload("rapidez", "batch"))
    payload = edit("dados.pacotes.0.ocorrencias.0.codigo", 7)(payload)
    payload = edit("dados.pacotes.0.pedido.numero", 1402320700456)(payload)

    update = rapidez(payload)[0]

    assert update.tracking_number == "100234567"
    assert (update.events[0].carrier_status, update.events[0].status) == ("7", Status.UNKNOWN)
    assert update.references["order_id"] == "1402320700456"


# --- other time formats, written as files -----------------------------------------------

BASE: dict[str, Any] = {
    "signature": {"scheme": "hmac-sha256", "header": "X-Test-Signature"},
    "tracking_number": "codigo",
    "events": "historico",
    "event": {"time": "quando", "status": "situacao", "description": "texto"},
    "statuses": {"ENTREGUE": "delivered", "EM_ROTA": "out_for_delivery"},
}


def write(tmp_path: Path, carriers: Any) -> Path:
    path = tmp_path / "carriers.yaml"
    path.write_text(
        yaml.safe_dump({"carriers": carriers}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


def declare(tmp_path: Path, **changes: Any) -> Carrier:
    definition = {**copy.deepcopy(BASE), **changes}
    return load_declared_carriers(write(tmp_path, {"teste": definition}), BUILT_IN)["teste"]


def one_event(when: Any, status: Any = "ENTREGUE") -> dict[str, Any]:
    return {"codigo": "T1", "historico": [{"quando": when, "situacao": status, "texto": "ok"}]}


@pytest.mark.parametrize(
    ("time_format", "value", "expected"),
    [
        pytest.param("epoch", 1710446280, "2024-03-14T19:58:00+00:00", id="epoch"),
        pytest.param("epoch", "1710446280.5", "2024-03-14T19:58:00.500000+00:00", id="epoch-text"),
        pytest.param("epoch_ms", 1710446280123, "2024-03-14T19:58:00.123000+00:00", id="epoch-ms"),
        pytest.param(
            "%Y-%m-%d %H:%M:%S %z",
            "2024-03-14 16:58:00 -0300",
            "2024-03-14T19:58:00+00:00",
            id="strptime-with-offset",
        ),
        pytest.param("%d.%m.%Y", "14.03.2024", "2024-03-14T03:00:00+00:00", id="date-only"),
        pytest.param(None, "2024-03-14T16:58:00", "2024-03-14T19:58:00+00:00", id="iso-naive"),
        pytest.param(None, "2024-03-14T16:58:00Z", "2024-03-14T16:58:00+00:00", id="iso-utc"),
    ],
)
def test_time_formats(tmp_path: Path, time_format: str | None, value: Any, expected: str) -> None:
    carrier = declare(tmp_path, time_format=time_format, timezone="America/Sao_Paulo")

    [update] = carrier.parse(one_event(value), CONTEXT)

    assert update.events[0].occurred_at.isoformat() == expected
    assert update.events[0].occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("time_format", "value"),
    [
        ("epoch", "soon"),
        ("epoch", True),
        ("epoch", math.inf),
        ("epoch", 10**400),
        ("epoch", 1e300),
        ("epoch_ms", 1710446280),  # seconds where milliseconds are expected: 1970
        ("epoch", [1710446280]),
    ],
)
def test_bad_unix_times_are_rejected(tmp_path: Path, time_format: str, value: Any) -> None:
    carrier = declare(tmp_path, time_format=time_format)

    with pytest.raises(PayloadRejected, match=r"events\.0\.time \(expression 'quando'\)"):
        carrier.parse(one_event(value), CONTEXT)


@pytest.mark.parametrize(
    ("events", "historico"),
    [
        # jmespath's own type error
        ("sort_by(historico, &quando)", [{"quando": "2024-03-14"}, {"quando": 5}]),
        # a plain TypeError from comparing str and int
        ("[max_by(historico, &quando)]", [{"quando": "2024-03-14"}, {"quando": 5}]),
        # OverflowError, ValueError
        ("historico[?floor(n) > `0`]", [{"n": math.inf}]),
        ("historico[?ceil(n) > `0`]", [{"n": math.nan}]),
    ],
)
def test_an_expression_that_fails_on_the_payload_is_a_rejection(
    tmp_path: Path, events: str, historico: Any
) -> None:
    carrier = declare(tmp_path, events=events)

    with pytest.raises(PayloadRejected, match=r"^events \(expression .*\) could not be evaluated"):
        carrier.parse({"codigo": "T1", "historico": historico}, CONTEXT)


# --- signatures -------------------------------------------------------------------------


def test_rapidez_verifies_a_hex_hmac_of_the_raw_body(declared: dict[str, Carrier]) -> None:
    body = (FIXTURES / "rapidez" / "delivered.json").read_bytes()
    digest = hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    verify = declared["rapidez"].verify

    verify("s3cr3t", {"x-rapidez-signature": digest}, body, NOW)
    verify("s3cr3t", {"x-rapidez-signature": digest.upper()}, body, NOW)
    with pytest.raises(SignatureInvalid):
        verify("s3cr3t", {"x-rapidez-signature": digest}, body + b" ", NOW)
    with pytest.raises(SignatureInvalid):
        verify("s3cr3t", {}, body, NOW)


def test_base64_and_prefix_options(tmp_path: Path) -> None:
    signature = {"scheme": "hmac-sha256", "header": "X-Sig", "encoding": "base64", "prefix": "v1="}
    carrier = declare(tmp_path, signature=signature)
    body = b'{"codigo": "T1"}'
    digest = base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()

    carrier.verify("k", {"x-sig": "v1=" + digest}, body, NOW)
    with pytest.raises(SignatureInvalid):
        carrier.verify("k", {"x-sig": digest}, body, NOW)


@pytest.mark.parametrize(
    ("scheme", "verifier"),
    [("standard-webhooks", verify_standard_webhooks), ("token", verify_static_token)],
)
def test_other_schemes_use_the_shared_verifiers(
    tmp_path: Path, scheme: str, verifier: object
) -> None:
    carrier = declare(tmp_path, signature={"scheme": scheme})

    assert carrier.verify is verifier
    assert carrier.credential == "secret"


# --- validation: every problem names the file, the carrier and the field ----------------


def changed(**changes: Any) -> dict[str, Any]:
    """BASE with changes; ``event__time`` names a nested key, ``DELETE`` removes one."""
    definition = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = definition
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return definition


@pytest.mark.parametrize(
    ("definition", "field", "message"),
    [
        pytest.param(
            changed(event__time="when["),
            "event.time",
            "invalid JMESPath expression 'when[': Incomplete expression",
            id="jmespath-syntax",
        ),
        pytest.param(
            changed(tracking_number="a b"),
            "tracking_number",
            "invalid JMESPath expression 'a b'",
            id="jmespath-tracking-number",
        ),
        pytest.param(
            changed(shipments="dados.["),
            "shipments",
            "invalid JMESPath expression",
            id="jmespath-shipments",
        ),
        pytest.param(
            changed(tracking_url="`"),
            "tracking_url",
            "Unclosed ` delimiter",
            id="jmespath-lexer",
        ),
        pytest.param(
            changed(references={"order_id": "pedido["}),
            "references.order_id",
            "invalid JMESPath expression 'pedido['",
            id="jmespath-reference",
        ),
        pytest.param(
            changed(event__city=""),
            "event.city",
            "cannot be empty",
            id="jmespath-empty",
        ),
        pytest.param(
            changed(event__description="upper(texto)"),
            "event.description",
            "unknown function upper()",
            id="jmespath-unknown-function",
        ),
        pytest.param(
            changed(events="historico[::0]"),
            "events",
            "a slice step cannot be zero",
            id="jmespath-zero-step",
        ),
        pytest.param(
            changed(event__status="join(situacao)"),
            "event.status",
            "join() takes 2 arguments, not 1",
            id="jmespath-arity",
        ),
        pytest.param(
            changed(tracking_number=DELETE),
            "tracking_number",
            "required",
            id="missing-field",
        ),
        pytest.param(
            changed(event__time=DELETE),
            "event.time",
            "required",
            id="missing-event-field",
        ),
        pytest.param(
            changed(signature=DELETE),
            "signature",
            "required",
            id="missing-signature",
        ),
        pytest.param(
            changed(tracking_nubmer="codigo"),
            "tracking_nubmer",
            "unknown key; expected one of: signature, shipments, tracking_number",
            id="unknown-key",
        ),
        pytest.param(
            changed(event__where="local"),
            "event.where",
            "unknown key; expected one of: time",
            id="unknown-event-key",
        ),
        pytest.param(
            changed(signature__secret="hunter2"),
            "signature.secret",
            "unknown key; expected one of: scheme",
            id="secret-in-file",
        ),
        pytest.param(
            changed(events=12),
            "events",
            "must be text",
            id="not-a-string",
        ),
        pytest.param(
            changed(event="quando"),
            "event",
            "must be an object",
            id="event-not-a-mapping",
        ),
        pytest.param(
            changed(timezone="America/Sao_Paolo"),
            "timezone",
            "unknown time zone 'America/Sao_Paolo'",
            id="zone",
        ),
        pytest.param(
            changed(timezone="/etc/localtime"),
            "timezone",
            "unknown time zone",
            id="zone-path",
        ),
        pytest.param(
            changed(time_format="%d/%m %H:%M"),
            "time_format",
            "does not carry a full date",
            id="format-without-year",
        ),
        pytest.param(
            changed(time_format="%d/%m/%Y %Q"),
            "time_format",
            "not a strptime format usable for reading",
            id="format-bad-directive",
        ),
        pytest.param(
            changed(time_format="%s"),
            "time_format",
            "or epoch or epoch_ms",
            id="format-glibc-s",
        ),
        pytest.param(
            changed(statuses={"ENTREGUE": "done"}),
            "statuses.ENTREGUE",
            "'info_received', 'in_transit'",
            id="status-value",
        ),
        pytest.param(
            changed(statuses={1: "delivered"}),
            "statuses",
            "quote it",
            id="status-code-number",
        ),
        pytest.param(
            changed(statuses={}),
            "statuses",
            "at least 1 item",
            id="status-table-empty",
        ),
        pytest.param(
            changed(default_status="lost"),
            "default_status",
            "(got 'lost')",
            id="default-status",
        ),
        pytest.param(
            changed(signature__scheme="hmac-sha1"),
            "signature.scheme",
            "'hmac-sha256', 'standard-webhooks' or 'token'",
            id="scheme",
        ),
        pytest.param(
            changed(signature__header=DELETE),
            "signature.header",
            "required for scheme hmac-sha256",
            id="hmac-without-header",
        ),
        pytest.param(
            changed(signature__header="X Rapidez: Signature"),
            "signature.header",
            "is not an HTTP header name",
            id="header-name",
        ),
        pytest.param(
            changed(signature__encoding="hexadecimal"),
            "signature.encoding",
            "'hex' or 'base64'",
            id="encoding",
        ),
        pytest.param(
            changed(signature={"scheme": "token", "header": "X-Token"}),
            "signature.header",
            "only for scheme hmac-sha256, not token",
            id="token-with-header",
        ),
        pytest.param(
            changed(signature={"scheme": "standard-webhooks", "encoding": "base64"}),
            "signature.encoding",
            "only for scheme hmac-sha256",
            id="standard-with-encoding",
        ),
        pytest.param(
            changed(signature={"scheme": "token", "prefix": "Bearer "}),
            "signature.prefix",
            "only for scheme hmac-sha256",
            id="token-with-prefix",
        ),
        pytest.param("just text", "(definition)", "must be a mapping", id="definition-text"),
    ],
)
def test_a_bad_definition_names_file_carrier_and_field(
    tmp_path: Path, definition: Any, field: str, message: str
) -> None:
    path = write(tmp_path, {"teste": definition})

    with pytest.raises(DeclaredCarrierError) as failed:
        load_declared_carriers(path, BUILT_IN)

    assert f"{path}: carrier 'teste': {field}: " in str(failed.value)
    [line] = [line for line in failed.value.problems if f": {field}: " in line]
    assert message in line
    assert isinstance(failed.value, ValueError)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Rapidez", "lower-case letters"),
        ("ra-pidez", "lower-case letters"),
        ("ra__pidez", "single inner underscores"),
        ("_rapidez", "lower-case letters"),
        ("r" * 65, "at most 64"),
        ("aftership", "clashes with the built-in carrier 'aftership'"),
        ("17track", "clashes with the built-in carrier '17track'"),
        (42, "lower-case letters"),
    ],
)
def test_a_bad_name_names_file_carrier_and_field(tmp_path: Path, name: Any, message: str) -> None:
    path = write(tmp_path, {name: copy.deepcopy(BASE)})

    with pytest.raises(DeclaredCarrierError) as failed:
        load_declared_carriers(path, BUILT_IN)

    assert f"{path}: carrier '{name}': name: " in str(failed.value)
    assert message in str(failed.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("carriers: [1,\n  2", "not valid YAML: ", id="yaml-syntax"),
        pytest.param("carriers:\n  a: {}\n  a: {}\n", "the key 'a' is given twice", id="dup"),
        pytest.param("- rapidez\n", "expected a mapping with the key 'carriers'", id="list"),
        pytest.param("", "expected a mapping with the key 'carriers'", id="empty-file"),
        pytest.param(
            "carrier:\n  x: {}\n", "expected a mapping with the key 'carriers'", id="typo"
        ),
        pytest.param("carriers: {}\nversion: 2\n", "version: unknown key", id="extra-top-key"),
        pytest.param(
            "carriers: [rapidez]\n", "carriers: must map carrier names", id="carriers-list"
        ),
        pytest.param(b"carriers: {}\n# \xff\n", "not UTF-8 text", id="not-utf8"),
    ],
)
def test_an_unusable_file_names_the_file(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = tmp_path / "carriers.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(DeclaredCarrierError) as failed:
        load_declared_carriers(path, BUILT_IN)

    assert str(failed.value).startswith(f"{path}: ")
    assert message in str(failed.value)


def test_a_duplicate_key_inside_a_carrier_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"teste": BASE})
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("ENTREGUE: delivered\n", "ENTREGUE: delivered\n      ENTREGUE: returned\n")
    )

    with pytest.raises(DeclaredCarrierError, match=r"'ENTREGUE' is given twice \(line \d+"):
        load_declared_carriers(path, BUILT_IN)


def test_merge_keys_may_share_settings_between_carriers(tmp_path: Path) -> None:
    path = tmp_path / "carriers.yaml"
    shared = "".join(f"    {line}\n" for line in yaml.safe_dump(BASE).splitlines())
    path.write_text(
        f"carriers:\n  um: &shared\n{shared}  dois:\n    <<: *shared\n    events: eventos\n"
    )

    carriers = load_declared_carriers(path, BUILT_IN)

    assert list(carriers) == ["um", "dois"]


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(DeclaredCarrierError, match=r"nowhere\.yaml: no such file"):
        load_declared_carriers(path, BUILT_IN)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DeclaredCarrierError, match=re.escape(f"{tmp_path}: cannot be read")):
        load_declared_carriers(tmp_path, BUILT_IN)


def test_every_problem_of_every_carrier_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "um": changed(event__time="[", timezone="Mars/Olympus"),
            "dois": changed(statuses={"X": "lost"}),
            "tres": copy.deepcopy(BASE),
        },
    )

    with pytest.raises(DeclaredCarrierError) as failed:
        load_declared_carriers(path, BUILT_IN)

    assert [line.split(": ")[1:3] for line in failed.value.problems] == [
        ["carrier 'um'", "event.time"],
        ["carrier 'um'", "timezone"],
        ["carrier 'dois'", "statuses.X"],
    ]


def test_an_empty_carriers_section_declares_none(tmp_path: Path) -> None:
    path = tmp_path / "carriers.yaml"
    path.write_text("carriers:\n")

    assert load_declared_carriers(path, BUILT_IN) == {}


# --- properties: any JSON is events or a typed rejection --------------------------------

KEYS = st.sampled_from(
    [
        "dados", "pacotes", "codigo_rastreio", "url_rastreio", "ocorrencias", "data_hora",
        "codigo", "descricao", "local", "cidade", "uf", "pedido", "numero", "nota_fiscal",
        "codigo", "historico", "quando", "situacao", "texto", "itens", "k", "v",
    ]
)  # fmt: skip
PLAUSIBLE = st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(2105, 1, 1))
AWARE = st.datetimes(
    min_value=datetime(1985, 1, 1), max_value=datetime(2105, 1, 1), timezones=st.timezones()
)
EDGES = st.one_of(
    st.datetimes().map(lambda moment: moment.strftime("%d/%m/%Y %H:%M")),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.sampled_from(["31/02/2024 10:00", "01/01/0001 00:00", "31/12/9999 23:59", "NaN", " "]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    EDGES,
    st.sampled_from(["ENTREGUE", "EM_ROTA", "SAIU_PARA_ENTREGA", "RPZ1BR"]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)


Wrap = Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]]


def _as_is(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return valid


def _or_any(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, JSON)


def _shaped(times: st.SearchStrategy[Any], wrap: Wrap) -> st.SearchStrategy[Any]:
    """A rapidez-shaped body; ``wrap`` lets any JSON stand in for a well-typed value."""
    codes = st.sampled_from(["ENTREGUE", "EM_DEVOLUCAO", "COLETADO", "NOVO_CODIGO", 3])
    event = st.fixed_dictionaries(
        {
            "data_hora": wrap(times),
            "codigo": wrap(codes),
            "descricao": wrap(st.text(min_size=1, max_size=20).filter(str.strip)),
        },
        optional={
            "local": wrap(
                st.fixed_dictionaries({}, optional={"cidade": wrap(st.text()), "uf": JSON})
            )
        },
    )
    package = st.fixed_dictionaries(
        {
            "codigo_rastreio": wrap(st.from_regex(r"[A-Z]{3}[0-9]{6}BR", fullmatch=True)),
            "ocorrencias": wrap(st.lists(wrap(event), max_size=4)),
        },
        optional={
            "url_rastreio": JSON,
            "pedido": wrap(st.fixed_dictionaries({}, optional={"numero": JSON})),
        },
    )
    packages = st.fixed_dictionaries({"pacotes": st.lists(wrap(package), max_size=3)})
    return st.fixed_dictionaries({"dados": wrap(packages)})


def payloads(times: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Any JSON; a rapidez-shaped body with times like ``times`` (sometimes at the edges of
    ``datetime``); or such a body where any value may be any JSON."""
    return st.one_of(JSON, _shaped(st.one_of(times, EDGES), _as_is), _shaped(times, _or_any))


EPOCHS = PLAUSIBLE.map(lambda moment: moment.replace(tzinfo=UTC).timestamp())
SPECS: dict[str, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {
    "strptime-in-zone": (  # the fixture's rapidez
        {},
        PLAUSIBLE.map(lambda moment: moment.strftime("%d/%m/%Y %H:%M")),
    ),
    "iso-default-zone": (
        {"time_format": None, "timezone": None},
        PLAUSIBLE.map(lambda moment: moment.isoformat()) | AWARE.map(lambda m: m.isoformat()),
    ),
    "epoch": ({"time_format": "epoch"}, EPOCHS | EPOCHS.map(int) | EPOCHS.map(str)),
    "epoch-ms": ({"time_format": "epoch_ms"}, EPOCHS.map(lambda seconds: int(seconds * 1000))),
    "strptime-offset": (
        {"time_format": "%Y-%m-%dT%H:%M:%S%z"},
        AWARE.map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S%z")),
    ),
    "functions": (
        {
            "shipments": "dados.pacotes[?codigo_rastreio] | sort_by(@, &codigo_rastreio)",
            "tracking_number": "to_string(codigo_rastreio)",
            # max_by over mixed key types raises a plain TypeError inside jmespath
            "tracking_url": "url_rastreio || max_by(ocorrencias, &codigo).descricao",
            "events": "ocorrencias[*] || `[]`",
            "event": {
                "time": "data_hora",
                "status": "join('-', [to_string(codigo), to_string(local)])",
                "description": "descricao || max_by(local.*, &length(@)) || codigo",
                "city": "local.cidade",
                "state": "local.uf && to_string(floor(local.uf))",
            },
        },
        PLAUSIBLE.map(lambda moment: moment.strftime("%d/%m/%Y %H:%M")),
    ),
}


@pytest.fixture(scope="module")
def property_carriers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Carrier]:
    """The fixture's rapidez, varied: time formats, zones, and JMESPath functions."""
    document = yaml.safe_load(CARRIERS_FILE.read_text(encoding="utf-8"))
    carriers = {}
    for name, (changes, _) in SPECS.items():
        definition = {**document["carriers"]["rapidez"], **changes}
        definition = {key: value for key, value in definition.items() if value is not None}
        path = write(tmp_path_factory.mktemp(name), {"propriedade": definition})
        carriers[name] = load_declared_carriers(path, BUILT_IN)["propriedade"]
    return carriers


@pytest.mark.parametrize("spec", list(SPECS))
@settings(max_examples=200, deadline=None)
@given(data=st.data(), zone=st.sampled_from(["UTC", "America/Sao_Paulo", "Pacific/Kiritimati"]))
def test_any_json_yields_utc_events_or_a_rejection(
    property_carriers: dict[str, Carrier], spec: str, data: st.DataObject, zone: str
) -> None:
    carrier = property_carriers[spec]
    payload = data.draw(payloads(SPECS[spec][1]), label="payload")
    outcome: list[ShipmentUpdate] | PayloadRejected
    try:
        outcome = carrier.parse(payload, ParseContext(default_zone=ZoneInfo(zone)))
    except PayloadRejected as rejected:
        outcome = rejected
    if isinstance(outcome, PayloadRejected):
        assert outcome.detail
        return
    for update in outcome:
        assert isinstance(update, ShipmentUpdate)
        assert update.tracking_number == update.tracking_number.strip() != ""
        times = [event.occurred_at for event in update.events]
        assert all(moment.tzinfo is UTC for moment in times)
        assert times == sorted(times)
        assert len(set(update.events)) == len(update.events)
        for event in update.events:
            assert event.description == event.description.strip() != ""
            assert isinstance(event.city, str)
            assert isinstance(event.state, str)
        assert all(isinstance(value, str) for value in update.references.values())
