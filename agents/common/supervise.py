"""Background tasks of long-running servers that survive their own bugs.

A task created with ``asyncio.create_task`` that raises dies silently until someone awaits it:
the uplink's summary sender, a watchdog or a relay stops and the component looks alive but no
longer works. ``supervise`` runs such a loop as a task that logs the exception (with its
traceback: it is a bug) and starts the loop again after a delay that doubles while it keeps
failing quickly. Cancelling the task stops it; a loop that returns normally is finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
"""Delay before the first restart; it doubles up to MAX_DELAY_S while runs keep failing."""
MAX_DELAY_S = 30.0
HEALTHY_RUN_S = 60.0
"""A run that lasted this long before failing restarts after FIRST_DELAY_S again."""


class Supervised:
    """The restart count and last failure of one supervised loop (read by tests, metrics)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restarts = 0
        self.last_error: BaseException | None = None


def supervise(
    loop: Callable[[], Awaitable[None]],
    name: str,
    first_delay_s: float = FIRST_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
    record: Supervised | None = None,
) -> asyncio.Task[None]:
    """A task running ``await loop()``, restarted whenever it raises; see the module doc."""
    stats = record if record is not None else Supervised(name)

    async def run() -> None:
        delay = first_delay_s
        while True:
            started = time.monotonic()
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the point: log it and restart
                stats.restarts += 1
                stats.last_error = exc
                if time.monotonic() - started >= HEALTHY_RUN_S:
                    delay = first_delay_s
                log.error(
                    "background task %s died (%s: %s); restarting in %.1f s",
                    name,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=exc,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)

    return asyncio.get_running_loop().create_task(run(), name=name)
