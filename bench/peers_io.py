"""What a peer solver is given and what it gives back, in a neutral JSON form.

`peer_input` describes a reconfiguration problem with what placement solvers generally know:
nodes with capacities, those that must be emptied (``leaving``: maintenance), VMs with their
host (None for a VM to boot) and their new demand, anti-affinity groups (``spread``) and per-VM
node whitelists (``allowed``: what vmgrid derives from fence, ban, among...). An `among` becomes
a whitelist of the one group that hosts most of its running members, since the peers have no
"one group among several" rule. The peer answers with a destination per VM and the migrations
in steps (each step runs in parallel, after the previous one); `actions_from_steps` turns the
steps into the timed plan that vmgrid's validator replays: nodes to boot first, then the steps,
each migration lasting its VM's ``migrate`` duration, a VM to boot booted in the step that
places it, and the nodes to empty shut down at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from vmgrid.solver.btrplace.instance import Among, BtrInstance, Offline, Online, Spread
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.model import NodeState
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.problem import prepare

READY = "(ready)"
"""The pseudo host of a VM waiting to be booted, in the peers' input."""


def _pick(resources: Sequence[str], needle: str) -> str | None:
    return next((rc for rc in resources if needle in rc.lower()), None)


def peer_input(instance: BtrInstance, timeout_s: float) -> dict[str, Any]:
    """The neutral description of `instance` handed to a peer's driver."""
    src = instance.source
    resources = src.resources
    leaving = {c.node for c in instance.of_type(Offline)}
    booting = {c.node for c in instance.of_type(Online) if not src.nodes[c.node].online}
    nodes = [
        {"name": n, "capacity": dict(node.capacity), "leaving": n in leaving}
        for n, node in src.nodes.items()
        if node.online or n in booting
    ]
    prep = prepare(to_problem(instance))
    allowed: dict[str, set[str]] = {v: set(ns) for v, ns in prep.allowed.items()}
    for among in instance.of_type(Among):
        part = _home_part(instance, among)
        for vm in among.vms:
            allowed[vm] = allowed[vm] & part if vm in allowed else set(part)
    vms = [
        {
            "name": v,
            "host": vm.host if vm.host is not None else READY,
            "demand": dict(instance.target_demand(v)),
            "migrate_s": vm.duration_s("migrate"),
        }
        for v, vm in src.vms.items()
        if vm.host is not None or prep.vm_state[v] is not vm.state
    ]
    memory, cpu = _pick(resources, "mem"), _pick(resources, "cpu")
    return {
        "resources": {
            "memory": memory,
            "cpu": cpu,
            "other": [rc for rc in resources if rc not in (memory, cpu)],
        },
        "nodes": nodes,
        "vms": vms,
        "spread": [list(c.vms) for c in instance.of_type(Spread)],
        "allowed": {v: sorted(ns) for v, ns in allowed.items()},
        "timeout_s": timeout_s,
    }


def _home_part(instance: BtrInstance, among: Among) -> frozenset[str]:
    src = instance.source
    votes = Counter(
        i
        for v in among.vms
        if src.vms[v].running
        for i, part in enumerate(among.parts)
        if src.vms[v].host in part
    )
    best = votes.most_common(1)[0][0] if votes else 0
    return among.parts[best]


def actions_from_steps(
    instance: BtrInstance, steps: Sequence[Sequence[Sequence[str]]]
) -> list[Action]:
    """The timed plan of a peer's steps of ``[vm, source, target]`` migrations."""
    src = instance.source
    actions: list[Action] = []

    def add(
        kind: ActionKind, subject: str, frm: str | None, to: str | None, t: int, d: int
    ) -> None:
        actions.append(Action(len(actions), kind, subject, frm, to, t, t + d, "peer plan"))

    t = 0
    for c in instance.of_type(Online):
        node = src.nodes[c.node]
        if node.state is NodeState.OFFLINE:
            add(ActionKind.BOOT_NODE, c.node, None, c.node, 0, node.duration_s("boot"))
            t = max(t, actions[-1].end_s)
    for step in steps:
        end = t
        for vm, frm, to in step:
            if frm == READY:
                add(ActionKind.BOOT_VM, vm, None, to, t, src.vms[vm].duration_s("boot"))
            else:
                add(ActionKind.MIGRATE, vm, frm, to, t, src.vms[vm].duration_s("migrate"))
            end = max(end, actions[-1].end_s)
        t = end
    for leaving in instance.of_type(Offline):
        node = src.nodes[leaving.node]
        if node.online:
            add(
                ActionKind.SHUTDOWN_NODE, node.name, node.name, None, t, node.duration_s("shutdown")
            )
    return actions


def final_hosts(instance: BtrInstance, placements: Mapping[str, str]) -> dict[str, str]:
    """Each VM's host at the end: the peer's placement, else where it is now."""
    out = {v: vm.host for v, vm in instance.source.vms.items() if vm.host is not None}
    out.update(placements)
    return out
