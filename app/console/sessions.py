"""Console sign-in, as pure functions: which role a token gives, the session cookie's value
and its check, and the CSRF token of a session (SPEC §10).

The cookie is ``<session id>.<expiry>.<signature>``, signed with a key derived from the
configured tokens: changing either token signs every session out. The id alone is the
session's row in the database (as a hash), which sign-out deletes, so a copied cookie stops
working on every replica.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

COOKIE_NAME = "relay_console"
SESSION_LIFETIME = timedelta(hours=12)


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


def signing_key(admin_token: str | None, viewer_token: str | None, secret: bytes) -> bytes | None:
    """The key of every cookie and CSRF token; None when neither token is set. ``secret`` is
    the database's own random secret, so that a cookie says nothing of the tokens (a viewer
    cannot test guesses of the admin token against it offline)."""
    if not admin_token and not viewer_token:
        return None
    material = f"relay console\0{admin_token or ''}\0{viewer_token or ''}".encode()
    return hmac.new(secret, material, hashlib.sha256).digest()


def role_for_token(given: str, admin_token: str | None, viewer_token: str | None) -> Role | None:
    """The role a typed token signs in as; None if it is neither. Digests are compared, in
    constant time, so that the time says nothing of the tokens' lengths or which matched."""
    if not given.strip():
        return None
    typed = hashlib.sha256(given.strip().encode()).digest()
    found = None
    for role, token in ((Role.ADMIN, admin_token), (Role.VIEWER, viewer_token)):
        expected = hashlib.sha256((token or "").encode()).digest()
        if hmac.compare_digest(typed, expected) and token and found is None:
            found = role
    return found


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_hash(session_id: str) -> str:
    """What the database keeps of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _signature(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def cookie_value(key: bytes, session_id: str, expires_at: datetime) -> str:
    payload = f"{session_id}.{int(expires_at.timestamp())}"
    return f"{payload}.{_signature(key, payload)}"


def session_from_cookie(key: bytes | None, value: str | None, now: datetime) -> str | None:
    """The session id a cookie carries, if its signature holds and it has not expired."""
    if key is None or not value or len(value) > 256:
        return None
    payload, _, signature = value.rpartition(".")
    session_id, _, expiry = payload.partition(".")
    if not session_id or not expiry.isascii() or not expiry.isdigit() or len(expiry) > 12:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        return None
    if int(expiry) <= now.timestamp():
        return None
    return session_id


def csrf_token(key: bytes, session_id: str) -> str:
    """The token every form of the session carries (derived, so nothing more is stored)."""
    return _signature(key, f"csrf\0{session_id}")


def csrf_holds(key: bytes, session_id: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        given.encode(errors="replace"), csrf_token(key, session_id).encode()
    )
