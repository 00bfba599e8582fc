"""Where an arriving VM goes: the cluster's own solver places it, next to the held reservations.

The VM enters the cluster's model as a READY VM with a ``running`` constraint; reservations
still held count as running VMs on their nodes, and draining nodes are banned. The objective
is the fewest migrations under the cluster's placement rules, and a placement that would move other VMs is refused: the room must
be there now, since the VM arrives in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmgrid.agents import grid_model as gm
from vmgrid.agents.cluster.grid.journal import Reservation
from vmgrid.agents.cluster.rules.check import solvable
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.agents.errors import FailedPrecondition
from vmgrid.solver import (
    CPU,
    MEMORY,
    NET,
    VM,
    CpsatOptions,
    Model,
    Problem,
    SolveOptions,
    VMState,
    solve,
)
from vmgrid.solver.constraints import Ban, Constraint, Running

MIB = 2**20
_SOLVE = SolveOptions(
    cpsat=CpsatOptions(time_limit_s=3.0, num_workers=2), time_limit_s=5.0, heuristic="greedy"
)


def demand(vm: gm.VmDemand) -> dict[str, int]:
    """Wire units (bytes, bit/s) to the solver's (MiB, Mbit/s); CPU stays in millicores."""
    return {
        CPU: vm.cpu_millicores,
        MEMORY: max(1, vm.memory_bytes // MIB),
        NET: vm.network_bps // 1_000_000,
    }


def arriving_vm(vm: gm.VmDemand) -> VM:
    """An arriving VM as the cluster's model counts it before it starts: by its own uuid, so
    the cluster's rules that name it apply."""
    return VM(vm.vm_uuid, demand(vm), VMState.READY, None, {"name": vm.name})


def _name(reservation_id: str) -> str:
    return f"reservation:{reservation_id}"


def place(
    snapshot: ClusterSnapshot,
    vm: gm.VmDemand,
    reservation_id: str,
    held: Sequence[Reservation],
    avoid: Sequence[str] = (),
) -> str:
    """The node that will receive ``vm``, never one of ``avoid``; FailedPrecondition says
    why none can."""
    base = to_model(snapshot)
    if not base.nodes:
        raise FailedPrecondition(f"cluster {snapshot.cluster_id}: no connected node to reserve on")
    # An overloaded node can take no one, and the solver would move VMs off it before
    # placing anything: it is left out, with its VMs (the applier's re-check of the start
    # still sees them).
    full = {n for n in base.nodes if base.overloaded(n)}
    vms = [v for v in base.vms.values() if v.host not in full]
    vms += [
        VM(_name(r.reservation_id), demand(r.vm), host=r.node_id)
        for r in held
        if r.node_id in base.nodes and r.node_id not in full
    ]
    arriving = vm.vm_uuid
    vms.append(arriving_vm(vm))
    model = Model.of([n for name, n in base.nodes.items() if name not in full], vms)
    if not model.nodes:
        raise FailedPrecondition(
            f"cluster {snapshot.cluster_id}: every connected node is over its capacity "
            f"({', '.join(sorted(full))})"
        )
    banned = tuple(
        n for n, node in model.nodes.items() if node.attributes.get("draining") or n in avoid
    )
    if set(model.nodes) <= set(banned):
        raise FailedPrecondition(
            f"cluster {snapshot.cluster_id}: no node to reserve on but {', '.join(sorted(banned))}"
            " (draining, or ruled out for this VM)"
        )
    constraints: list[Constraint] = [Running((arriving,))]
    if banned:
        constraints.append(Ban((arriving,), banned))
    constraints += solvable(snapshot.rules, model)
    result = solve(Problem(model, constraints, "migrations"), _SOLVE)
    if result.dst is None or result.dst.vms[arriving].host is None:
        free = ", ".join(
            f"{n} {model.slack(n, MEMORY)} MiB/{model.slack(n, CPU)} mc" for n in model.nodes
        )
        raise FailedPrecondition(
            f"cluster {snapshot.cluster_id} has no room for VM {vm.name or vm.vm_uuid} "
            f"({demand(vm)[MEMORY]} MiB, {vm.cpu_millicores} mc); free: {free}"
        )
    moved = [
        name
        for name, placed in result.dst.vms.items()
        if name != arriving and name in model.vms and placed.host != model.vms[name].host
    ]
    node = result.dst.vms[arriving].host
    if moved:
        raise FailedPrecondition(
            f"cluster {snapshot.cluster_id}: VM {vm.name or vm.vm_uuid} fits on {node} only "
            f"after moving {len(moved)} other VM(s); retry once the cluster has rebalanced"
        )
    assert node is not None
    return node
