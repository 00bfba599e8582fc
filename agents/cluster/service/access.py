"""Who may call each RPC of the cluster manager's server (checked by one interceptor).

Node agents use the node link only; operators every ClusterService RPC, read-only operators
the list/get/watch/check ones; the coordinator every ClusterService RPC too, because its
dashboard relays the actions of its own authenticated users, except forgetting a node, which
only an operator's certificate may do. Cluster manager certificates only follow the leader's
view of the nodes (a standby replica of the cluster, ``warm_view.py``).
"""

from __future__ import annotations

from vmgrid.agents.common.authz import AccessTable, service_table, standard_services_table
from vmgrid.agents.identity import Role
from vmgrid.v1 import cluster_pb2, node_pb2, replica_pb2

NODE = frozenset({Role.NODE})
READ = frozenset({Role.OPERATOR, Role.READONLY, Role.COORDINATOR})
WRITE = frozenset({Role.OPERATOR, Role.COORDINATOR})
OPERATOR = frozenset({Role.OPERATOR})
"""Irreversible removals of records: an operator's own certificate, never a relay."""

_CLUSTER_SERVICE = {
    "ListNodes": READ,
    "GetNode": READ,
    "ListVms": READ,
    "WatchEvents": READ,
    "PlanReconfiguration": WRITE,
    "ApplyPlan": WRITE,
    "ListPlans": READ,
    "CancelPlan": WRITE,
    "ApprovePlan": WRITE,
    "RejectPlan": WRITE,
    "MigrateVm": WRITE,
    "SuspendVm": WRITE,
    "ResumeVm": WRITE,
    "CreateSnapshot": WRITE,
    "ListSnapshots": READ,
    "RevertSnapshot": WRITE,
    "DeleteSnapshot": WRITE,
    "DrainNode": WRITE,
    "UndrainNode": WRITE,
    "SubmitJob": WRITE,
    "GetJob": READ,
    "ListCheckpoints": READ,
    "TakeCheckpoint": WRITE,
    "RevertCheckpoint": WRITE,
    "DeleteCheckpoint": WRITE,
    "GetIngestStats": READ,
    "ListRules": READ,
    "AddRule": WRITE,
    "DeleteRule": WRITE,
    "CheckRules": READ,
    "ForgetNode": OPERATOR,
    "GetPolicy": READ,
    "SetPolicy": WRITE,
    "ExplainVm": READ,
    "GetNPlusOne": READ,
    "GetHistory": READ,
}

CLUSTER_ACCESS: AccessTable = {
    **service_table(node_pb2.DESCRIPTOR.services_by_name["NodeLinkService"], {"Connect": NODE}),
    **service_table(cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"], _CLUSTER_SERVICE),
    **service_table(
        replica_pb2.DESCRIPTOR.services_by_name["ReplicaService"],
        {"FollowView": frozenset({Role.CLUSTER})},
    ),
    **standard_services_table(),
}
