"""In-process event bus of the cluster manager.

State changes (node joined/lost/returned, VM appeared/disappeared/changed state, command
results) are published here; WatchEvents and later the decision loop subscribe. Publishing
never blocks: a subscriber that falls more than its queue behind loses the oldest events and
the loss is counted, so a slow watcher cannot stall report ingestion.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents.model import VmState


class EventKind(enum.Enum):
    """Kinds of cluster events (names match the wire EventKind without its prefix)."""

    NODE_JOINED = "node_joined"
    NODE_LOST = "node_lost"
    NODE_RETURNED = "node_returned"
    VM_APPEARED = "vm_appeared"
    VM_DISAPPEARED = "vm_disappeared"
    VM_STATE_CHANGED = "vm_state_changed"
    VM_LIFECYCLE = "vm_lifecycle"
    COMMAND_RESULT = "command_result"
    PLAN_CHANGED = "plan_changed"
    NODE_DRAIN_CHANGED = "node_drain_changed"


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """One thing that happened in the cluster."""

    sequence: int
    at_unix_ns: int
    kind: EventKind
    cluster_id: str
    node_id: str = ""
    vm_uuid: str = ""
    vm_state: VmState | None = None
    previous_vm_state: VmState | None = None
    message: str = ""
    simulated: bool = False
    command_id: str = ""
    plan_id: str = ""
    plan_progress_fraction: float = 0.0
    """For plan events: how far the whole plan is, 0.0 .. 1.0."""
    plan_state: str = ""
    """For plan events: the journal's PlanState value; a final one ends the plan."""


EventFilter = Callable[[ClusterEvent], bool]


class Subscription:
    """A bounded queue of events for one subscriber; close it when done."""

    def __init__(self, bus: EventBus, accept: EventFilter | None, max_queued: int) -> None:
        self._bus = bus
        self._accept = accept
        self._queue: asyncio.Queue[ClusterEvent] = asyncio.Queue(max_queued)
        self.dropped = 0

    def offer(self, event: ClusterEvent) -> None:
        """Queue an event, dropping the oldest one when full."""
        if self._accept is not None and not self._accept(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> ClusterEvent:
        """Wait for the next event."""
        return await self._queue.get()

    def get_nowait(self) -> ClusterEvent | None:
        """The next queued event, or None."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of ClusterEvents to subscribers; call from the event loop thread only."""

    def __init__(self, cluster_id: str, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.cluster_id = cluster_id
        self._clock_ns = clock_ns
        self._sequence = itertools.count(1)
        self._subscribers: list[Subscription] = []

    def subscribe(self, accept: EventFilter | None = None, max_queued: int = 1024) -> Subscription:
        """A new subscription receiving events published from now on."""
        sub = Subscription(self, accept, max_queued)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (idempotent)."""
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, kind: EventKind, **fields: object) -> ClusterEvent:
        """Build an event with the next sequence number and deliver it."""
        event = ClusterEvent(
            sequence=next(self._sequence),
            at_unix_ns=self._clock_ns(),
            kind=kind,
            cluster_id=self.cluster_id,
            **fields,  # type: ignore[arg-type]
        )
        for sub in self._subscribers:
            sub.offer(event)
        return event
