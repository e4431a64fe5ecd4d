"""Shared test helpers: CI-aware skipping and a clean MQKIT_* environment."""

from __future__ import annotations

import os

import pytest

#: In CI (``.ci/run`` sets CI=true) a missing service is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop when ``condition`` is false; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clean_mqkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's MQKIT_* settings (fixtures set what they need)."""
    for name in list(os.environ):
        if name.startswith("MQKIT_") and not name.startswith("MQKIT_TEST_"):
            monkeypatch.delenv(name)
