"""A cluster's nodes as the manager keeps them: status, immutable views, mutable records."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from vmgrid.agents.cluster.state.history import NodeHistory
from vmgrid.agents.model import HostUsage, NodeCapacity, NodeHello, NodeIdentity, VmState, VmUsage
from vmgrid.agents.report_rows import VmRow, new_vm_usage


class NodeStatus(enum.Enum):
    """Whether the manager hears from a node."""

    CONNECTED = "connected"
    LOST = "lost"
    POWERED_OFF = "powered_off"
    """The manager powered the node off (its agent is expected to be silent); it may power it
    on again. Not lost: no failure handling, no heartbeat timeout."""


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node as of a snapshot."""

    identity: NodeIdentity
    capacity: NodeCapacity
    status: NodeStatus
    usage: HostUsage | None
    vms: tuple[VmUsage, ...]
    last_seen_unix_ns: int
    last_sequence: int
    draining: bool
    degraded_reason: str = ""
    """Why the agent cannot read its hypervisor (its last heartbeat said so); empty: healthy."""

    @property
    def node_id(self) -> str:
        """Shortcut for identity.node_id."""
        return self.identity.node_id


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """A node's status, usage and its VMs' states (ClusterState.loads: metrics)."""

    node_id: str
    status: NodeStatus
    usage: HostUsage | None
    capacity: NodeCapacity
    vm_states: tuple[VmState, ...]


class NodeRecord:
    """Mutable per-node record (internal to ClusterState).

    Its VMs are kept as the rows of its last report (``uuids``, ``states``, ``rows``); the
    VmUsage objects are built from them on first read (``vms``) and kept until the next report.
    """

    __slots__ = (
        "hello",
        "status",
        "usage",
        "uuids",
        "states",
        "rows",
        "_vms",
        "history",
        "vm_history",
        "last_seen_monotonic",
        "last_seen_unix_ns",
        "last_sequence",
        "draining",
        "connection_id",
        "degraded_reason",
        "hot_limit",
        "hot_since",
    )

    def __init__(self, hello: NodeHello, connection_id: int, now: float, window: int) -> None:
        self.hello = hello
        self.status = NodeStatus.CONNECTED
        self.usage: HostUsage | None = None
        self.uuids: tuple[str, ...] = ()
        self.states: tuple[VmState, ...] = ()
        self.rows: tuple[VmRow, ...] = ()
        self._vms: dict[str, VmUsage] | None = {}
        self.history: deque[tuple[int, HostUsage]] = deque(maxlen=window)
        self.vm_history = NodeHistory(window)
        self.last_seen_monotonic = now
        self.last_seen_unix_ns = 0
        self.last_sequence = 0
        self.draining = False
        self.connection_id = connection_id
        self.degraded_reason = ""
        self.hot_limit = float("inf")
        """CPU millicores above which a report counts as hot (see ClusterState.watch_hot)."""
        self.hot_since = 0
        """sent_at of the first report of the node's current hot spell (0: not hot; -1:
        the watchers were told, until the spell ends)."""

    @property
    def vms(self) -> dict[str, VmUsage]:
        """uuid -> VmUsage of the node's VMs, in report order (built on first read)."""
        vms = self._vms
        if vms is None:
            vms = self._vms = {row[0]: new_vm_usage(*row) for row in self.rows}
        return vms

    def set_rows(
        self,
        uuids: tuple[str, ...],
        states: tuple[VmState, ...],
        rows: tuple[VmRow, ...],
        vms: dict[str, VmUsage] | None = None,
    ) -> None:
        """Replace the node's VMs (``vms``: their VmUsage objects, when already built)."""
        self.uuids, self.states, self.rows, self._vms = uuids, states, rows, vms
