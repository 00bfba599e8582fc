"""Who may call each RPC of the coordinator's server (checked by one interceptor).

Cluster managers use the grid link only; operators every CoordinatorService RPC, read-only
operators the list/get/watch ones. Node and coordinator certificates have no business here.
"""

from __future__ import annotations

from vmgrid.agents.common.authz import AccessTable, service_table, standard_services_table
from vmgrid.agents.identity import Role
from vmgrid.v1 import coordinator_pb2, grid_pb2

CLUSTER = frozenset({Role.CLUSTER})
READ = frozenset({Role.OPERATOR, Role.READONLY})
WRITE = frozenset({Role.OPERATOR})

_COORDINATOR_SERVICE = {
    "ListClusters": READ,
    "GetTopology": READ,
    "PlanGrid": WRITE,
    "ApplyGridPlan": WRITE,
    "MigrateVmToCluster": WRITE,
    "GetGridPlan": READ,
    "CancelGridPlan": WRITE,
    "SubmitJob": WRITE,
    "GetJob": READ,
    "ListJobs": READ,
    "WatchEvents": READ,
    "ForgetCluster": WRITE,
}

COORDINATOR_ACCESS: AccessTable = {
    **service_table(grid_pb2.DESCRIPTOR.services_by_name["GridLinkService"], {"Connect": CLUSTER}),
    **service_table(
        coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"], _COORDINATOR_SERVICE
    ),
    **standard_services_table(),
}
