"""Recent events and the fan-out to live streams, shared by both backends.

Publishing never blocks: a stream that falls more than its queue behind loses its oldest events,
so one slow browser cannot stall the manager.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

Json = dict[str, Any]


class EventFeed:
    """A ring of recent events plus one bounded queue per live stream."""

    def __init__(self, keep: int = 500, max_queued: int = 256) -> None:
        self._recent: deque[Json] = deque(maxlen=keep)
        self._streams: set[asyncio.Queue[Json]] = set()
        self._max_queued = max_queued
        self._sequence = itertools.count(1)

    def publish(self, event: Json, remember: bool = True) -> None:
        """Number, timestamp and deliver an event; progress ticks are not remembered."""
        event = {"id": next(self._sequence), "at_unix_ms": time.time_ns() // 1_000_000, **event}
        if remember:
            self._recent.append(event)
        for queue in self._streams:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def recent(self, limit: int) -> list[Json]:
        """The newest `limit` remembered events, newest last."""
        return list(self._recent)[-limit:] if limit > 0 else []

    async def stream(self) -> AsyncIterator[Json]:
        """Events published from now on."""
        queue: asyncio.Queue[Json] = asyncio.Queue(self._max_queued)
        self._streams.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._streams.discard(queue)
