"""What the dashboard's cluster backend (cluster_backend.py) and its per-area parts share: the
running manager they read, and operator-API calls whose errors become HTTP statuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance
from vmgrid.agents.cluster.operator.operations import OperatorApi
from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound, VmgridError
from vmgrid.coordinator.web.errors import bad_request, conflict, not_found

T = TypeVar("T")

Json = dict[str, Any]


class DashboardSource(ClusterParts, Protocol):
    """What the dashboard needs of a running cluster manager (``ClusterRuntime`` has it)."""

    @property
    def operator(self) -> OperatorApi: ...
    @property
    def fault_tolerance(self) -> FaultTolerance | None: ...


class ClusterCalls:
    """The runtime read and the call wrapper (ClusterBackend sets both attributes)."""

    runtime: DashboardSource
    state: ClusterState

    @property
    def cluster_id(self) -> str:
        return self.state.cluster_id

    async def _call(self, work: Callable[[], Awaitable[T]], field: str = "id") -> T:
        try:
            return await work()
        except NotFound as exc:
            raise not_found(str(exc), field) from None
        except InvalidArgument as exc:
            raise bad_request(str(exc), field) from None
        except FailedPrecondition as exc:
            raise conflict(str(exc), field) from None
        except VmgridError as exc:
            raise conflict(str(exc), field) from None

    def _vm_names(self) -> dict[str, str]:
        return {vm.uuid: vm.name or vm.uuid for view in self.state.views() for vm in view.vms}
