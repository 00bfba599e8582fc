"""Observation and command values shared by the node agent and the cluster manager.

These are the domain side of the node link: the agent builds them from libvirt, the manager
keeps them in its state, and one codec per side converts them to and from the wire
(``vmgrid.v1.node_pb2``). Nothing here imports grpc or generated code.

Units are part of every name and are integers unless stated:
- ``_millicores``: 1/1000 of a CPU (a fully busy 4-vCPU VM uses 4000 millicores);
- ``_bytes``: bytes (memory, migrated data);
- ``_bytes_per_second``: data rates (network and disk throughput);
- ``_bps``: bits per second, only for link capacity (NIC bandwidth, migration caps);
- ``_ms``: milliseconds (periods, timeouts);
- ``_unix_ns``: wall-clock time as nanoseconds since the Unix epoch (0 = unknown).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vmgrid.agents.node_commands import FINAL_COMMAND_STATES as FINAL_COMMAND_STATES
from vmgrid.agents.node_commands import AbortMigrationCommand as AbortMigrationCommand
from vmgrid.agents.node_commands import Command as Command
from vmgrid.agents.node_commands import CommandResult as CommandResult
from vmgrid.agents.node_commands import CommandState as CommandState
from vmgrid.agents.node_commands import CreateSnapshotCommand as CreateSnapshotCommand
from vmgrid.agents.node_commands import DefineCommand as DefineCommand
from vmgrid.agents.node_commands import DeleteSnapshotCommand as DeleteSnapshotCommand
from vmgrid.agents.node_commands import DestroyCommand as DestroyCommand
from vmgrid.agents.node_commands import ListSnapshotsCommand as ListSnapshotsCommand
from vmgrid.agents.node_commands import MigrateCommand as MigrateCommand
from vmgrid.agents.node_commands import MigrationJob as MigrationJob
from vmgrid.agents.node_commands import PrepareDisksCommand as PrepareDisksCommand
from vmgrid.agents.node_commands import RestoreCommand as RestoreCommand
from vmgrid.agents.node_commands import ResumeCommand as ResumeCommand
from vmgrid.agents.node_commands import RevertSnapshotCommand as RevertSnapshotCommand
from vmgrid.agents.node_commands import SaveCommand as SaveCommand
from vmgrid.agents.node_commands import ShutdownCommand as ShutdownCommand
from vmgrid.agents.node_commands import StartCommand as StartCommand
from vmgrid.agents.node_commands import SuspendCommand as SuspendCommand
from vmgrid.agents.node_commands import UndefineCommand as UndefineCommand
from vmgrid.agents.psi import NO_PRESSURE as NO_PRESSURE
from vmgrid.agents.psi import Pressure as Pressure
from vmgrid.agents.psi import PressureStall as PressureStall
from vmgrid.agents.psi import VmPressure as VmPressure
from vmgrid.agents.traffic import TrafficMatrix


class VmState(enum.Enum):
    """Lifecycle state of a VM (libvirt domain states, plus defined and migrating)."""

    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting_down"
    SHUT_OFF = "shut_off"
    CRASHED = "crashed"
    PM_SUSPENDED = "pm_suspended"
    DEFINED = "defined"
    MIGRATING = "migrating"


# The VM-state sets, named once. Every module asks these rather than listing states itself;
# a module whose rule differs says so where it derives its own set from one of these.

RUNNING_STATES: frozenset[VmState] = frozenset(
    {VmState.RUNNING, VmState.BLOCKED, VmState.MIGRATING, VmState.SHUTTING_DOWN}
)
"""The VM runs: it uses CPU on its node (a migrating VM on its source until the switch-over, a
shutting-down one until it is off)."""

SLEEPING_STATES: frozenset[VmState] = frozenset({VmState.PAUSED, VmState.PM_SUSPENDED})
"""The VM is asleep in memory: no CPU, but its memory stays on its node."""

HOLDS_MEMORY_STATES: frozenset[VmState] = RUNNING_STATES | SLEEPING_STATES
"""The VM holds its memory on its node (running or asleep): it counts against the node's room."""

MOVABLE_STATES: frozenset[VmState] = frozenset({VmState.RUNNING, VmState.BLOCKED})
"""The VM runs and is settled, so the manager may migrate (or suspend) it: not already
migrating, not shutting down, not asleep, not stopped."""

STOPPED_STATES: frozenset[VmState] = frozenset({VmState.SHUT_OFF, VmState.DEFINED, VmState.CRASHED})
"""The VM is stopped: defined on its node but holding neither CPU nor memory there."""


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What a node can offer to VMs."""

    cpu_millicores: int
    memory_bytes: int
    nic_bandwidth_bps: int


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who a node is and how to reach its hypervisor."""

    node_id: str
    hostname: str
    migration_uri: str
    """Data URI of QEMU's migration stream to this node (tcp://HOST); empty: libvirt picks."""
    agent_version: str = ""
    hypervisor_kind: str = "qemu"
    simulated: bool = False
    peer_uri: str = ""
    """libvirt URI peers dial for a peer-to-peer migration to this node."""

    @property
    def migration_target(self) -> tuple[str, str]:
        """(libvirt destination URI, data migration URI) for a migration to this node.

        Agents before `peer_uri` existed put the libvirt URI in `migration_uri`; then the data
        URI is left to libvirt.
        """
        if self.peer_uri:
            return self.peer_uri, self.migration_uri
        return self.migration_uri, ""


@dataclass(frozen=True, slots=True)
class NodeHello:
    """First message of an agent stream."""

    identity: NodeIdentity
    capacity: NodeCapacity
    started_at_unix_ns: int = 0
    report_period_ms: int = 3000


@dataclass(frozen=True, slots=True)
class HelloAck:
    """The manager's answer to a hello: the timing it expects."""

    cluster_id: str
    manager_version: str
    report_period_ms: int
    heartbeat_timeout_ms: int
    known_node: bool = False
    term: int = 0
    """Leadership term of a replicated manager; 0 for a single replica."""


@dataclass(frozen=True, slots=True)
class HostUsage:
    """Host-wide usage over the last period."""

    cpu_used_millicores: int
    memory_used_bytes: int
    memory_total_bytes: int
    net_rx_bytes_per_second: int = 0
    net_tx_bytes_per_second: int = 0
    pressure: Pressure = NO_PRESSURE


@dataclass(frozen=True, slots=True)
class VmUsage:
    """One VM's state and usage over the last period."""

    uuid: str
    name: str
    state: VmState
    vcpus: int
    cpu_used_millicores: int
    memory_used_bytes: int
    memory_allocated_bytes: int
    net_rx_bytes_per_second: int = 0
    net_tx_bytes_per_second: int = 0
    disk_read_bytes_per_second: int = 0
    disk_write_bytes_per_second: int = 0
    simulated: bool = False
    memory_resident_bytes: int = 0
    """What a live migration's first pass sends: the guest's resident non-zero pages, as the
    agent last measured them (0: not measured; the manager then counts memory_used_bytes)."""
    memory_dirty_bytes_per_second: int = 0
    """Distinct guest memory written per second, from libvirt's dirty-rate calculation
    (0: idle, or not measured)."""
    memory_dirty_set_bytes: int = 0
    """The most distinct memory written within one calculation window over the agent's recent
    windows: at least the working set a pre-copy round re-sends (0: unknown)."""


@dataclass(frozen=True, slots=True)
class NodeReport:
    """Periodic full report: host usage and every VM on the node."""

    sent_at_unix_ns: int
    sequence: int
    host: HostUsage
    vms: tuple[VmUsage, ...] = ()
    vm_pressure: tuple[VmPressure, ...] = ()
    """Pressure of the VMs whose cgroup the agent reads; the others have none available."""
    traffic: TrafficMatrix | None = None
    """Measured VM-to-VM traffic; None from an agent that does not measure it."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Keeps a link alive between reports."""

    sent_at_unix_ns: int
    sequence: int
    degraded_reason: str = ""
    """Non-empty while the agent cannot read its hypervisor: why (reports pause meanwhile)."""


class LifecycleEventKind(enum.Enum):
    """What happened to a VM, from libvirt domain events."""

    STARTED = "started"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    MIGRATED = "migrated"
    DEFINED = "defined"
    UNDEFINED = "undefined"


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """A VM lifecycle change seen by the agent."""

    at_unix_ns: int
    kind: LifecycleEventKind
    vm_uuid: str
    vm_name: str = ""
    detail: str = ""
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class StreamError:
    """The manager rejected one agent message; the message and field name the bad value."""

    message: str
    field: str = ""
    sequence: int = 0
