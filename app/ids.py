"""Unique ids without a system call each: a random prefix per process and a counter.

``uuid4`` reads ``os.urandom`` and builds a UUID object for every id, which was a tenth of
the webhook path's time. Request and webhook ids need to be unique, not secret (nothing is
authorised by knowing one): 80 random bits drawn once per process (so once per replica, and
again in a forked child) and a 48-bit counter give ids of the same shape, 32 hex digits.
"""

from __future__ import annotations

import itertools
import os
import secrets


def _start() -> None:
    global _prefix, _counter
    _prefix, _counter = secrets.token_hex(10), itertools.count()


_prefix = ""
_counter = itertools.count()
_start()
os.register_at_fork(after_in_child=_start)


def unique_hex() -> str:
    """32 hex digits, never the same twice in this process nor, in practice, across them."""
    return f"{_prefix}{next(_counter) & 0xFFFF_FFFF_FFFF:012x}"
