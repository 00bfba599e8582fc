"""Other routes for the VMs of a plan's migration cycles, for the interval model to choose from.

A VM the planner pivoted (two migrations through a third node) or suspended and resumed on
another node, and a VM whose direct migration lies on a cycle of migrations between nodes
(its source is reachable from its destination), may reach its destination another way:

- directly, one migration from its source to its destination;
- through a pivot node p: a migration to p, then one from p to its destination, holding its new
  demand on p from the first hop's start to the second hop's end.

The candidate pivot nodes are the planner's own (`plan_cycles.may_pivot` on a fresh
`plan_scheduler.Scheduler` at t=0): online, not forbidden by any rule, allowed by every rule's
whitelist for the VM, with room and NIC bandwidth for the VM now, and admitted by every
continuous rule; at most `max_pivots` of them per VM, those with the most free memory first.
Durations are the planner's (`Scheduler.duration` with the hop's NIC share). Whether the capacity
of every node (pivot included) holds over time is the interval model's job; whether every rule
holds is the validator's.

Numbering: the plan's actions keep their ids (0..n-1); the other routes' hops follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.plan_cycles import may_pivot
from vmgrid.solver.plan_rules import pivot_filter
from vmgrid.solver.plan_scheduler import PlannerOptions, Scheduler, Todo, nics, share_mbit
from vmgrid.solver.schedule_model import node_precedences, vm_actions

PIVOT_REASON = "pivot through {} to break a migration cycle"


@dataclass(frozen=True)
class Route:
    """One way for `vm` to reach its destination: its `actions` in turn. `via` is the pivot
    node (None: a direct migration, or the plan's own suspend and resume)."""

    vm: str
    via: str | None
    actions: tuple[Action, ...]
    planned: bool

    def describe(self) -> str:
        kinds = {a.kind for a in self.actions}
        if self.via is not None:
            return f"via {self.via}"
        return "suspend/resume" if ActionKind.SUSPEND in kinds else "direct"


@dataclass(frozen=True)
class Routes:
    """The plan's actions followed by the other routes' hops (`actions[i].id == i`), and the
    routes of every VM that may change route (its planned one first)."""

    actions: tuple[Action, ...]
    of_vm: Mapping[str, tuple[Route, ...]]

    @property
    def optional(self) -> dict[int, tuple[str, int]]:
        """Action id -> (its VM, its route's index in `of_vm[vm]`), for actions of a VM that may
        change route."""
        return {
            a.id: (vm, k)
            for vm, routes in self.of_vm.items()
            for k, r in enumerate(routes)
            for a in r.actions
        }


def plan_routes(
    plan: Plan,
    rules: Sequence[Constraint],
    opts: PlannerOptions,
    max_vms: int,
    max_pivots: int,
) -> Routes:
    """The routes the interval model may choose from: for up to `max_vms` VMs of migration
    cycles (pivoted or suspended ones first), the planned route, the direct one and up to
    `max_pivots` through pivot nodes. No VM: the plan's actions alone."""
    if max_vms <= 0 or max_pivots < 0:
        return Routes(plan.actions, {})
    per_vm = vm_actions(plan)
    vms = _in_cycles(plan, per_vm)[:max_vms]
    if not vms:
        return Routes(plan.actions, {})
    s = Scheduler(plan.src, plan.dst, opts, rules, {}, pivot_filter(plan.src, rules, None))
    nic = nics(plan.src, opts)
    actions = list(plan.actions)
    of_vm: dict[str, tuple[Route, ...]] = {}

    def hop(vm: str, src: str, dst: str, reason: str) -> Action:
        share = share_mbit(nic, opts, src, dst)
        d = s.duration(ActionKind.MIGRATE, vm, share)
        a = Action(len(actions), ActionKind.MIGRATE, vm, src, dst, 0, d, reason)
        actions.append(a)
        return a

    for vm in vms:
        planned = tuple(per_vm[vm])
        src, dst = plan.src.vms[vm].host, plan.dst.vms[vm].host
        assert src is not None and dst is not None
        via = (
            planned[0].dst if len(planned) == 2 and planned[0].kind is ActionKind.MIGRATE else None
        )
        found = [Route(vm, via, planned, True)]
        reason = planned[-1].reason
        if len(planned) != 1:
            found.append(Route(vm, None, (hop(vm, src, dst, reason),), False))
        todo = Todo(ActionKind.MIGRATE, vm, src, dst, reason)
        for p in _pivot_nodes(s, todo, {src, dst, via}, max_pivots):
            first = hop(vm, src, p, PIVOT_REASON.format(p))
            found.append(Route(vm, p, (first, hop(vm, p, dst, reason)), False))
        of_vm[vm] = tuple(found)
    return Routes(tuple(actions), of_vm)


def route_pairs(plan: Plan, routes: Routes) -> set[tuple[int, int]]:
    """The order the other routes need: their hops in turn, node boots before their arrivals,
    node shutdowns after their departures."""
    pairs: set[tuple[int, int]] = set()
    for rs in routes.of_vm.values():
        for r in rs[1:]:
            pairs.update((a.id, b.id) for a, b in zip(r.actions, r.actions[1:], strict=False))
            pairs.update(node_precedences(plan.actions, r.actions))
    return pairs


def _pivot_nodes(s: Scheduler, todo: Todo, skip: set[str | None], limit: int) -> list[str]:
    """Up to `limit` nodes the planner would let `todo`'s VM stop over on at t=0, the ones with
    the most free memory first."""
    mem = s.opts.memory_resource

    def free(n: str) -> int:
        return s.src.nodes[n].cap(mem) - s.load[n].get(mem, 0)

    ok = [n for n in s.src.nodes if n not in skip and may_pivot(s, todo, n, 0)]
    return sorted(ok, key=lambda n: (-free(n), n))[:limit]


def _in_cycles(plan: Plan, per_vm: Mapping[str, list[Action]]) -> list[str]:
    """VMs that move from a running host to another running host and that the planner pivoted
    or suspended (first), or whose migration closes a cycle between nodes (then)."""
    moved: dict[str, tuple[str, str]] = {}
    for name, old in plan.src.vms.items():
        new = plan.dst.vms.get(name)
        if old.running and new is not None and new.running and old.host != new.host:
            assert old.host is not None and new.host is not None
            moved[name] = (old.host, new.host)
    broken = [v for v in moved if len(per_vm.get(v, [])) == 2]
    direct = [v for v in moved if len(per_vm.get(v, [])) == 1]
    component = _components([moved[v] for v in moved])
    cycled = [v for v in direct if component[moved[v][0]] == component[moved[v][1]]]
    return broken + cycled


def _components(edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Node -> its strongly connected component in the graph of `edges` (Kosaraju)."""
    out_edges: dict[str, list[str]] = {}
    in_edges: dict[str, list[str]] = {}
    for u, v in edges:
        out_edges.setdefault(u, []).append(v)
        in_edges.setdefault(v, []).append(u)
        out_edges.setdefault(v, [])
        in_edges.setdefault(u, [])
    order: list[str] = []
    seen: set[str] = set()
    for root in out_edges:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(out_edges[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next((n for n in it if n not in seen), None)
            if nxt is None:
                stack.pop()
                order.append(node)
            else:
                seen.add(nxt)
                stack.append((nxt, iter(out_edges[nxt])))
    comp: dict[str, int] = {}
    for root in reversed(order):
        if root in comp:
            continue
        comp[root] = len(comp)
        todo = [root]
        label = comp[root]
        while todo:
            node = todo.pop()
            for n in in_edges[node]:
                if n not in comp:
                    comp[n] = label
                    todo.append(n)
    return comp
