"""The cluster as the solver sees it: a ClusterSnapshot turned into a `vmgrid.solver.Model`.

Units cross here: agents report bytes, bits per second and millicores; the solver's model uses
millicores (``cpu``), MiB (``mem``) and Mbit/s (``net``). A VM's CPU demand is the highest use
seen over the recent window (its history), not the last sample, so that one quiet period does
not invite a VM onto a node it will overload a minute later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vmgrid.agents.cluster.state.gauges import memory_fraction as memory_fraction
from vmgrid.agents.cluster.state.history import VmSample
from vmgrid.agents.cluster.state.migration_estimate import MigrationLink, migrate_attributes
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus, NodeView
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import HOLDS_MEMORY_STATES, VmUsage
from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, Node, NodeState, VMState

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """How observed usage becomes solver demand."""

    cpu_headroom: float = 1.0
    """Fraction of each node's CPU the solver may fill (0.8 keeps 20 % spare)."""

    memory_headroom: float = 1.0
    """Fraction of each node's memory the solver may fill."""

    demand_window: int = 10
    """Number of recent samples whose maximum is a VM's CPU demand."""

    migration_link: MigrationLink | None = None
    """What real migrations run with: a real node's VM then has its pre-copy estimate as its
    ``migrate`` duration (`migration_estimate`). None, or a simulated node: the solver's 1 s."""


def node_capacity(view: NodeView, options: ViewOptions) -> dict[str, int]:
    cap = view.capacity
    return {
        CPU: int(cap.cpu_millicores * options.cpu_headroom),
        MEMORY: int(cap.memory_bytes * options.memory_headroom) // MIB,
        NET: cap.nic_bandwidth_bps // 1_000_000,
    }


def vm_demand(vm: VmUsage, history: Iterable[VmSample], window: int) -> dict[str, int]:
    recent = [h.cpu_used_millicores for h in history][-window:]
    cpu = max([vm.cpu_used_millicores, *recent])
    net_mbps = (vm.net_rx_bytes_per_second + vm.net_tx_bytes_per_second) * 8 // 1_000_000
    return {CPU: cpu, MEMORY: max(1, vm.memory_allocated_bytes // MIB), NET: net_mbps}


def to_model(snapshot: ClusterSnapshot, options: ViewOptions | None = None) -> Model:
    """Connected nodes and their running or paused VMs. Lost nodes are left out: their VMs
    are the failure handler's business, not the optimiser's. Stopped VMs place nothing."""
    opts = options or ViewOptions()
    nodes: list[Node] = []
    vms: list[VM] = []
    # A VM never needs more CPU than a whole node: a reading above that is emulator start-up
    # or sampling jitter, and would make a VM that fits a node look as if it fits nowhere.
    largest_cpu = max((v.capacity.cpu_millicores for v in snapshot.nodes), default=0)
    for view in snapshot.nodes:
        if view.status is not NodeStatus.CONNECTED:
            continue
        attributes = {"draining": view.draining, "simulated": view.identity.simulated}
        nodes.append(Node(view.node_id, node_capacity(view, opts), NodeState.ONLINE, attributes))
        for vm in view.vms:
            if vm.state not in HOLDS_MEMORY_STATES:
                continue
            # A paused VM keeps its memory on the node, so the model counts it as placed
            # and using memory (its CPU use is what it reports: next to nothing).
            state = VMState.RUNNING
            history = _samples(snapshot, vm.uuid)
            demand = vm_demand(vm, history, opts.demand_window)
            if largest_cpu > 0:
                demand[CPU] = min(demand[CPU], largest_cpu)
            timing = migrate_attributes(
                vm, view.identity.simulated, opts.migration_link, snapshot.migration_fixed_s
            )
            vms.append(VM(vm.uuid, demand, state, view.node_id, {"name": vm.name, **timing}))
    return Model.of(nodes, vms)


def _samples(snapshot: ClusterSnapshot, vm_uuid: str) -> tuple[VmSample, ...]:
    try:
        return snapshot.vm_samples(vm_uuid)
    except NotFound:
        return ()


def utilisation(view: NodeView) -> float:
    """Highest of CPU and memory use on a node, as a fraction of its capacity."""
    if view.usage is None:
        return 0.0
    cpu = view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores)
    return max(cpu, memory_fraction(view))
