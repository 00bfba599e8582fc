"""Bounded waits: every wait on a real hypervisor ends, with a message saying what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from vmgrid.lab.errors import LabError

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
) -> T:
    """Call `probe` until it returns something truthy and return that; raise LabError naming
    `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
