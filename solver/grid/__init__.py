"""Grid level of vmgrid: the WAN topology of clusters and the inter-cluster planner.

Pipeline: ``load_topology`` (GraphML, validated) -> ``update_link_usage`` (measured traffic) ->
``plan_grid`` on ``ClusterSummary`` snapshots -> ``GridPlan`` of routed, timed, scheduled
``GridMove`` values -> ``find_oversubscriptions`` re-checks any plan independently.
Pure code: networkx and numpy, no I/O beyond reading the GraphML file.
"""

from vmgrid.solver.grid.config import PlannerConfig
from vmgrid.solver.grid.errors import GridError, GridInputError, TopologyError
from vmgrid.solver.grid.loader import load_topology
from vmgrid.solver.grid.migration import dirty_allowance, migration_seconds
from vmgrid.solver.grid.model import (
    ClusterSummary,
    GridMove,
    GridPlan,
    GridVm,
    Health,
    MoveKind,
    PlanStats,
    Resources,
    VmGroup,
)
from vmgrid.solver.grid.planner import plan_grid
from vmgrid.solver.grid.schedule import Oversubscription, find_oversubscriptions
from vmgrid.solver.grid.topology import NodeKind, Topology, link_key, update_link_usage

__all__ = [
    "ClusterSummary",
    "GridError",
    "GridInputError",
    "GridMove",
    "GridPlan",
    "GridVm",
    "Health",
    "MoveKind",
    "NodeKind",
    "Oversubscription",
    "PlanStats",
    "PlannerConfig",
    "Resources",
    "Topology",
    "TopologyError",
    "VmGroup",
    "dirty_allowance",
    "find_oversubscriptions",
    "link_key",
    "load_topology",
    "migration_seconds",
    "plan_grid",
    "update_link_usage",
]
