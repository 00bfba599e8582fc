"""A cluster's nodes as the manager keeps them: status, immutable views, mutable records."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import overload

from vmgrid.agents.cluster.state.history import NodeHistory
from vmgrid.agents.cluster.state.host_window import HostWindow
from vmgrid.agents.cluster.state.trend import NodeFold
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    Pressure,
    VmState,
    VmUsage,
)
from vmgrid.agents.report_rows import VmRow, column_of, new_vm_usage

NO_VM_PRESSURE: Mapping[str, Pressure] = MappingProxyType({})


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
    vms: tuple[VmUsage, ...] | RecordVms
    """Its VMs (RecordVms in the snapshot of a forked decision process: built when read)."""
    last_seen_unix_ns: int
    last_sequence: int
    draining: bool
    degraded_reason: str = ""
    """Why the agent cannot read its hypervisor (its last heartbeat said so); empty: healthy."""
    vm_pressure: Mapping[str, Pressure] = field(default_factory=lambda: NO_VM_PRESSURE)
    """Pressure of the VMs whose cgroup the agent reads (uuid -> pressure); absent: none
    available. Node pressure is in ``usage.pressure`` (and so in the node's history)."""

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
        "fold",
        "last_seen_monotonic",
        "last_seen_unix_ns",
        "last_sequence",
        "draining",
        "connection_id",
        "degraded_reason",
        "hot_limit",
        "hot_since",
        "low_since",
        "high_since",
        "holding",
        "vm_pressure",
    )

    def __init__(self, hello: NodeHello, connection_id: int, now: float, window: int) -> None:
        self.hello = hello
        self.status = NodeStatus.CONNECTED
        self.usage: HostUsage | None = None
        self.uuids: tuple[str, ...] = ()
        self.states: tuple[VmState, ...] = ()
        self.rows: Sequence[VmRow] = ()
        self._vms: dict[str, VmUsage] | None = {}
        self.history = HostWindow(window)
        """The node's last `window` host samples, (sent_at, HostUsage) oldest first."""
        self.vm_history = NodeHistory(window)
        self.fold = NodeFold()
        """The node's open bucket of the long-term history (trend.py)."""
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
        self.low_since: int | None = None
        """Earliest sent_at of the node's current run of samples under the band's CPU floor
        (None: the last is not), kept by QuietWatch (quiet.py) once the loop asks."""
        self.high_since: int | None = None
        """The same for its run above the band's CPU top or the pressure limit."""
        self.holding: tuple[tuple[VmState, ...], tuple[bool, ...] | None] | None = None
        """The states tuple last read for its memory and which of those VMs hold memory
        (None: all), kept by gauges.record_memory_fraction while the states do not change."""
        self.vm_pressure: Mapping[str, Pressure] = NO_VM_PRESSURE

    @property
    def reporting(self) -> bool:
        """Whether the node's agent is connected (its reports count)."""
        return self.status is NodeStatus.CONNECTED

    @property
    def vms(self) -> dict[str, VmUsage]:
        """uuid -> VmUsage of the node's VMs, in report order (built on first read)."""
        vms = self._vms
        if vms is None:
            vms = self._vms = {row[0]: new_vm_usage(*row) for row in self.rows}
        return vms

    @property
    def built_vms(self) -> dict[str, VmUsage] | None:
        """The VmUsage objects of the node's VMs if built already (None: not built)."""
        return self._vms

    def set_rows(
        self,
        uuids: tuple[str, ...],
        states: tuple[VmState, ...],
        rows: Sequence[VmRow],
        vms: dict[str, VmUsage] | None = None,
    ) -> None:
        """Replace the node's VMs (``vms``: their VmUsage objects, when already built)."""
        self.uuids, self.states, self.rows, self._vms = uuids, states, rows, vms


def running_columns(
    vms: Iterable[VmUsage], states: frozenset[VmState]
) -> tuple[list[str], list[int], list[int]]:
    """(uuid, CPU millicores, memory allocated) of those of `vms` in `states`, in order."""
    running = [vm for vm in vms if vm.state in states]
    return (
        [vm.uuid for vm in running],
        [vm.cpu_used_millicores for vm in running],
        [vm.memory_allocated_bytes for vm in running],
    )


class RecordVms(Sequence[VmUsage]):
    """A node's VMs in a snapshot of a state that no longer changes (a forked decision
    process's copy): the VmUsage objects are built on first read, and `running` reads the
    columns the decision policy needs without building them (at 5,000 nodes of 20 VMs, a
    third of a busy cycle's CPU went to building 100,000 objects the policy never read). Reads
    as the tuple of the record's VMs (equality, hash, pickling)."""

    __slots__ = ("_uuids", "_states", "_rows", "_vms")

    def __init__(self, record: NodeRecord) -> None:
        # the record's last report as of now (a report replaces these objects, never edits them)
        self._uuids, self._states, self._rows = record.uuids, record.states, record.rows
        built = record.built_vms
        self._vms = None if built is None else tuple(built.values())

    def _built(self) -> tuple[VmUsage, ...]:
        if self._vms is None:  # as NodeRecord.vms builds them (one per uuid)
            self._vms = tuple({row[0]: new_vm_usage(*row) for row in self._rows}.values())
        return self._vms

    def running(self, states: frozenset[VmState]) -> tuple[list[str], list[int], list[int]]:
        """(uuid, CPU millicores, memory allocated) of the VMs in `states`, in report order."""
        uuids = self._uuids
        if self._vms is not None or len(set(uuids)) < len(uuids):
            return running_columns(self._built(), states)
        keep = [i for i, state in enumerate(self._states) if state in states]
        cpu = column_of(self._rows, "cpu_used_millicores")
        memory = column_of(self._rows, "memory_allocated_bytes")
        return [uuids[i] for i in keep], [cpu[i] for i in keep], [memory[i] for i in keep]

    def __len__(self) -> int:
        return len(self._built())

    @overload
    def __getitem__(self, index: int) -> VmUsage: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[VmUsage, ...]: ...
    def __getitem__(self, index: int | slice) -> VmUsage | tuple[VmUsage, ...]:
        return self._built()[index]

    def __iter__(self) -> Iterator[VmUsage]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordVms | tuple):
            return self._built() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return repr(self._built())

    def __reduce__(self) -> tuple[type[tuple[VmUsage, ...]], tuple[tuple[VmUsage, ...]]]:
        return tuple, (self._built(),)


class HotWatch:
    """Tells listeners, once per spell, that a node's reports have shown its CPU above a
    fraction of its capacity for the hold time, on the node's clock (every report of the spell
    above). ClusterState checks it with one comparison per report (``hot_limit``)."""

    def __init__(self) -> None:
        self._fraction = 0.0
        self._hold_ns = 0
        self._listeners: list[Callable[[str], None]] = []

    def watch(
        self,
        fraction: float,
        hold_s: float,
        listener: Callable[[str], None],
        nodes: Iterable[NodeRecord],
    ) -> None:
        self._fraction, self._hold_ns = fraction, int(hold_s * 1e9)
        self._listeners.append(listener)
        for node in nodes:
            self.set_limit(node)

    def retune(self, fraction: float, nodes: Iterable[NodeRecord]) -> None:
        """Watch for `fraction` from now on (the operator changed the band's top)."""
        self._fraction = fraction
        for node in nodes:
            self.set_limit(node)

    def set_limit(self, node: NodeRecord) -> None:
        """The node's hot_limit from its capacity (a new node, a new hello)."""
        if self._listeners:
            node.hot_limit = self._fraction * node.hello.capacity.cpu_millicores

    def report(self, node_id: str, node: NodeRecord, cpu: int, sent_at: int) -> None:
        """A report of a node that is hot or was: follow its spell, tell when it is held."""
        if cpu <= node.hot_limit:
            node.hot_since = 0  # the spell is over
        elif not node.hot_since:
            node.hot_since = sent_at
        elif node.hot_since > 0 and sent_at - node.hot_since >= self._hold_ns:
            node.hot_since = -1
            for listener in self._listeners:
                listener(node_id)
