"""Who is looking at the console: the session a request's cookie holds, if the database
still knows it; and the checks every action makes (admin, CSRF token) before it changes
anything (SPEC §10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from starlette.requests import Request

from app.console.sessions import (
    COOKIE_NAME,
    Role,
    csrf_holds,
    csrf_token,
    session_from_cookie,
    session_hash,
    signing_key,
)
from app.settings import Settings
from app.store.console_front import ConsoleStore

FORM_MAX_BYTES = 65_536
FORM_MAX_FIELDS = 64
"""A console form is a few short fields; a bigger body, or more fields, is not read."""


@dataclass(frozen=True)
class Visitor:
    role: Role
    session_id: str
    csrf: str
    key: bytes = field(repr=False)

    @property
    def may_act(self) -> bool:
        return self.role is Role.ADMIN


def tokens_of(settings: Settings) -> tuple[str | None, str | None]:
    """The admin and viewer tokens, None where unset."""
    admin, viewer = settings.admin_token, settings.viewer_token
    return (
        admin.get_secret_value() if admin else None,
        viewer.get_secret_value() if viewer else None,
    )


async def key_of(settings: Settings, store: ConsoleStore) -> bytes | None:
    """The signing key of cookies and CSRF tokens; None while no token is set."""
    admin, viewer = tokens_of(settings)
    if not admin and not viewer:
        return None
    return signing_key(admin, viewer, await store.signing_secret())


async def visitor_of(request: Request, settings: Settings, store: ConsoleStore) -> Visitor | None:
    """The signed-in visitor, or None (no cookie, a forged or expired one, or signed out)."""
    if COOKIE_NAME not in request.cookies:
        return None
    key = await key_of(settings, store)
    now = datetime.now(UTC)
    session_id = session_from_cookie(key, request.cookies.get(COOKIE_NAME), now)
    if key is None or session_id is None:
        return None
    role = await store.session_role(session_hash(session_id), now)
    if role not in (Role.ADMIN, Role.VIEWER):
        return None
    return Visitor(Role(role), session_id, csrf_token(key, session_id), key)


async def form_of(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the first value of each); empty for anything else."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if content_type != "application/x-www-form-urlencoded" or (
        declared.isascii() and declared.isdigit() and int(declared) > FORM_MAX_BYTES
    ):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=FORM_MAX_FIELDS)
    except ValueError:  # more fields than any console form has
        return {}
    return {name: values[0] for name, values in fields.items()}


def refusal(visitor: Visitor | None) -> str | None:
    """Why an action may not run for this visitor, or None: it needs an admin's session."""
    if visitor is None:
        return "Sign in first: this action needs an admin session."
    if not visitor.may_act:
        return "Viewers may look but not act: sign in with the admin token to do this."
    return None


def forged(visitor: Visitor, form: dict[str, str]) -> str | None:
    """Why the form is not the session's own (no or a wrong CSRF token), or None."""
    if not csrf_holds(visitor.key, visitor.session_id, form.get("csrf")):
        return "This form's security token is missing or out of date; reload the page, try again."
    return None
