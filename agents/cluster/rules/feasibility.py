"""Rules that cannot all be kept: contradictions between rules, and rules no node set allows.

`contradiction` judges a new rule against those stored, on the cluster's nodes, before it is
added: spread and gather over two or more common VMs, gather across split groups, a gather of
lonely VMs with VMs outside the lonely set, bans and
fences (and among) that leave a VM no node, a spread with fewer allowed nodes than VMs, a
gather whose VMs share no allowed node. `impossible` asks the same of the rules in force on the
nodes that are connected now, for ``rules check``. Ignores capacity: the solver weighs that.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from vmgrid.agents.cluster.rules.check import Violation
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.solver.constraints import (
    Among,
    Ban,
    Constraint,
    Fence,
    Gather,
    Lonely,
    Split,
    Spread,
)
from vmgrid.solver.model import Model

Named = tuple[str, Constraint]
"""A rule id and its constraint."""


@dataclass(frozen=True, slots=True)
class _Allowed:
    """The nodes a VM may run on under the rules, and which rules narrowed them."""

    nodes: frozenset[str]
    why: tuple[str, ...]


def _show(items: Iterable[str], limit: int = 6) -> str:
    """Items in the order given (sets: sorted), the first `limit` of them."""
    shown = sorted(items) if isinstance(items, set | frozenset) else list(dict.fromkeys(items))
    text = ", ".join(shown[:limit]) + (", ..." if len(shown) > limit else "")
    return text or "none"


def allowed_nodes(vm: str, rules: Sequence[Named], universe: Collection[str]) -> _Allowed:
    """Where `vm` may run among `universe` under the ban, fence and among rules of `rules`."""
    nodes = set(universe)
    why: list[str] = []
    for rule_id, c in rules:
        if vm not in c.vms_in_scope():
            continue
        if isinstance(c, Fence):
            nodes &= set(c.nodes)
            why.append(f"fenced to {_show(c.nodes)} by {rule_id}")
        elif isinstance(c, Among):
            nodes &= set(c.nodes_in_scope())
            why.append(f"kept among {_show(c.nodes_in_scope())} by {rule_id}")
        elif isinstance(c, Ban):
            nodes -= set(c.nodes)
            why.append(f"banned from {_show(c.nodes)} by {rule_id}")
    return _Allowed(frozenset(nodes), tuple(why))


def _spread_gather(new_id: str, new: Constraint, stored: Sequence[Named]) -> str:
    for rule_id, other in stored:
        pair = (new, other) if isinstance(new, Spread) else (other, new)
        if not (isinstance(pair[0], Spread) and isinstance(pair[1], Gather)):
            continue
        common = [v for v in new.vms_in_scope() if v in other.vms_in_scope()]
        if len(common) >= 2:
            return (
                f"rule {new_id} {new.label()} contradicts rule {rule_id} {other.label()}: "
                f"both cover VMs {_show(common)}, which spread keeps apart and gather together"
            )
    return ""


def _split_gather(new_id: str, new: Constraint, stored: Sequence[Named]) -> str:
    for rule_id, other in stored:
        split, gather = (new, other) if isinstance(new, Split) else (other, new)
        if not (isinstance(split, Split) and isinstance(gather, Gather)):
            continue
        members = set(gather.vms)
        hit = [g for g in split.groups if members.intersection(g)]
        if len(hit) >= 2:
            apart = _show(v for g in hit for v in g if v in members)
            return (
                f"rule {new_id} {new.label()} contradicts rule {rule_id} {other.label()}: "
                f"VMs {apart} must share a node but are in different split groups"
            )
    return ""


def _lonely_gather(new_id: str, new: Constraint, stored: Sequence[Named]) -> str:
    for rule_id, other in stored:
        lonely, gather = (new, other) if isinstance(new, Lonely) else (other, new)
        if not (isinstance(lonely, Lonely) and isinstance(gather, Gather)):
            continue
        inside = [v for v in gather.vms if v in lonely.vms]
        outside = [v for v in gather.vms if v not in lonely.vms]
        if inside and outside:
            return (
                f"rule {new_id} {new.label()} contradicts rule {rule_id} {other.label()}: "
                f"lonely VMs {_show(inside)} must share a node with {_show(outside)}"
            )
    return ""


def _nodes_left(rules: Sequence[Named], vms: Iterable[str], universe: Collection[str]) -> str:
    for vm in vms:
        allowed = allowed_nodes(vm, rules, universe)
        if not allowed.nodes:
            return f"VM {vm} would have no node: {'; '.join(allowed.why)}"
    return ""


def _spread_room(rule_id: str, c: Spread, rules: Sequence[Named], universe: Collection[str]) -> str:
    union: set[str] = set()
    for vm in c.vms:
        union |= allowed_nodes(vm, rules, universe).nodes
    if len(union) < len(c.vms):
        return (
            f"spread rule {rule_id} needs {len(c.vms)} distinct nodes for VMs {_show(c.vms)} "
            f"but the rules leave them only {len(union)} ({_show(union)})"
        )
    return ""


def _gather_room(rule_id: str, c: Gather, rules: Sequence[Named], universe: Collection[str]) -> str:
    common = set(universe)
    for vm in c.vms:
        common &= allowed_nodes(vm, rules, universe).nodes
    if not common:
        return (
            f"gather rule {rule_id} needs one node for VMs {_show(c.vms)} "
            "but no node is allowed to all of them"
        )
    return ""


def contradiction(
    new_id: str, new: Constraint, stored: Iterable[Rule], nodes: Collection[str]
) -> str:
    """Why `new` cannot be kept together with `stored` on `nodes` (empty when it can)."""
    before = [(r.rule_id, r.constraint) for r in stored]
    rules = [*before, (new_id, new)]
    reason = (
        _spread_gather(new_id, new, before)
        or _split_gather(new_id, new, before)
        or _lonely_gather(new_id, new, before)
    )
    if reason:
        return reason
    touched = set(new.vms_in_scope())
    if isinstance(new, Ban | Fence | Among):
        reason = _nodes_left(rules, new.vms_in_scope(), nodes)
        if reason:
            return f"rule {new_id} contradicts the rules in force: {reason}"
    for rule_id, c in rules:
        if not touched.intersection(c.vms_in_scope()):
            continue
        reason = ""
        if isinstance(c, Spread):
            reason = _spread_room(rule_id, c, rules, nodes)
        elif isinstance(c, Gather):
            reason = _gather_room(rule_id, c, rules, nodes)
        if reason:
            return f"rule {new_id} cannot be kept: {reason}"
    return ""


def impossible(rules: Iterable[Rule], model: Model) -> list[Violation]:
    """The rules no placement on the online nodes of `model` can keep, for the VMs that run
    there: a VM with no allowed node, a spread with fewer allowed nodes than running VMs, a
    gather whose running VMs share no allowed node."""
    stored = list(rules)
    named = [(r.rule_id, r.constraint) for r in stored]
    universe = [n for n, node in model.nodes.items() if node.online]
    out = []
    for rule in stored:
        c = rule.constraint
        running = tuple(v for v in c.vms_in_scope() if v in model.vms and model.vms[v].running)
        reason = ""
        if isinstance(c, Ban | Fence | Among):
            reason = _nodes_left(named, running, universe)
        elif isinstance(c, Spread) and len(running) >= 2:
            reason = _spread_room(rule.rule_id, Spread(running), named, universe)
        elif isinstance(c, Gather) and len(running) >= 2:
            reason = _gather_room(rule.rule_id, Gather(running), named, universe)
        if reason:
            online = _show(universe)
            out.append(Violation(rule, f"{reason} (online nodes: {online})"))
    return out
