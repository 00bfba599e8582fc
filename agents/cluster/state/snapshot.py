"""The immutable view of a whole cluster that one decision cycle works on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.history import NodeHistory, VmSample, cpu_matrix
from vmgrid.agents.cluster.state.migration_estimate import REAL_MIGRATION_FIXED_S
from vmgrid.agents.cluster.state.nodes import NodeView
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import HostUsage, VmUsage


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Immutable view of the whole cluster for one decision cycle."""

    cluster_id: str
    taken_at_unix_ns: int
    nodes: tuple[NodeView, ...]
    # node_id -> ((sent_at_unix_ns, HostUsage), ...), oldest first
    node_history: Mapping[str, Sequence[tuple[int, HostUsage]]]
    # vm uuid -> private copy of its node's history; read through vm_samples()
    _vm_histories: Mapping[str, NodeHistory]
    rules: tuple[Rule, ...] = ()
    """Every placement rule of the cluster at the time of the snapshot."""
    migration_fixed_s: float = REAL_MIGRATION_FIXED_S
    """The fixed cost of a real live migration learned by then (``MigrationFixedCost``)."""

    def vm_samples(self, vm_uuid: str) -> tuple[VmSample, ...]:
        """Past samples of a VM, oldest first; NotFound names an unknown uuid."""
        history = self._vm_histories.get(vm_uuid)
        if history is None:
            raise NotFound(f"VM {vm_uuid!r} has no history in cluster {self.cluster_id!r}")
        return history.samples(vm_uuid)

    def vm_cpu_matrix(
        self, vm_uuids: Sequence[str], cap: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """CPU histories of many VMs as one matrix, newest first, capped (history.cpu_matrix)."""
        return cpu_matrix([self._vm_histories.get(u) for u in vm_uuids], vm_uuids, cap)

    def node(self, node_id: str) -> NodeView:
        """The node with this id; NotFound names it otherwise."""
        for view in self.nodes:
            if view.node_id == node_id:
                return view
        raise NotFound(f"node {node_id!r} is not known to cluster {self.cluster_id!r}")

    def vms(self) -> Iterator[tuple[str, VmUsage]]:
        """(node_id, VM) for every VM in the cluster."""
        for view in self.nodes:
            for vm in view.vms:
                yield view.node_id, vm
