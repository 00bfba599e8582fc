"""The plan executor for tests that run a bare ClusterServer (the runtime builds the same)."""

from __future__ import annotations

from vmgrid.agents.cluster.act.driver import ManagerDriver
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.images import VmImages
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.link.manager import ClusterManager


def applier(manager: ClusterManager, images: VmImages | None = None) -> PlanExecutor:
    """A plan executor over `manager` with an in-memory journal; its driver reads `images`
    (the table fault tolerance is given too: `FaultTolerance(..., images)`)."""
    return PlanExecutor(ManagerDriver(manager, images=images), Journal(":memory:"))
