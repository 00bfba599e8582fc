"""In-process fan-out of events to bounded subscriber queues, for any event type.

The cluster manager and the coordinator each publish their own event values; both need the
same delivery rule. Publishing never blocks: a subscriber that falls more than its queue behind
loses its oldest events (counted in ``dropped``), so a slow watcher cannot stall the producer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

E = TypeVar("E")


class Subscription(Generic[E]):
    """A bounded queue of events for one subscriber; close it when done."""

    def __init__(self, bus: FanOut[E], accept: Callable[[E], bool] | None, max_queued: int) -> None:
        self._bus = bus
        self._accept = accept
        self._queue: asyncio.Queue[E] = asyncio.Queue(max_queued)
        self.dropped = 0

    def offer(self, event: E) -> None:
        """Queue an event, dropping the oldest one when full."""
        if self._accept is not None and not self._accept(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> E:
        """Wait for the next event."""
        return await self._queue.get()

    def get_nowait(self) -> E | None:
        """The next queued event, or None."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class FanOut(Generic[E]):
    """Subscribers, sequence numbers and clock of a bus; call from the event loop thread only.

    Subclasses build their event with ``_stamp()`` and hand it to ``_deliver``.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._sequence = itertools.count(1)
        self._subscribers: list[Subscription[E]] = []

    def subscribe(
        self, accept: Callable[[E], bool] | None = None, max_queued: int = 1024
    ) -> Subscription[E]:
        """A new subscription receiving events published from now on."""
        sub = Subscription(self, accept, max_queued)
        self._subscribers.append(sub)
        return sub

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open (a watcher that has subscribed misses nothing
        published from then on)."""
        return len(self._subscribers)

    def unsubscribe(self, sub: Subscription[E]) -> None:
        """Remove a subscription (idempotent)."""
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def _stamp(self) -> tuple[int, int]:
        """(next sequence number, now in Unix ns) for a new event."""
        return next(self._sequence), self._clock_ns()

    def _deliver(self, event: E) -> E:
        for sub in list(self._subscribers):
            sub.offer(event)
        return event
