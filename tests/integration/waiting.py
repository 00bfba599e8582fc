"""Polling helper shared by the integration tests that watch a live cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_for(check: Callable[[], object], timeout_s: float) -> None:
    """Return once `check()` is true; AssertionError after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")
