"""Debian's Chromium for Playwright: where it is, the flags CI needs, and a skip when missing."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tests.helpers import require

CHROMIUM = os.environ.get("MQKIT_TEST_CHROMIUM", "/usr/bin/chromium")
#: The flags that work on the CI machines (closed network, root, no GPU).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def require_chromium() -> str:
    """Chromium's path; skip on a laptop (fail in CI) without Playwright or Chromium.

    Never ``playwright install``: it downloads a browser, which the CI network refuses.
    """
    require(importlib.util.find_spec("playwright") is not None,
            "Playwright for Python is not installed (pip install playwright)")
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM
