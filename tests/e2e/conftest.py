"""Helpers of the end-to-end tests. Their one running platform, the session's
``stack`` fixture, lives in tests/conftest.py: the browser tests use it too."""

import time
from collections.abc import Callable
from typing import Any


def eventually(probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until the probe returns something truthy (the worker is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)
