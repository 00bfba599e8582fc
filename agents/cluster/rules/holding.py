"""VMs a placement rule holds where they are: what a drain cannot move by live migration.

The applier refuses any move that would break a rule holding now (check.py), one migration at
a time. Some VMs then have no move at all off a node: the members of a gather that all run on
it (wherever one goes first, it leaves the others behind), a VM fenced onto the node, a VM
spread away from every VM of every other node. `held_vms` finds them, so that a drain moves the
other VMs, names the ones that stay and the rule that holds them, and leaves those to the drain
fallback, rather than plan a move the applier will refuse every cycle.

A VM is held when every node it could go to (online, not draining) breaks, on its arrival, a
rule that holds now, while the other held VMs stay where they are; the VMs that can leave are
counted as gone (they go somewhere else first). Capacity is not considered: a VM that fits
nowhere is the solver's answer, not a rule's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vmgrid.agents.cluster.rules.check import refusing_rules
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.solver.model import Model


@dataclass(frozen=True, slots=True)
class Hold:
    """A VM that stays on `node`, and the rule that keeps it there."""

    vm: str
    node: str
    rule: Rule
    reason: str


def held_vms(rules: Iterable[Rule], model: Model, draining: Iterable[str]) -> dict[str, Hold]:
    """VM uuid -> why it cannot leave its draining node without breaking a rule (see the
    module docstring); empty when no rule holds a VM."""
    nodes = [n for n in draining if n in model.nodes]
    leaving = [vm for node in nodes for vm in model.running_on(node)]
    if not leaving:
        return {}
    holding = [r for r in rules if _holds(r, model)]
    if not holding:
        return {}
    targets = [n for n in model.online_nodes() if n not in set(nodes)]
    by_vm: dict[str, list[Rule]] = {}
    by_node: dict[str, list[Rule]] = {}
    everywhere: list[Rule] = []
    for rule in holding:
        vms, scope_nodes = rule.constraint.vms_in_scope(), rule.constraint.nodes_in_scope()
        if not vms:
            everywhere.append(rule)
        for vm in vms:
            by_vm.setdefault(vm, []).append(rule)
        for node in scope_nodes:
            by_node.setdefault(node, []).append(rule)
    held = set(leaving)
    found: dict[str, Rule] = {}
    while True:
        gone = {vm for vm in leaving if vm not in held}
        current = Model(model.nodes, {n: v for n, v in model.vms.items() if n not in gone})
        freed: set[str] = set()
        for vm in sorted(held):
            own = by_vm.get(vm, []) + everywhere
            refusing = _refusing_everywhere(own, by_node, current, vm, targets)
            if refusing is None:
                freed.add(vm)
            else:
                found[vm] = refusing
        if not freed:
            break
        held -= freed
    return {vm: _hold(model, vm, found[vm], held) for vm in sorted(held)}


def _holds(rule: Rule, model: Model) -> bool:
    scope_ok = all(vm in model.vms for vm in rule.constraint.vms_in_scope())
    return scope_ok and rule.constraint.is_satisfied(model, model)


def _refusing_everywhere(
    own: list[Rule],
    by_node: Mapping[str, list[Rule]],
    model: Model,
    vm_uuid: str,
    targets: list[str],
) -> Rule | None:
    """The rule that refuses `vm_uuid` on most of `targets`, when some rule refuses it on
    every one of them; None when it may go somewhere (or there is nowhere to go: the drain
    has no destination for any VM, which is not a rule's doing)."""
    vm = model.vms[vm_uuid]
    counts: dict[str, int] = {}
    rules: dict[str, Rule] = {}
    scoped = _scoped(own, model)
    for node in targets:
        at_node = by_node.get(node, [])
        involved = own + at_node
        if not involved:
            return None
        refusing = refusing_rules(involved, model if at_node else scoped, vm, node)
        if not refusing:
            return None
        for rule in refusing:
            counts[rule.rule_id] = counts.get(rule.rule_id, 0) + 1
            rules[rule.rule_id] = rule
    if not counts:
        return None
    return rules[max(counts, key=lambda r: counts[r])]


def _scoped(rules: list[Rule], model: Model) -> Model:
    """`model` cut to the VMs `rules` name, when they read nothing else (no node in their
    scope, no VM outside it: not lonely, say), so that each trial move copies a few VMs."""
    vms: set[str] = set()
    for rule in rules:
        constraint = rule.constraint
        if constraint.nodes_in_scope() or constraint.plan_scope() is None:
            return model
        vms.update(v for v in constraint.vms_in_scope() if v in model.vms)
    return Model(model.nodes, {v: model.vms[v] for v in vms})


def _hold(model: Model, vm: str, rule: Rule, held: set[str]) -> Hold:
    node = model.vms[vm].host or ""
    return Hold(vm, node, rule, why_held(model, rule, node, held))


def why_held(model: Model, rule: Rule, node: str, held: Iterable[str] = ()) -> str:
    """The rule, and in words why it keeps its VMs on `node` while live migration moves one
    VM at a time."""
    constraint = rule.constraint
    in_scope = [vm for vm in constraint.vms_in_scope() if vm in set(held)]
    names = _names(model, in_scope or list(constraint.vms_in_scope()))
    label = f"rule {rule.rule_id} {constraint.label()}"
    if constraint.kind == "gather":
        return (
            f"{label} keeps {names} together at every instant: live migration moves one VM "
            "at a time"
        )
    if constraint.kind == "among":
        return (
            f"{label} keeps {names} within one group of nodes at every instant, and no other "
            f"node of {node}'s group can take them one at a time"
        )
    if constraint.kind == "fence":
        return f"{label} keeps {names} on its nodes, and no other of them can take them"
    return f"{label} holds now and would not with {names} on any other node"


def _names(model: Model, vms: list[str]) -> str:
    shown = [
        str(model.vms[vm].attributes.get("name") or vm) if vm in model.vms else vm for vm in vms
    ]
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def held_summary(holds: Mapping[str, Hold]) -> str:
    """One clause per node and rule: which VMs stay and why."""
    groups: dict[tuple[str, str], list[str]] = {}
    reasons: dict[tuple[str, str], str] = {}
    for hold in holds.values():
        key = (hold.node, hold.rule.rule_id)
        groups.setdefault(key, []).append(hold.vm)
        reasons[key] = hold.reason
    return "; ".join(
        f"{len(vms)} VM(s) stay on {node}: {reasons[(node, rule_id)]}"
        for (node, rule_id), vms in groups.items()
    )
