"""Domain values of the cluster <-> coordinator link, free of generated protobuf code.

They mirror what a cluster manager reports up (``grid.proto``) in the wire's units: bytes,
bits per second, millicores. ``vmgrid.coordinator.planning`` converts them to the planner's
units (MiB, Mbit/s). All values are frozen: a summary is a snapshot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capacity:
    """An amount of the three resources, in wire units."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    network_bps: int = 0


class HealthState(enum.Enum):
    """Overall health a cluster manager reports (wire ClusterHealthState without prefix)."""

    UNSPECIFIED = "unspecified"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    OVERLOADED = "overloaded"


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """Health detail: node counts and a human message."""

    state: HealthState = HealthState.HEALTHY
    nodes_total: int = 0
    nodes_lost: int = 0
    nodes_overloaded: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class VmDemand:
    """A VM the coordinator may move to another cluster, with its current demand."""

    vm_uuid: str
    name: str = ""
    node_id: str = ""
    cpu_millicores: int = 0
    memory_bytes: int = 0
    network_bps: int = 0


@dataclass(frozen=True, slots=True)
class InterClusterTraffic:
    """Traffic between a VM of the reporting cluster and a VM of another cluster."""

    vm_uuid: str
    peer_vm_uuid: str
    peer_cluster_id: str
    bytes_per_second: int


@dataclass(frozen=True, slots=True)
class ExternalFlow:
    """Measured traffic between a VM of the reporting cluster and an address outside it (both
    directions added); the coordinator resolves the peer against every cluster's addresses."""

    vm_uuid: str
    peer_mac: str
    peer_ip: str
    bytes_per_second: int


@dataclass(frozen=True, slots=True)
class VmAddress:
    """A NIC of a VM of the reporting cluster, as its traffic meters see it."""

    vm_uuid: str
    mac: str
    ip: str = ""


@dataclass(frozen=True, slots=True)
class VmPairTraffic:
    """Measured traffic between two VMs of one cluster (``vm_a < vm_b``), both directions."""

    vm_a: str
    vm_b: str
    bytes_per_second: int


@dataclass(frozen=True, slots=True)
class ClusterHello:
    """First message of a link: who the cluster is and how to reach it."""

    cluster_id: str
    capacity: Capacity
    node_count: int = 0
    endpoint: str = ""
    manager_version: str = ""
    migration_uri: str = ""


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """A periodic summary of one cluster; ``sequence`` grows with every summary sent."""

    sequence: int
    sent_at_unix_ns: int
    capacity: Capacity
    usage: Capacity
    movable_vms: tuple[VmDemand, ...] = ()
    inter_cluster_traffic: tuple[InterClusterTraffic, ...] = ()
    health: ClusterHealth = ClusterHealth()
    external_flows: tuple[ExternalFlow, ...] = ()
    """Measured flows whose peer is no VM of this cluster, heaviest first."""
    vm_addresses: tuple[VmAddress, ...] = ()
    """The NICs of the VMs that have external flows (what other clusters' flows resolve to)."""
    heavy_pairs: tuple[VmPairTraffic, ...] = ()
    """The heaviest measured pairs within the cluster (shown by the dashboard)."""


@dataclass(frozen=True, slots=True)
class HelloAck:
    """The coordinator's answer to a hello: the pace it expects and whether it knows the name."""

    grid_id: str
    summary_period_ms: int
    heartbeat_timeout_ms: int
    known_cluster: bool
    term: int = 0
    """Leadership term of a replicated coordinator (0: a single coordinator)."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """A rejected cluster message: ``field`` is the dotted path of the bad value."""

    message: str
    field: str = ""


class ClusterState(enum.Enum):
    """Registry state of a cluster: connected while it reports, lost after the timeout."""

    CONNECTED = "connected"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """What the registry keeps about one cluster (survives a coordinator restart)."""

    hello: ClusterHello
    state: ClusterState
    last_seen_unix_ns: int
    summary: ClusterSummary | None = None

    @property
    def cluster_id(self) -> str:
        return self.hello.cluster_id


class GridEventKind(enum.Enum):
    """Events the coordinator publishes (names match wire EventKind without its prefix)."""

    CLUSTER_JOINED = "cluster_joined"
    CLUSTER_LOST = "cluster_lost"
    CLUSTER_RETURNED = "cluster_returned"
    PLAN_CHANGED = "plan_changed"
    MOVE_CHANGED = "move_changed"
    """A cross-cluster move advanced (wire: COMMAND_RESULT with the VM and the plan)."""
    JOB_CHANGED = "job_changed"
    """A grid job changed state (the message starts with its id)."""
    CLUSTER_FORGOTTEN = "cluster_forgotten"
    """An operator removed a cluster from the registry (vmgridctl clusters forget)."""


@dataclass(frozen=True, slots=True)
class GridEvent:
    """One thing that happened in the grid."""

    sequence: int
    at_unix_ns: int
    kind: GridEventKind
    cluster_id: str = ""
    message: str = ""
    plan_id: str = ""
    vm_uuid: str = ""
    simulated: bool = False


# ---- grid commands (coordinator -> cluster) and their results ---------------------------------


@dataclass(frozen=True, slots=True)
class ReserveCapacity:
    """Hold room for ``vm`` on a node the destination cluster's solver picks, for ``ttl_ms``."""

    command_id: str
    reservation_id: str
    vm: VmDemand
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class MigrateToUri:
    """Send a VM of this cluster to a node of another (the reservation's node URIs)."""

    command_id: str
    vm_uuid: str
    reservation_id: str
    destination_uri: str
    migration_uri: str = ""
    bandwidth_cap_bps: int = 0
    live: bool = True
    copy_storage: bool = False
    simulated_destination: bool = False
    destination_node_id: str = ""
    memory_bytes: int = 0


@dataclass(frozen=True, slots=True)
class CommitReservation:
    """The VM arrived (or, simulated, must now start): the reservation becomes the VM."""

    command_id: str
    reservation_id: str


@dataclass(frozen=True, slots=True)
class ReleaseReservation:
    """Drop a reservation; the move was abandoned."""

    command_id: str
    reservation_id: str


@dataclass(frozen=True, slots=True)
class SubmitJobToCluster:
    """Run a job (the whole job document, JSON) in this cluster under the grid's job id."""

    command_id: str
    job_id: str
    document_json: str


GridCommand = (
    ReserveCapacity | MigrateToUri | CommitReservation | ReleaseReservation | SubmitJobToCluster
)


class GridCommandState(enum.Enum):
    """Progress of a grid command (wire CommandState without prefix)."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class GridCommandResult:
    """Progress or outcome of a grid command; the last one of a command is final."""

    command_id: str
    state: GridCommandState
    progress_fraction: float = 0.0
    message: str = ""
    simulated: bool = False
    reservation_id: str = ""
    node_id: str = ""
    destination_uri: str = ""
    migration_uri: str = ""

    @property
    def is_final(self) -> bool:
        return self.state in (GridCommandState.SUCCEEDED, GridCommandState.FAILED)
