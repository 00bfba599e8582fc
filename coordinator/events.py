"""In-process event bus of the coordinator (cluster joined / lost / returned, plans).

Publishing never blocks: a subscriber that falls more than its queue behind loses its oldest
events (counted in ``dropped``), so a slow WatchEvents client cannot stall the link handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from vmgrid.agents.common import event_bus
from vmgrid.agents.grid_model import GridEvent, GridEventKind

EventFilter = Callable[[GridEvent], bool]
Subscription = event_bus.Subscription[GridEvent]


class EventBus(event_bus.FanOut[GridEvent]):
    """Fan-out of GridEvents; call from the event loop thread only."""

    def publish(
        self,
        kind: GridEventKind,
        cluster_id: str = "",
        message: str = "",
        plan_id: str = "",
        vm_uuid: str = "",
        simulated: bool = False,
    ) -> GridEvent:
        sequence, at_unix_ns = self._stamp()
        return self._deliver(
            GridEvent(sequence, at_unix_ns, kind, cluster_id, message, plan_id, vm_uuid, simulated)
        )
