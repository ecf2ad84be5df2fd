"""Declarative carriers from a YAML file (``RELAY_CARRIERS_FILE``, SPEC §5).

The file describes carriers without code::

    carriers:
      rapidez:                          # POST /webhooks/rapidez
        signature: {scheme: hmac-sha256, header: X-Rapidez-Signature}
        tracking_number: codigo_rastreio
        events: historico
        event: {time: data_hora, status: codigo, description: descricao}
        statuses: {ENTREGUE: delivered}

(``tests/fixtures/declared/carriers.yaml`` is a complete, commented example.)
:func:`load_declared_carriers` validates all of it at start-up: keys, JMESPath syntax
and function names, the time zone, the time format (formatted and read back), the
status values, the carrier names and the signature options. Every problem is reported
at once, one line each, naming the file, the carrier and the field; the pure parsing
lives in :mod:`app.normalize.carriers.declarative`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.ingest.carriers import Carrier
from app.ingest.signatures import (
    Verifier,
    hmac_sha256_verifier,
    verify_standard_webhooks,
    verify_static_token,
)
from app.normalize.carriers import declarative
from app.normalize.carriers.declarative import DeclarativeSpec, EventSpec
from app.normalize.model import Status
from app.problems import problem_message

# One path segment, and one settings segment: RELAY_CARRIERS__<NAME>__SECRET would not
# survive a double underscore, and a leading or trailing one reads as a typo.
_NAME = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
MAX_NAME_LENGTH = 64  # the store's carrier column
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_SAMPLE = datetime(2031, 11, 28, 21, 47, 53, 123456, tzinfo=UTC)  # every field distinct
_TIME_KEYWORDS = (declarative.EPOCH_SECONDS, declarative.EPOCH_MILLISECONDS)


class DeclaredCarrierError(ValueError):
    """The carriers file cannot be used; each line of the message names file, carrier, field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- the file's shape -------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignatureModel(_Model):
    """``signature:``; the secret itself comes from ``RELAY_CARRIERS__<NAME>__SECRET``."""

    scheme: Literal["hmac-sha256", "standard-webhooks", "token"]
    header: str | None = None
    encoding: Literal["hex", "base64"] | None = None
    prefix: str | None = None


class EventModel(_Model):
    """``event:``: JMESPath expressions relative to one element of ``events``."""

    time: str
    status: str
    description: str
    city: str | None = None
    state: str | None = None


class CarrierModel(_Model):
    """One carrier under ``carriers:``."""

    signature: SignatureModel
    shipments: str | None = None
    tracking_number: str
    tracking_url: str | None = None
    events: str
    event: EventModel
    time_format: str | None = None
    timezone: str | None = None
    statuses: dict[str, Status] = Field(min_length=1)
    default_status: Status = Status.UNKNOWN
    references: dict[str, str] = Field(default_factory=dict)

    @field_validator("statuses", mode="before")
    @classmethod
    def _codes_are_text(cls, value: Any) -> Any:
        # YAML reads ENTREGUE as text but 01 as 1 and yes as True: the payload's "01"
        # would then never match, so ask for quotes instead of guessing.
        if isinstance(value, Mapping):
            for code in value:
                if not isinstance(code, str):
                    raise ValueError(
                        f"the code {code!r} was read by YAML as {type(code).__name__}: "
                        'quote it (e.g. "01": delivered)'
                    )
        return value


_MODELS: Mapping[str, type[_Model]] = {
    "": CarrierModel,
    "signature": SignatureModel,
    "event": EventModel,
}


# --- reading the file -------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue  # "<<: *defaults" may be overridden, that is its purpose
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeclaredCarrierError([f"{path}: no such file"]) from None
    except UnicodeDecodeError:
        raise DeclaredCarrierError([f"{path}: not UTF-8 text"]) from None
    except OSError as error:
        raise DeclaredCarrierError([f"{path}: cannot be read: {error.strerror}"]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = error.problem or error.context or "unreadable"
        raise DeclaredCarrierError([f"{path}: not valid YAML: {problem}{where}"]) from None
    except yaml.YAMLError as error:
        raise DeclaredCarrierError([f"{path}: not valid YAML: {error}"]) from None


# --- checks pydantic cannot make --------------------------------------------------------


def _jmespath_message(error: JMESPathError) -> str:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    for noise in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
        first = first.removeprefix(noise)
    return first.removesuffix(":").removesuffix(", for expression")


def _nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            yield from _nodes(child)


def compile_expression(source: str) -> ParsedResult:
    """``source`` compiled; ``ValueError`` for bad syntax, an unknown function or arity, or
    a zero slice step.

    JMESPath finds those only when it evaluates them, which would make every webhook
    fail; the syntax tree shows them now.
    """
    try:
        compiled = jmespath.compile(source)
    except JMESPathError as error:
        raise ValueError(_jmespath_message(error)) from None
    table: Mapping[str, Any] = Functions.FUNCTION_TABLE
    for node in _nodes(compiled.parsed):
        if node.get("type") == "slice" and node["children"][2] == 0:
            raise ValueError("a slice step cannot be zero")
        if node.get("type") != "function_expression":
            continue
        name, count = str(node.get("value")), len(node.get("children", ()))
        if name not in table:
            raise ValueError(f"unknown function {name}() (JMESPath has {', '.join(table)})")
        signature = table[name]["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if count < len(signature) or (count > len(signature) and not variadic):
            expected = f"{len(signature)}{' or more' if variadic else ''}"
            raise ValueError(f"{name}() takes {expected} arguments, not {count}")
    return compiled


def check_time_format(time_format: str) -> None:
    """Raise ``ValueError`` unless ``time_format`` reads back the date it writes."""
    if time_format in _TIME_KEYWORDS:
        return
    try:
        written = _SAMPLE.strftime(time_format)
        read = datetime.strptime(written, time_format)
    except ValueError as error:
        raise ValueError(
            f"{time_format!r} is not a strptime format usable for reading ({error}); "
            f"use a format like '%d/%m/%Y %H:%M', or {' or '.join(_TIME_KEYWORDS)}"
        ) from None
    if read.date() != _SAMPLE.date():
        raise ValueError(
            f"{time_format!r} does not carry a full date (year, month and day): "
            f"{_SAMPLE.isoformat()} written as {written!r} reads back as {read.isoformat()}"
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from None


def _signature_problems(signature: SignatureModel) -> Iterator[tuple[str, str]]:
    if signature.scheme == "hmac-sha256":
        if signature.header is None:
            yield "signature.header", "required for scheme hmac-sha256"
        elif not _HEADER.match(signature.header):
            yield "signature.header", f"{signature.header!r} is not an HTTP header name"
        return
    for option in ("header", "encoding", "prefix"):
        if getattr(signature, option) is not None:
            yield f"signature.{option}", f"only for scheme hmac-sha256, not {signature.scheme}"


def _verifier(signature: SignatureModel) -> Verifier:
    if signature.scheme == "standard-webhooks":
        return verify_standard_webhooks
    if signature.scheme == "token":
        return verify_static_token
    assert signature.header is not None  # checked by _signature_problems
    return hmac_sha256_verifier(
        signature.header, signature.encoding or "hex", signature.prefix or ""
    )


def _pydantic_problems(error: ValidationError) -> Iterator[tuple[str, str]]:
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        field = ".".join(loc) or "(definition)"
        if item["type"] == "extra_forbidden":
            model = _MODELS.get(".".join(loc[:-1]))
            known = f"; expected one of: {', '.join(model.model_fields)}" if model else ""
            yield field, f"unknown key{known}"
            continue
        message = problem_message(item)
        if item["type"] == "missing":
            message = "required"
        elif isinstance(item.get("input"), str | int | float | bool):
            message += f" (got {item['input']!r})"
        yield field, message


def _spec(model: CarrierModel) -> tuple[DeclarativeSpec | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []

    def compiled(field: str, source: str | None) -> ParsedResult | None:
        if source is None:
            return None
        try:
            return compile_expression(source)
        except ValueError as error:
            problems.append((field, f"invalid JMESPath expression {source!r}: {error}"))
            return None

    shipments = compiled("shipments", model.shipments)
    tracking_number = compiled("tracking_number", model.tracking_number)
    tracking_url = compiled("tracking_url", model.tracking_url)
    events = compiled("events", model.events)
    time = compiled("event.time", model.event.time)
    status = compiled("event.status", model.event.status)
    description = compiled("event.description", model.event.description)
    city = compiled("event.city", model.event.city)
    state = compiled("event.state", model.event.state)
    references = {
        name: compiled(f"references.{name}", source) for name, source in model.references.items()
    }
    for name in model.references:
        if not name.strip():
            problems.append(("references", "a reference name is empty"))
    zone = None
    if model.timezone is not None:
        try:
            zone = _zone(model.timezone)
        except ValueError as error:
            problems.append(("timezone", str(error)))
    if model.time_format is not None:
        try:
            check_time_format(model.time_format)
        except ValueError as error:
            problems.append(("time_format", str(error)))
    problems.extend(_signature_problems(model.signature))
    if (
        problems
        or tracking_number is None
        or events is None
        or time is None
        or status is None
        or description is None
    ):
        return None, problems
    spec = DeclarativeSpec(
        tracking_number=tracking_number,
        events=events,
        event=EventSpec(time, status, description, city, state),
        statuses=model.statuses,
        default_status=model.default_status,
        shipments=shipments,
        tracking_url=tracking_url,
        time_format=model.time_format,
        timezone=zone,
        references={name: ref for name, ref in references.items() if ref is not None},
    )
    return spec, problems


def load_declared_carriers(path: Path, built_in_names: Collection[str]) -> dict[str, Carrier]:
    """The carriers the YAML file at ``path`` declares, by name, in file order.

    Raises :class:`DeclaredCarrierError` listing every problem (an unreadable file,
    invalid YAML, unknown keys, bad expressions, zones, formats, statuses or signature
    options, names that clash with ``built_in_names``); nothing is half-loaded.
    """
    document = _read_yaml(path)
    if not isinstance(document, Mapping) or "carriers" not in document:
        raise DeclaredCarrierError([f"{path}: expected a mapping with the key 'carriers'"])
    unknown = [str(key) for key in document if key != "carriers"]
    problems = [f"{path}: {key}: unknown key; expected only 'carriers'" for key in unknown]
    declared = document["carriers"] or {}
    if not isinstance(declared, Mapping):
        raise DeclaredCarrierError(
            [*problems, f"{path}: carriers: must map carrier names to their definitions"]
        )
    carriers: dict[str, Carrier] = {}
    for name, definition in declared.items():
        where = f"{path}: carrier {str(name)!r}"
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
            problems.append(
                f"{where}: name: must be at most {MAX_NAME_LENGTH} lower-case letters, digits "
                "and single inner underscores (it is the URL path and the "
                "RELAY_CARRIERS__<NAME>__ settings)"
            )
        elif name in built_in_names:
            problems.append(f"{where}: name: clashes with the built-in carrier {name!r}")
        if not isinstance(definition, Mapping):
            problems.append(f"{where}: (definition): must be a mapping of fields")
            continue
        try:
            model = CarrierModel.model_validate(definition)
        except ValidationError as error:
            problems.extend(
                f"{where}: {field}: {message}" for field, message in _pydantic_problems(error)
            )
            continue
        spec, spec_problems = _spec(model)
        problems.extend(f"{where}: {field}: {message}" for field, message in spec_problems)
        if spec is not None and isinstance(name, str):
            carriers[name] = Carrier(
                name, _verifier(model.signature), partial(declarative.parse, spec)
            )
    if problems:
        raise DeclaredCarrierError(problems)
    return carriers
