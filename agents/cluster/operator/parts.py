"""The parts of a running cluster manager that the operator API works through."""

from __future__ import annotations

from typing import Protocol

from vmgrid.agents.cluster.act.driver import ManagerDriver
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.link.manager import ClusterManager


class ClusterParts(Protocol):
    """``ClusterRuntime`` has these; the operator API needs nothing else of it."""

    @property
    def manager(self) -> ClusterManager: ...
    @property
    def journal(self) -> Journal: ...
    @property
    def executor(self) -> PlanExecutor: ...
    @property
    def driver(self) -> ManagerDriver: ...
    @property
    def loop(self) -> ControlLoop: ...
