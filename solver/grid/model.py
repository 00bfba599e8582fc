"""Domain values of the inter-cluster planner: cluster summaries in, moves and a plan out.

Units are explicit in every name: CPU in millicores, memory in MiB, network in Mbit/s, time in
seconds. All values are frozen so a plan is computed from an immutable snapshot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from vmgrid.solver.grid.errors import GridInputError

RESOURCE_NAMES: tuple[str, str, str] = ("cpu", "memory", "network")


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of the three resources the grid balances."""

    cpu_millicores: int = 0
    memory_mib: int = 0
    network_mbps: int = 0

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.cpu_millicores, self.memory_mib, self.network_mbps)


class Health(enum.Enum):
    """What a cluster manager last reported; only healthy clusters receive VMs."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class GridVm:
    """A VM its cluster manager offers for inter-cluster moves.

    ``demand.memory_mib`` is also the memory copied by a live migration; ``dirty_rate_mbps`` is
    how fast the guest re-dirties memory during pre-copy, measured by the node agent.
    """

    id: str
    demand: Resources
    dirty_rate_mbps: int = 0


@dataclass(frozen=True, slots=True)
class VmGroup:
    """VMs that talk to each other; one group id is shared by every cluster holding members.

    ``vm_ids`` are the members in the reporting cluster (they must be among its movable VMs);
    ``traffic_mbps`` is the traffic the whole group exchanges between its members, grid-wide.
    """

    id: str
    vm_ids: tuple[str, ...]
    traffic_mbps: int


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """What one cluster manager reports up: totals, the VMs it may give away, its groups."""

    id: str
    capacity: Resources
    usage: Resources
    vms: tuple[GridVm, ...] = ()
    groups: tuple[VmGroup, ...] = ()
    health: Health = Health.HEALTHY
    allow_consolidation: bool = False

    def __post_init__(self) -> None:
        for name, value in zip(RESOURCE_NAMES, self.capacity.as_tuple(), strict=True):
            if value <= 0:
                raise GridInputError(
                    f"cluster {self.id!r}: {name} capacity {value} must be a positive integer"
                )
        for name, value in zip(RESOURCE_NAMES, self.usage.as_tuple(), strict=True):
            if value < 0:
                raise GridInputError(f"cluster {self.id!r}: {name} usage {value} must be >= 0")


class MoveKind(enum.Enum):
    """Why the planner moves a VM; also the order in which phases run."""

    RELIEF = "relief"
    AFFINITY = "affinity"
    CONSOLIDATION = "consolidation"


@dataclass(frozen=True, slots=True)
class GridMove:
    """One inter-cluster live migration, routed and timed.

    ``rate_mbps`` is the bandwidth the move reserves on every link of ``path`` during
    ``[start_s, end_s)``; ``bottleneck_mbps`` is the path's free bandwidth before any move.
    """

    vm: str
    src: str
    dst: str
    path: tuple[str, ...]
    bottleneck_mbps: int
    rate_mbps: int
    memory_mib: int
    est_seconds: float
    start_s: float
    end_s: float
    kind: MoveKind
    reason: str
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlanStats:
    """Counters that explain a plan: what was found, what was fixed, what could not be."""

    clusters: int = 0
    overloaded: int = 0
    relieved: int = 0
    unrelieved: int = 0
    groups_gathered: int = 0
    consolidated: int = 0
    units_considered: int = 0
    units_unplaced: int = 0
    makespan_s: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GridPlan:
    """The planner's answer: moves in scheduling order and the counters that explain them."""

    moves: tuple[GridMove, ...] = ()
    stats: PlanStats = field(default_factory=PlanStats)
