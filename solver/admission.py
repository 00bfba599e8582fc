"""HA admission control: admit new VMs only if the cluster can still lose F nodes.

A cluster that tolerates F node failures must be able to restart, on the nodes left, every VM
the failed nodes ran. We check it conservatively, in two ways, on the cluster with the new VMs:

1. per resource, the whole running demand must fit in the capacity left after removing the F
   nodes with the most of that resource (covers any F failures, in aggregate);
2. the F largest nodes are removed and their VMs, plus new VMs not yet placed, are restarted one
   by one on the survivors' slack in restart order (HA priority first, then size): each must
   fit on one node (covers fragmentation for the worst case).

Pure: reads a `Model`, returns an `AdmissionDecision` (a refusal is a value with its reason).
A VM's HA priority is its ``ha_priority`` attribute (an integer, higher restarts first, 0 when
absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, ModelError, VMState

HA_PRIORITY = "ha_priority"
_UNITS = {CPU: "millicores", MEMORY: "MiB", NET: "Mbit/s"}


@dataclass(frozen=True)
class AdmissionDecision:
    """`lost_nodes`: the F largest nodes assumed failed; `restart_order`: the VMs to restart
    on the survivors, in order; `stranded`: those of them that found no room."""

    admitted: bool
    reason: str
    failures: int
    lost_nodes: tuple[str, ...] = ()
    restart_order: tuple[str, ...] = ()
    stranded: tuple[str, ...] = ()


def ha_priority(vm: VM) -> int:
    value = vm.attributes.get(HA_PRIORITY, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def restart_order(vms: Iterable[VM]) -> list[VM]:
    """Highest HA priority first; then the biggest (memory, then CPU) so packing stays easy."""
    return sorted(vms, key=lambda v: (-ha_priority(v), -v.need(MEMORY), -v.need(CPU), v.name))


def admit(model: Model, new_vms: Sequence[VM] = (), failures: int = 1) -> AdmissionDecision:
    """Can `new_vms` join `model` while keeping room to restart everything after `failures`
    node failures? New VMs may be ``READY`` (not placed yet) or running on a chosen host."""
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        raise ModelError(f"failures to tolerate: {failures!r}; accepted: an integer >= 0")
    clash = [v.name for v in new_vms if v.name in model.vms]
    if clash:
        raise ModelError(f"new VM {clash[0]!r} already exists in the cluster")
    world = model.with_vms(new_vms)
    unplaced = [v for v in new_vms if v.state is VMState.READY]
    online = [world.nodes[n] for n in world.online_nodes()]
    if failures == 0 and not unplaced:
        return AdmissionDecision(True, "no node failure to tolerate", 0)
    if len(online) <= failures:
        reason = f"tolerating {failures} node failure(s) needs more than {failures} online nodes"
        return AdmissionDecision(False, f"{reason}; the cluster has {len(online)}", failures)
    resources = [r for r in world.resources if any(n.cap(r) for n in online)]
    refusal = _aggregate_refusal(world, unplaced, resources, failures)
    if refusal:
        return AdmissionDecision(False, refusal, failures)
    return _restart_scenario(world, unplaced, resources, failures)


def _aggregate_refusal(world: Model, unplaced: list[VM], resources: list[str], f: int) -> str:
    online = world.online_nodes()
    for r in resources:
        caps = sorted((world.nodes[n].cap(r) for n in online), reverse=True)
        left = sum(caps[f:])
        demand = sum(world.load(n, r) for n in online) + sum(v.need(r) for v in unplaced)
        if demand > left:
            unit = _UNITS.get(r, "units")
            return (
                f"after losing the {f} node(s) with most {r}, {r} demand {demand} {unit}"
                f" exceeds the {left} {unit} left"
            )
    return ""


def _restart_scenario(
    world: Model, unplaced: list[VM], resources: list[str], f: int
) -> AdmissionDecision:
    online = world.online_nodes()
    totals = {r: max(1, sum(world.nodes[n].cap(r) for n in online)) for r in resources}

    def size(node: str) -> float:
        return sum(world.nodes[node].cap(r) / totals[r] for r in resources)

    lost = sorted(online, key=lambda n: (-size(n), n))[:f]
    survivors = [n for n in online if n not in lost]
    slack = {n: {r: world.slack(n, r) for r in resources} for n in survivors}
    displaced = [world.vms[v] for n in lost for v in world.running_on(n)] + unplaced
    order = restart_order(displaced)
    stranded: list[str] = []
    first_reason = ""
    for vm in order:
        fits = [n for n in survivors if all(slack[n][r] >= vm.need(r) for r in resources)]
        if not fits:
            stranded.append(vm.name)
            first_reason = first_reason or _no_room(vm, slack, resources)
            continue
        best = min(fits, key=lambda n: (sum(slack[n][r] / totals[r] for r in resources), n))
        for r in resources:
            slack[best][r] -= vm.need(r)
    names = tuple(v.name for v in order)
    if stranded:
        reason = f"after losing {', '.join(lost)}: {first_reason}"
        return AdmissionDecision(False, reason, f, tuple(lost), names, tuple(stranded))
    reason = (
        f"{len(order)} VM(s) restart on {len(survivors)} node(s) after losing {', '.join(lost)}"
    )
    return AdmissionDecision(True, reason, f, tuple(lost), names)


def _no_room(vm: VM, slack: dict[str, dict[str, int]], resources: list[str]) -> str:
    for r in resources:
        most = max((s[r] for s in slack.values()), default=0)
        if vm.need(r) > most:
            unit = _UNITS.get(r, "units")
            return (
                f"VM {vm.name} needs {vm.need(r)} {unit} of {r}; the most left on a node is {most}"
            )
    return f"VM {vm.name} fits no single remaining node on all resources at once"


__all__ = ["HA_PRIORITY", "AdmissionDecision", "admit", "ha_priority", "restart_order"]
