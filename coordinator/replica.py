"""Replicated coordinators: one leader elected through etcd, its state written through to etcd.

Several ``vmgrid-coordinator`` processes of one grid, given an ``[etcd]`` table, campaign in the
election under ``PREFIX/grids/GRID_ID/leader/`` (the cluster managers' election,
``agents/cluster/service/replica.py``: the term is the create revision of the leader's key). A
standby serves gRPC but answers every GridLinkService and CoordinatorService call with
UNAVAILABLE naming the leader (``vmgrid-leader`` trailing metadata), which the clusters'
uplinks and vmgridctl follow.

SQLite stays each replica's working copy. The leader mirrors its three tables (`StateMirror`: the cluster
registry, the grid moves, the jobs) under ``PREFIX/grids/GRID_ID/state/TABLE/KEY``, one JSON
row per key, in transactions fenced by its own election key, so a deposed leader cannot
overwrite its successor's records. The mirror is flushed before every grid command is sent
(a move's phase is in etcd before its step can reach a cluster) and before an operator call
that changed something is answered. A new leader reads the tables back (etcd wins over its
own stale rows), then resumes the unfinished moves: their command ids derive from the move id,
so a step the old leader had already sent is answered from the cluster's own journal of grid
commands, never executed twice.
"""

from __future__ import annotations

import logging

from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions

log = logging.getLogger(__name__)


def coordinator_replica(options: ReplicaOptions, grid_id: str) -> Replica:
    """The election of the coordinators of `grid_id` (the cluster managers' own code)."""
    return Replica(options, grid_id, scope="grids", role="coordinator", subject="grid")
