"""What a plan's timing must respect, read from the plan itself: the facts the CP-SAT
re-scheduler (`vmgrid.solver.schedule_cpsat`) turns into intervals and cumulatives, and the
dependencies of a re-timed plan.

Units at this boundary: seconds (integers, as in `Plan`), resource units as in the model
(MiB, millicores, Mbit/s), NIC bandwidth in Mbit/s.

- `stays`: where each VM is, with which demand, from which action's start (None: t=0) to which
  action's end (None: past the plan), exactly as the validator replays it: a migrating VM holds
  its old demand on its source until the migration ends and its new one on its destination from
  its start; a pivot holds the new demand on the pivot node from the first hop's start to the
  second hop's end; suspend and VM shutdown free the host at their end; boot and resume hold
  from their start.
- `precedences`: the order the plan needs whatever the timing (a VM's actions in turn, a node's
  boot before its arrivals, its shutdown after its departures) plus, for every continuous rule,
  the greedy plan's order between the actions in the rule's scope: where one ended before the
  other started, it still does. Then a set of VMs present together on a node at some instant
  of the new plan was present together at some instant of the greedy one (pairwise overlapping
  intervals share a point), so an arrival a rule refused never happens; the validator has the
  last word.
- `nic_shares`: the bandwidth share each migration holds on its NIC sides, as the planner
  computes it (`PlannerOptions.nic_mbit`, `nic_mbit_by_node`, `bandwidth_mbit`).
- `dependencies`: the `depends_on` of a re-timed action, the way the planner writes them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.plan_scheduler import nic_sides, share_mbit
from vmgrid.solver.planner import PlannerOptions

_ARRIVING = (ActionKind.MIGRATE, ActionKind.BOOT_VM, ActionKind.RESUME)
_LEAVING = (ActionKind.MIGRATE, ActionKind.SUSPEND, ActionKind.SHUTDOWN_VM)


@dataclass(frozen=True, slots=True)
class Stay:
    """`vm` on `node` consuming `demand` from `since`'s start (None: t=0) to `until`'s end
    (None: past the plan)."""

    vm: str
    node: str
    demand: Mapping[str, int]
    since: int | None
    until: int | None


def vm_actions(plan: Plan) -> dict[str, list[Action]]:
    """VM -> its actions in the plan's order (start, then id)."""
    out: dict[str, list[Action]] = {}
    for a in sorted(plan.actions, key=lambda x: (x.start_s, x.id)):
        if not a.kind.on_node:
            out.setdefault(a.subject, []).append(a)
    return out


def stays(plan: Plan, skip: AbstractSet[str] = frozenset()) -> list[Stay]:
    """Every presence of every running VM on a node while the plan runs (but the VMs `skip`)."""
    out: list[Stay] = []
    per_vm = vm_actions(plan)
    for name in plan.src.vms:
        if name not in skip:
            out += vm_stays(plan, name, per_vm.get(name, []))
    return out


def vm_stays(plan: Plan, name: str, acts: Sequence[Action]) -> list[Stay]:
    """The presences of VM `name` when its actions are `acts` (in turn): the plan's own, or
    another route to the same destination (`vmgrid.solver.schedule_routes`)."""
    old = plan.src.vms[name]
    new = plan.dst.vms[name].demand if name in plan.dst.vms else old.demand
    out: list[Stay] = []
    here: tuple[str, Mapping[str, int], int | None] | None = None
    if old.running and old.host is not None:
        here = (old.host, old.demand, None)
    for a in acts:
        if a.kind in _LEAVING and here is not None:
            out.append(Stay(name, here[0], here[1], here[2], a.id))
            here = None
        if a.kind in _ARRIVING and a.dst is not None:
            here = (a.dst, new, a.id)
    if here is not None:
        out.append(Stay(name, here[0], here[1], here[2], None))
    return out


def nic_shares(
    actions: Iterable[Action], opts: PlannerOptions, nic: Mapping[str, int]
) -> dict[int, tuple[int, list[tuple[str, str]]]]:
    """Migration id -> (Mbit/s it reserves, the NIC sides it crosses), as the planner reserves
    (`plan_scheduler.share_mbit` and `nic_sides`)."""
    out: dict[int, tuple[int, list[tuple[str, str]]]] = {}
    for a in actions:
        if a.kind is not ActionKind.MIGRATE or a.dst is None:
            continue
        share = share_mbit(nic, opts, a.src, a.dst)
        if share is not None:
            out[a.id] = (share, nic_sides(nic, a.src, a.dst))
    return out


def precedences(
    plan: Plan, rules: Sequence[Constraint], limit: int
) -> tuple[set[tuple[int, int]], str]:
    """(before, after) id pairs: `before` must end when `after` starts; with a note when the
    continuous rules would need more than `limit` pairs (then the caller keeps the greedy)."""
    pairs: set[tuple[int, int]] = set()
    for acts in vm_actions(plan).values():
        pairs.update((a.id, b.id) for a, b in zip(acts, acts[1:], strict=False))
    for node in plan.actions:
        if node.kind is ActionKind.BOOT_NODE:
            pairs.update((node.id, a.id) for a in plan.actions if _arrives(a, node.subject))
        elif node.kind is ActionKind.SHUTDOWN_NODE:
            pairs.update((a.id, node.id) for a in plan.actions if _leaves(a, node.subject))
    for rule in rules:
        if not rule.continuous:
            continue
        scope = rule.plan_scope()
        members = list(plan.actions) if scope is None else _in_scope(plan.actions, *scope)
        pairs.update(_greedy_order(members))
        if len(pairs) > limit:
            return pairs, f"continuous rules need over {limit} precedences: greedy kept"
    return pairs, ""


def node_precedences(actions: Sequence[Action], among: Iterable[Action]) -> list[tuple[int, int]]:
    """The node boots before the arrivals of `among` and node shutdowns after its departures
    (`among`: actions not in the plan, e.g. another route's hops)."""
    pairs = []
    for a in among:
        for node in actions:
            if node.kind is ActionKind.BOOT_NODE and _arrives(a, node.subject):
                pairs.append((node.id, a.id))
            elif node.kind is ActionKind.SHUTDOWN_NODE and _leaves(a, node.subject):
                pairs.append((a.id, node.id))
    return pairs


def _arrives(a: Action, node: str) -> bool:
    return a.kind in _ARRIVING and a.dst == node


def _leaves(a: Action, node: str) -> bool:
    return a.kind in _LEAVING and a.src == node


def _in_scope(actions: Iterable[Action], vms: Iterable[str], nodes: Iterable[str]) -> list[Action]:
    vm_set, node_set = set(vms), set(nodes)
    return [
        a
        for a in actions
        if (not a.kind.on_node and a.subject in vm_set) or a.src in node_set or a.dst in node_set
    ]


def _greedy_order(members: Sequence[Action]) -> list[tuple[int, int]]:
    """Pairs (a, b) with a ending before b starts in the greedy plan, transitively reduced:
    a is left out for b when some other predecessor of b starts after a ends."""
    by_end = sorted(members, key=lambda a: a.end_s)
    ends = [a.end_s for a in by_end]
    latest_start: list[int] = []
    for a in by_end:
        latest_start.append(max(a.start_s, latest_start[-1] if latest_start else a.start_s))
    out = []
    for b in members:
        k = bisect_right(ends, b.start_s)
        i = k - 1
        while i >= 0 and by_end[i].end_s > latest_start[k - 1]:
            if by_end[i].id != b.id:
                out.append((by_end[i].id, b.id))
            i -= 1
    return out


def dependencies(
    actions: Sequence[Action],
    pairs: Iterable[tuple[int, int]],
    nic: Mapping[int, tuple[int, list[tuple[str, str]]]],
    inbound_cap: bool,
) -> dict[int, tuple[int, ...]]:
    """Action id -> the ids it waits for in the re-timed plan: its required predecessors
    (`pairs`), the departures from its destination that ended by its start (the room it
    uses), the migrations that freed its NIC sides and, under an inbound cap, the inbound
    migrations of its destination that ended by its start. Each ends before it starts."""
    deps: dict[int, set[int]] = {a.id: set() for a in actions}
    for before, after in pairs:
        deps[after].add(before)
    left: dict[str, list[Action]] = {}
    came: dict[str, list[Action]] = {}
    on_side: dict[tuple[str, str], list[Action]] = {}
    for a in actions:
        if a.kind in _LEAVING and a.src is not None:
            left.setdefault(a.src, []).append(a)
        if a.kind is ActionKind.MIGRATE and a.dst is not None:
            came.setdefault(a.dst, []).append(a)
        for side in nic.get(a.id, (0, []))[1]:
            on_side.setdefault(side, []).append(a)
    for b in actions:
        found: list[Action] = []
        if b.kind in _ARRIVING and b.dst is not None:
            found += left.get(b.dst, [])
            if inbound_cap and b.kind is ActionKind.MIGRATE:
                found += came.get(b.dst, [])
        for side in nic.get(b.id, (0, []))[1]:
            found += on_side[side]
        deps[b.id].update(a.id for a in found if a.id != b.id and a.end_s <= b.start_s)
    return {i: tuple(sorted(d)) for i, d in deps.items()}
