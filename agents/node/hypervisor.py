"""The hypervisor seam of the node agent: what the agent reads and does on its host.

The agent never talks to libvirt directly; it goes through this Protocol so that the
collector, the actuators and the stream can be exercised against the libvirt test driver,
and so that another hypervisor could be plugged in. Readings are raw cumulative counters
(nanoseconds of CPU, bytes per interface); turning them into rates is the collector's job,
because a rate needs two samples and the hypervisor keeps no history.

Every method is blocking: the agent calls them from a worker thread, never from its
asyncio loop.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vmgrid.agents.errors import NotFound, Unavailable, VmgridError
from vmgrid.agents.model import MigrationJob, VmState
from vmgrid.agents.node.migration import MigrationProgress, MigrationRequest


class HypervisorError(VmgridError):
    """A hypervisor operation failed; the message is one line meant for an operator."""


class HypervisorUnavailable(HypervisorError, Unavailable):
    """The hypervisor cannot be reached right now; the agent keeps retrying."""


class DomainNotFound(HypervisorError, NotFound):
    """No domain matches the given name or UUID on this host."""


class SnapshotNotFound(HypervisorError, NotFound):
    """The VM has no snapshot of that name."""


class DomainEventKind(enum.Enum):
    """What happened to a domain, as pushed by the hypervisor's event stream."""

    DEFINED = "defined"
    UNDEFINED = "undefined"
    STARTED = "started"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    MIGRATED_IN = "migrated_in"
    MIGRATED_OUT = "migrated_out"


@dataclass(frozen=True)
class HostInfo:
    """Identity and static capacity of the host."""

    hostname: str
    uri: str
    hypervisor_type: str
    cpu_count: int
    cpu_mhz: int
    memory_mib: int


@dataclass(frozen=True)
class HostCounters:
    """Cumulative host CPU counters and instantaneous memory, read at one instant."""

    cpu_busy_ns: int
    cpu_total_ns: int
    memory_total_mib: int
    memory_free_mib: int | None


@dataclass(frozen=True)
class InterfaceCounters:
    """Cumulative byte counters of one virtual NIC."""

    name: str
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class DomainSample:
    """One domain's state and cumulative counters at one instant.

    ``cpu_time_ns`` is None when the hypervisor does not account CPU time (the libvirt
    test driver), in which case usage must come from a simulated load source.
    """

    uuid: str
    name: str
    state: VmState
    vcpus: int
    memory_mib: int
    cpu_time_ns: int | None
    interfaces: tuple[InterfaceCounters, ...]
    macs: tuple[str, ...] = ()
    """MAC addresses of the domain's NICs (lower case), for the traffic meter."""
    rss_bytes: int = 0
    """The QEMU process's resident set (libvirt's ``balloon.rss``; 0: unknown)."""
    dirty_bytes_per_second: int = 0
    """The guest's dirty rate and dirty set from the latest dirty-rate calculations
    (``dirty_rate.DirtyRates``; 0: not measured)."""
    dirty_set_bytes: int = 0
    memory_arriving: bool = False
    """QEMU is still filling the guest's RAM: an incoming migration (libvirt's state paused
    for migration, which the source also shows during its final copy, or running in
    post-copy) or a start. What its process holds then is not what the guest holds."""


@dataclass(frozen=True)
class HostSample:
    """Everything read in one collection pass; ``monotonic_ns`` dates it for rates."""

    monotonic_ns: int
    host: HostCounters
    domains: tuple[DomainSample, ...]


@dataclass(frozen=True)
class DomainEvent:
    """A lifecycle change pushed by the hypervisor as it happens."""

    uuid: str
    name: str
    kind: DomainEventKind
    detail: int


DomainEventCallback = Callable[[DomainEvent], None]
"""Called from the hypervisor's event thread; it must only hand the event over."""

ConnectionCallback = Callable[[bool, str], None]
"""Called with (connected, reason) when the link to the hypervisor goes up or down."""


class Hypervisor(Protocol):
    """Read and act on one host's hypervisor. VMs are named by UUID or by name."""

    @property
    def simulated(self) -> bool:
        """True when figures do not come from real guests (the libvirt test driver)."""
        ...

    def connect(self) -> None:
        """Open (or reopen) the connection; raises HypervisorUnavailable with the reason."""
        ...

    def close(self) -> None:
        """Release the connection and the event subscription."""
        ...

    @property
    def connected(self) -> bool: ...

    def host_info(self) -> HostInfo: ...

    def sample(self) -> HostSample:
        """Read host counters and every domain's counters in one bulk pass."""
        ...

    def subscribe(self, on_event: DomainEventCallback, on_connection: ConnectionCallback) -> None:
        """Push lifecycle events and connection changes as they happen (from another thread)."""
        ...

    def domain_state(self, vm: str) -> VmState: ...

    def define(self, domain_xml: str) -> str:
        """Define (or redefine) a persistent domain; returns its UUID."""
        ...

    def start(self, vm: str) -> None: ...

    def shutdown(self, vm: str) -> None: ...

    def destroy(self, vm: str) -> None: ...

    def undefine(self, vm: str) -> None: ...

    def suspend(self, vm: str) -> None: ...

    def resume(self, vm: str) -> None: ...

    def migrate(self, vm: str, request: MigrationRequest) -> str:
        """Live-migrate until done; returns a note for the operator (e.g. why UNSAFE was set)."""
        ...

    def migration_progress(self, vm: str) -> MigrationProgress | None:
        """Progress of the VM's running job; None when none runs. Safe during ``migrate``."""
        ...

    def abort_migration(self, vm: str) -> bool:
        """Abort the VM's running job; False when none was running."""
        ...

    def is_running_at(self, uri: str, vm: str) -> bool:
        """Whether the VM (by UUID) is active on another hypervisor, e.g. a destination."""
        ...

    def completed_migration(self, uri: str, vm: str) -> MigrationJob | None:
        """The VM's completed migration job as the hypervisor at ``uri`` (its destination)
        measured it; None when it kept none or runs no real migrations."""
        ...

    def create_snapshot(self, vm: str, name: str, description: str) -> bool:
        """Take a snapshot; False when one of that name exists already."""
        ...

    def list_snapshots(self, vm: str) -> tuple[str, ...]: ...

    def revert_snapshot(self, vm: str, name: str) -> None:
        """Raises SnapshotNotFound naming the snapshots that exist."""
        ...

    def delete_snapshot(self, vm: str, name: str) -> bool:
        """False when no snapshot of that name exists."""
        ...

    def save(self, vm: str, path: str) -> None:
        """Write the VM's memory to ``path`` on this host and stop it."""
        ...

    def saved_vm(self, path: str) -> str:
        """UUID of the VM held by a save image."""
        ...

    def restore(self, path: str) -> str:
        """Start the VM held by a save image; returns its UUID."""
        ...
