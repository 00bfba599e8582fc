"""Commands the cluster manager sends a node agent, and the results the agent sends back.

Part of the node link's domain values (model.py re-exports every name here). Every command
carries a command_id, its idempotency key: an agent never executes the same id twice, and a
manager caches final results by id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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
    max_downtime_ms: int = 0
    """QEMU's downtime limit for this migration; 0 keeps QEMU's default (300 ms)."""


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
class MigrationJob:
    """A completed live migration as libvirt measured it (``virDomainGetJobStats`` with
    ``VIR_DOMAIN_JOB_STATS_COMPLETED``): the manager learns its fixed cost from it. The job's
    time leaves out libvirt's peer-to-peer begin, prepare and confirm steps."""

    elapsed_ms: int
    """``time_elapsed``: from the job's start to the guest running on the destination."""
    memory_processed_bytes: int = 0
    """``memory_processed``: memory sent, all rounds."""
    memory_normal_bytes: int = 0
    """``memory_normal_bytes``: the non-zero pages sent."""
    downtime_ms: int = 0
    """``downtime``: the guest's pause."""
    iterations: int = 0
    """``memory_iteration``: pre-copy rounds."""


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
    migration_job: MigrationJob | None = None
    """Sent with a live migration's SUCCEEDED result when libvirt kept its job statistics."""

    @property
    def is_final(self) -> bool:
        """True once the command succeeded or failed; no further result will follow."""
        return self.state in FINAL_COMMAND_STATES
