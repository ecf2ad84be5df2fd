"""Shared fixtures: where the published carrier samples live (``RELAY_REFERENCE_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HARNESS_VARIABLES = ("RELAY_TEST_", "RELAY_REFERENCE_DIR")


@pytest.fixture
def reference_dir() -> Path:
    """The folder of published reference material; the test is skipped when it is not set.

    A set but missing folder is a broken CI setup, so it fails instead of skipping.
    """
    value = os.environ.get("RELAY_REFERENCE_DIR", "").strip()
    if not value:
        pytest.skip("RELAY_REFERENCE_DIR is not set: published carrier samples are unavailable")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"RELAY_REFERENCE_DIR={value!r} is not a directory")
    return path


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``RELAY_*`` variable of the shell, and no ``.env`` but the test's own (cwd is tmp)."""
    for name in list(os.environ):
        # The harness's own variables (RELAY_TEST_*, RELAY_REFERENCE_DIR) are not settings.
        if name.startswith("RELAY_") and not name.startswith(HARNESS_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
