"""In-process event bus of the coordinator (cluster joined / lost / returned, plans).

Publishing never blocks: a subscriber that falls more than its queue behind loses its oldest
events (counted in ``dropped``), so a slow WatchEvents client cannot stall the link handlers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from vmgrid.coordinator.model import GridEvent, GridEventKind

EventFilter = Callable[[GridEvent], bool]


class Subscription:
    """A bounded queue of events for one subscriber; close it when done."""

    def __init__(self, bus: EventBus, accept: EventFilter | None, max_queued: int) -> None:
        self._bus = bus
        self._accept = accept
        self._queue: asyncio.Queue[GridEvent] = asyncio.Queue(max_queued)
        self.dropped = 0

    def offer(self, event: GridEvent) -> None:
        if self._accept is not None and not self._accept(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> GridEvent:
        return await self._queue.get()

    def get_nowait(self) -> GridEvent | None:
        """The next queued event, or None."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of GridEvents; call from the event loop thread only."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._sequence = itertools.count(1)
        self._subscribers: list[Subscription] = []

    def subscribe(self, accept: EventFilter | None = None, max_queued: int = 1024) -> Subscription:
        sub = Subscription(self, accept, max_queued)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(
        self,
        kind: GridEventKind,
        cluster_id: str = "",
        message: str = "",
        plan_id: str = "",
        vm_uuid: str = "",
        simulated: bool = False,
    ) -> GridEvent:
        event = GridEvent(
            next(self._sequence),
            self._clock_ns(),
            kind,
            cluster_id,
            message,
            plan_id,
            vm_uuid,
            simulated,
        )
        for sub in list(self._subscribers):
            sub.offer(event)
        return event
