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


async def time_until(check: Callable[[], object], timeout_s: float) -> float:
    """Seconds until `check()` is true, polled every 20 ms; TimeoutError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > timeout_s:
            raise TimeoutError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)
    return loop.time() - start
