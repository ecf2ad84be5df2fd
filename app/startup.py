"""What stops the relay starting, in an operator's words: a setting, or the database.

pydantic's messages name its classes ("instance of CarrierSettings") and drivers write
several lines naming what the URL already says; an operator reads one line naming the
variable and what is wrong with it (SPEC §6).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url

from app.problems import problem_message
from app.settings import AccountSettings, CarrierSettings, Settings

NESTED_SETTINGS: dict[str, type[BaseModel]] = {
    "carriers": CarrierSettings,
    "vtex_accounts": AccountSettings,
}


def setting_problem(item: ErrorDetails) -> tuple[str, str]:
    """(variable, reason) of one error of :class:`~app.settings.Settings`."""
    loc = [str(part) for part in item["loc"]]
    variable = "RELAY_" + "__".join(loc).upper()
    nested = NESTED_SETTINGS.get(loc[0]) if len(loc) > 1 else None
    keys = ", ".join(name.upper() for name in nested.model_fields) if nested else ""
    if item["type"] == "extra_forbidden" and nested is not None:
        return variable, f"unknown key {loc[-1].upper()}; known keys: {keys}"
    if item["type"] == "missing":
        return variable, "required, not set"
    if item["type"] in ("model_type", "dict_type"):
        shape = f"__<KEY>; known keys: {keys}" if nested else "__<NAME>__<KEY>"
        return variable, f"not a value of its own; set {variable}{shape}"
    return variable, problem_message(item)


def unparsable_setting(error: SettingsError) -> tuple[str, str]:
    """(variable, reason) of a nested setting given as JSON that does not parse."""
    field = re.search(r'field "(\w+)"', str(error))
    variable = f"RELAY_{field.group(1).upper()}" if field else "RELAY_*"
    return variable, f"not valid JSON; or set it as {variable}__<NAME>__<KEY>"


def database_setting(settings: Settings) -> str:
    """``RELAY_DATABASE_URL=...`` as an operator set it, passwords hidden."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return f"RELAY_DATABASE_URL={settings.database_url}"
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    shown = url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    return f"RELAY_DATABASE_URL={shown}"


def database_cause(error: BaseException) -> str:
    """The first line the driver wrote, less what the URL already says (host, port)."""
    root = error.__cause__ or error
    root = getattr(root, "orig", None) or root
    lines = str(root).strip().splitlines()
    text = lines[0] if lines else type(root).__name__
    text = re.sub(r"^(connection failed: )?(connection to server at .*? failed: )?", "", text)
    text = text.removeprefix("FATAL:").strip()
    return text[:1].lower() + text[1:]


def missing_database(settings: Settings) -> str | None:
    """Why a command that reads what a relay wrote has nothing to read: no SQLite file."""
    url = make_url(settings.database_url)
    path = Path(url.database or "")
    if url.get_backend_name() != "sqlite" or path.is_file():
        return None
    return (
        f"no database at {path.absolute()} ({database_setting(settings)}); "
        "run this where the relay runs or set RELAY_DATABASE_URL"
    )
