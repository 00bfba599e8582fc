"""In-process event bus of the cluster manager.

State changes (node joined/lost/returned, VM appeared/disappeared/changed state, command
results) are published here; WatchEvents and later the decision loop subscribe. Publishing
never blocks: a subscriber that falls more than its queue behind loses the oldest events and
the loss is counted, so a slow watcher cannot stall report ingestion.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents.common import event_bus
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
    NODE_DEGRADED_CHANGED = "node_degraded_changed"
    NODE_POWER_CHANGED = "node_power_changed"
    RULE_CHANGED = "rule_changed"
    VM_CONFLICT = "vm_conflict"
    NODE_FORGOTTEN = "node_forgotten"
    POLICY_CHANGED = "policy_changed"


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
Subscription = event_bus.Subscription[ClusterEvent]


class EventBus(event_bus.FanOut[ClusterEvent]):
    """Fan-out of ClusterEvents to subscribers; call from the event loop thread only."""

    def __init__(self, cluster_id: str, clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(clock_ns)
        self.cluster_id = cluster_id

    def publish(self, kind: EventKind, **fields: object) -> ClusterEvent:
        """Build an event with the next sequence number and deliver it."""
        sequence, at_unix_ns = self._stamp()
        event = ClusterEvent(
            sequence=sequence,
            at_unix_ns=at_unix_ns,
            kind=kind,
            cluster_id=self.cluster_id,
            **fields,  # type: ignore[arg-type]
        )
        return self._deliver(event)
