"""Checks of the rule store against a placement: what the applier and ``rules check`` ask.

A move is refused when it would turn a rule that holds now into one that does not; a rule that
is already broken is reported by ``violations`` (and not made a reason to freeze the cluster).
Checks run on the solver's model of the cluster, the same one every decider reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.solver.constraints import Constraint
from vmgrid.solver.constraints.base import CONTINUOUS
from vmgrid.solver.model import VM, Model


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule the placement breaks, and how."""

    rule: Rule
    reason: str


def _describe(rule: Rule, model: Model) -> str:
    hosts = {vm: model.vms[vm].host for vm in rule.constraint.vms_in_scope() if vm in model.vms}
    where = ", ".join(f"{_name(model, vm)} on {host}" for vm, host in hosts.items() if host)
    return f"{rule.constraint.label()} does not hold" + (f" ({where})" if where else "")


def _name(model: Model, vm: str) -> str:
    return str(model.vms[vm].attributes.get("name") or vm)


def involving(rules: Iterable[Rule], vms: Iterable[str], nodes: Iterable[str]) -> list[Rule]:
    """Rules whose scope names one of `vms` or `nodes`, or names no VM (cluster-wide)."""
    vm_set, node_set = set(vms), set(nodes)
    out = []
    for rule in rules:
        scope_vms = rule.constraint.vms_in_scope()
        if (
            not scope_vms
            or vm_set.intersection(scope_vms)
            or node_set.intersection(rule.constraint.nodes_in_scope())
        ):
            out.append(rule)
    return out


def violations(rules: Iterable[Rule], model: Model) -> list[Violation]:
    """The rules `model` breaks now."""
    return [
        Violation(rule, _describe(rule, model))
        for rule in rules
        if not rule.constraint.is_satisfied(model, model)
    ]


def move_refusal(rules: Iterable[Rule], model: Model, vm_uuid: str, destination: str) -> str:
    """Why moving `vm_uuid` to `destination` would break a rule that holds in `model` (empty
    when it breaks none). The VM is counted on its destination, as it is while it migrates."""
    vm = model.vms.get(vm_uuid)
    if vm is None or vm.host == destination:
        return ""
    return arrival_refusal(rules, model, vm, destination)


def _broken_by(rules: Iterable[Rule], before: Model, after: Model) -> list[Rule]:
    """The rules that hold in `before` and do not in `after`."""
    return [
        rule
        for rule in rules
        if rule.constraint.is_satisfied(before, before)
        and not rule.constraint.is_satisfied(before, after)
    ]


def refusing_rules(rules: Iterable[Rule], model: Model, vm: VM, destination: str) -> list[Rule]:
    """The rules that hold in `model` and would not with `vm` running on `destination`."""
    return _broken_by(rules, model, model.with_vms([vm.on(destination)]))


def arrival_refusal(rules: Iterable[Rule], model: Model, vm: VM, destination: str) -> str:
    """Why `vm` running on `destination` (moved there, started or restarted there) would break
    a rule that holds in `model`; empty when it breaks none."""
    refusing = refusing_rules(rules, model, vm, destination)
    return arrival_refusal_of(refusing[0], vm, destination) if refusing else ""


def arrival_refusal_of(rule: Rule, vm: VM, destination: str) -> str:
    """The words of a refusal: `vm` on `destination` would break `rule`."""
    name = str(vm.attributes.get("name") or vm.name)
    return f"{name} on {destination} would break rule {rule.rule_id} {rule.constraint.label()}"


def departure_refusal(rules: Iterable[Rule], model: Model, vm_uuid: str) -> str:
    """Why `vm_uuid` leaving the cluster would break a rule that holds in `model` (a gather
    whose other members stay, say); empty when it breaks none."""
    if vm_uuid not in model.vms:
        return ""
    after = Model(model.nodes, {n: v for n, v in model.vms.items() if n != vm_uuid})
    broken = _broken_by(rules, model, after)
    if not broken:
        return ""
    rule = broken[0]
    name = _name(model, vm_uuid)
    return f"{name} leaving would break rule {rule.rule_id} {rule.constraint.label()}"


def moves_keeping_rules(
    rules: Iterable[Rule], model: Model, moves: Iterable[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[str]]:
    """The moves (vm, destination), in order, that keep every rule holding, each checked on
    the placement the moves before it leave; and why each dropped one was dropped."""
    kept: list[tuple[str, str]] = []
    dropped: list[str] = []
    rule_list = list(rules)
    current = model
    for vm_uuid, destination in moves:
        refusal = move_refusal(rule_list, current, vm_uuid, destination) if rule_list else ""
        if refusal:
            dropped.append(refusal)
            continue
        kept.append((vm_uuid, destination))
        vm = current.vms.get(vm_uuid)
        if vm is not None:
            current = current.with_vms([vm.on(destination)])
    return kept, dropped


def solvable(rules: Iterable[Rule], model: Model) -> list[Constraint]:
    """The rules a solver can post on `model`, as the applier keeps them: those naming only
    its VMs and nodes (a rule over a stopped VM or a lost node is left to the applier's check).

    The applier refuses, before each migration or start, any arrival that breaks a rule holding
    now; so a rule that holds in `model` is handed over continuous (kept at every instant of
    the plan, which the planner orders accordingly) where its kind has that semantics. A rule
    broken now stays as stored: the applier does not hold moves back for it, and the solver
    repairs it by the end of the plan."""
    out = []
    for rule in rules:
        constraint = rule.constraint
        if not (
            all(vm in model.vms for vm in constraint.vms_in_scope())
            and all(node in model.nodes for node in constraint.nodes_in_scope())
        ):
            continue
        if (
            not constraint.continuous
            and CONTINUOUS in constraint.semantics
            and constraint.is_satisfied(model, model)
        ):
            constraint = replace(constraint, continuous=True)  # type: ignore[type-var]
        out.append(constraint)
    return out
