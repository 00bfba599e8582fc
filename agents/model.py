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
from dataclasses import dataclass, field

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


# Commands: one dataclass per kind. Every command carries a command_id, its idempotency key:
# an agent never executes the same id twice, and a manager caches final results by id.


@dataclass(frozen=True, slots=True)
class MigrateCommand:
    """Migrate a VM to the hypervisor at destination_uri (0 bandwidth cap = uncapped)."""

    command_id: str
    vm_uuid: str
    destination_uri: str
    bandwidth_cap_bps: int = 0
    live: bool = True
    auto_converge: bool = False
    copy_storage: bool = False
    migration_uri: str = ""
    """Where QEMU sends the memory stream (e.g. tcp://10.0.0.2); empty: libvirt derives it."""


@dataclass(frozen=True, slots=True)
class AbortMigrationCommand:
    """Abort the running migration of a VM."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class SuspendCommand:
    """Pause a VM in memory."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class ResumeCommand:
    """Resume a paused VM."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class CreateSnapshotCommand:
    """Take a named snapshot of a VM."""

    command_id: str
    vm_uuid: str
    snapshot_name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class RevertSnapshotCommand:
    """Revert a VM to a named snapshot."""

    command_id: str
    vm_uuid: str
    snapshot_name: str


@dataclass(frozen=True, slots=True)
class DeleteSnapshotCommand:
    """Delete a named snapshot."""

    command_id: str
    vm_uuid: str
    snapshot_name: str


@dataclass(frozen=True, slots=True)
class ListSnapshotsCommand:
    """List a VM's snapshots (names come back in CommandResult.snapshot_names)."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class SaveCommand:
    """Save a VM's memory to a file on the node and stop it."""

    command_id: str
    vm_uuid: str
    path: str


@dataclass(frozen=True, slots=True)
class RestoreCommand:
    """Restore a VM from a file written by SaveCommand."""

    command_id: str
    path: str


@dataclass(frozen=True, slots=True)
class DefineCommand:
    """Define (register) a VM from libvirt domain XML."""

    command_id: str
    domain_xml: str


@dataclass(frozen=True, slots=True)
class StartCommand:
    """Start a defined VM."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class ShutdownCommand:
    """Ask the guest to shut down."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class DestroyCommand:
    """Power a VM off at once."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class UndefineCommand:
    """Remove a VM's definition."""

    command_id: str
    vm_uuid: str


@dataclass(frozen=True, slots=True)
class PrepareDisksCommand:
    """Create a submitted VM's overlay and seed ISO in a directory local to the node.

    The manager builds the seed and sends its bytes, so the agent needs no job spec and no
    cloud-init knowledge; it only runs qemu-img and writes a file.
    """

    command_id: str
    overlay_path: str
    backing_file: str
    seed_path: str
    seed_iso: bytes = field(default=b"", repr=False)


Command = (
    MigrateCommand
    | AbortMigrationCommand
    | SuspendCommand
    | ResumeCommand
    | CreateSnapshotCommand
    | RevertSnapshotCommand
    | DeleteSnapshotCommand
    | ListSnapshotsCommand
    | SaveCommand
    | RestoreCommand
    | DefineCommand
    | StartCommand
    | ShutdownCommand
    | DestroyCommand
    | UndefineCommand
    | PrepareDisksCommand
)


class CommandState(enum.Enum):
    """Progress of a command."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINAL_COMMAND_STATES = frozenset({CommandState.SUCCEEDED, CommandState.FAILED})


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Progress or outcome of a command; an agent sends several per command, the last final."""

    command_id: str
    state: CommandState
    progress_fraction: float = 0.0
    message: str = ""
    simulated: bool = False
    data_processed_bytes: int = 0
    data_remaining_bytes: int = 0
    snapshot_names: tuple[str, ...] = field(default=())
    vm_uuid: str = ""
    updated_at_unix_ns: int = 0

    @property
    def is_final(self) -> bool:
        """True once the command succeeded or failed; no further result will follow."""
        return self.state in FINAL_COMMAND_STATES


@dataclass(frozen=True, slots=True)
class StreamError:
    """The manager rejected one agent message; the message and field name the bad value."""

    message: str
    field: str = ""
    sequence: int = 0
