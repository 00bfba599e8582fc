"""The validator's rule checks, one function per kind, written from each rule's definition.

They read a replayed plan (`Timeline`: where each VM is during which interval, where it ends,
which nodes end online, the final loads with the problem's demands) and the rules' fields, and
never call the plugins' own checks, so a plugin bug cannot validate itself. Final checks run for
every rule; continuous ones also judge every instant: a rule is broken when an action brings a
VM somewhere while the rule's condition is false (intervals are half-open).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vmgrid.solver import constraints as rules
from vmgrid.solver.btrplace import instance as btr
from vmgrid.solver.model import Model, Resources, VMState
from vmgrid.solver.plan import Action, ActionKind


@dataclass(slots=True)
class Stay:
    """A VM on a node during [start, end), consuming `demand`; `moved` if an action put it there."""

    vm: str
    node: str
    start: int
    end: int
    demand: Resources
    moved: bool
    action: Action | None
    running: bool = True


class Timeline(Protocol):
    """The replayed plan, as `vmgrid.solver.validate` builds it."""

    @property
    def src(self) -> Model: ...

    @property
    def stays(self) -> Mapping[str, list[Stay]]: ...

    @property
    def end_state(self) -> Mapping[str, VMState]: ...

    @property
    def actions(self) -> Sequence[Action]: ...

    def flag(self, rule: str, message: str, time_s: int | None = None) -> None: ...


@dataclass(frozen=True)
class Final:
    """Where things end: running VMs' hosts, online nodes, node -> resource -> load."""

    hosts: Mapping[str, str]
    online: set[str]
    load: Mapping[str, Mapping[str, int]]


def as_rules(constraints: Iterable[Any]) -> list[rules.Constraint]:
    """Solver rule values for the validator: BtrPlace's instance constraints are converted."""
    out: list[rules.Constraint] = []
    sorted_parts: dict[int, tuple[Any, tuple[str, ...]]] = {}  # parts shared by several amongs
    for c in constraints:
        if isinstance(c, btr.Online):
            out.append(rules.Online((c.node,)))
        elif isinstance(c, btr.Offline):
            out.append(rules.Offline((c.node,)))
        elif isinstance(c, btr.Running):
            out.append(rules.Running((c.vm,)))
        elif isinstance(c, btr.Preserve):
            out.append(rules.Preserve(c.vm, c.resource, c.amount))
        elif isinstance(c, btr.Spread):
            out.append(rules.Spread(c.vms, c.continuous))
        elif isinstance(c, btr.Among):
            parts = tuple(_sorted_part(p, sorted_parts) for p in c.parts)
            out.append(rules.Among(c.vms, parts, c.continuous))
        elif isinstance(c, btr.ResourceCapacity):
            out.append(rules.ResourceCapacity(c.nodes, c.resource, c.amount, c.continuous))
        elif isinstance(c, rules.Constraint):
            out.append(c)
        else:
            raise TypeError(f"validator: {c!r} is not a rule it knows")
    return out


def _sorted_part(part: Any, memo: dict[int, tuple[Any, tuple[str, ...]]]) -> tuple[str, ...]:
    seen = memo.get(id(part))
    if seen is not None and seen[0] is part:
        return seen[1]
    out = tuple(sorted(part))
    memo[id(part)] = (part, out)
    return out


def preserved_demands(src: Model, constraints: Iterable[rules.Constraint]) -> dict[str, Resources]:
    """Each VM's demand after the reconfiguration: at least what every `preserve` asks."""
    out: dict[str, dict[str, int]] = {}
    for c in constraints:
        if isinstance(c, rules.Preserve) and c.vm in src.vms:
            demand = out.setdefault(c.vm, dict(src.vms[c.vm].demand))
            demand[c.rc] = max(demand.get(c.rc, 0), c.amount)
    return dict(out)


def _hosts_of(final: Final, vms: Iterable[str]) -> dict[str, str]:
    return {v: final.hosts[v] for v in vms if v in final.hosts}


def _final(t: Timeline, c: Any, f: Final) -> str | None:
    """Why `c` does not hold at the end (None when it does)."""
    kind = c.kind
    if kind in ("online", "offline"):
        wrong = [n for n in c.nodes if (n in f.online) != (kind == "online")]
        other = "offline" if kind == "online" else "online"
        return f"nodes {','.join(wrong)} end {other}" if wrong else None
    if kind in ("running", "ready", "sleeping"):
        wrong = [v for v in c.vms if t.end_state.get(v) is not VMState(kind)]
        return f"VMs {','.join(wrong[:6])} do not end {kind}" if wrong else None
    hosts = _hosts_of(f, c.vms_in_scope())
    if kind == "ban":
        wrong = [v for v, n in hosts.items() if n in c.nodes]
        return f"VMs {','.join(wrong)} end on a banned node" if wrong else None
    if kind == "fence":
        wrong = [v for v, n in hosts.items() if n not in c.nodes]
        return f"VMs {','.join(wrong)} end outside the fence" if wrong else None
    if kind == "spread":
        return _twice(hosts)
    if kind == "gather":
        used = set(hosts.values())
        shown = ",".join(sorted(used)[:6])
        return f"members end on {len(used)} nodes: {shown}" if len(used) > 1 else None
    if kind == "among":
        used = set(hosts.values())
        fits = not used or any(used <= set(part) for part in c.parts)
        return None if fits else f"members end on nodes {','.join(sorted(used)[:6])}"
    if kind == "lonely":
        members = set(c.vms)
        for node in sorted(set(hosts.values())):
            strangers = [v for v, n in f.hosts.items() if n == node and v not in members]
            if strangers:
                return f"node {node} ends with VM {strangers[0]} beside the members"
        return None
    if kind == "split":
        owner: dict[str, int] = {}
        for i, group in enumerate(c.groups):
            for v, node in _hosts_of(f, group).items():
                if owner.setdefault(node, i) != i:
                    return f"node {node} ends with VMs of two groups (VM {v})"
        return None
    if kind in ("root", "quarantine"):
        return _moves_broken(t, c)
    return _final_counts(c, f, hosts)


def _final_counts(c: Any, f: Final, hosts: Mapping[str, str]) -> str | None:
    kind = c.kind
    if kind == "resourceCapacity":
        total = sum(f.load.get(n, {}).get(c.rc, 0) for n in c.nodes)
        return f"ends with {total} {c.rc} > {c.amount}" if total > c.amount else None
    if kind == "runningCapacity":
        count = sum(1 for n in f.hosts.values() if n in c.nodes)
        return f"ends with {count} running VMs > {c.amount}" if count > c.amount else None
    if kind == "maxOnline":
        on = sorted(n for n in c.nodes if n in f.online)
        return f"{len(on)} nodes end online > {c.amount}" if len(on) > c.amount else None
    if kind == "networkAffinity":
        if c.max_crossing_mbit is None:
            return None
        crossing = sum(
            mbit for a, b, mbit in c.pairs if a in hosts and b in hosts and hosts[a] != hosts[b]
        )
        limit = c.max_crossing_mbit
        return f"{crossing} Mbit/s cross nodes > {limit}" if crossing > limit else None
    return None  # preserve and capacity: the demands and the capacity sweep carry them


def _twice(hosts: Mapping[str, str]) -> str | None:
    seen: dict[str, str] = {}
    for vm, node in hosts.items():
        if node in seen:
            return f"VMs {seen[node]} and {vm} both end on {node}"
        seen[node] = vm
    return None


def _moves_broken(t: Timeline, c: Any) -> str | None:
    """root: a member that runs never changes node; quarantine: nothing enters or leaves."""
    for a in t.actions:
        if c.kind == "root" and a.subject in c.vms:
            old = t.src.vms.get(a.subject)
            if old is not None and old.running and a.dst is not None and a.dst != old.host:
                return f"{a.kind.value} {a.subject} {a.src}->{a.dst} moves a rooted VM"
        if c.kind == "quarantine" and _crosses(a, c.nodes):
            return f"{a.kind.value} {a.subject} {a.src or '-'}->{a.dst} crosses the quarantine"
    return None


def _crosses(a: Action, nodes: tuple[str, ...]) -> bool:
    """Does `a` bring a VM into `nodes` or take one out of them by migration?"""
    if a.kind not in (ActionKind.MIGRATE, ActionKind.BOOT_VM, ActionKind.RESUME):
        return False
    return a.dst in nodes or (a.kind is ActionKind.MIGRATE and a.src in nodes)


def check_final(t: Timeline, constraints: Sequence[rules.Constraint], final: Final) -> None:
    for c in constraints:
        why = _final(t, c, final)
        if why:
            t.flag(_code(c.kind), f"{c.label()}: {why}")


def _code(kind: str) -> str:
    """Violation codes as the validator always spelled them: ``resource-capacity``..."""
    return "".join("-" + ch.lower() if ch.isupper() else ch for ch in kind)


# Continuous checks --------------------------------------------------------------------------


def _running_by_node(t: Timeline) -> dict[str, list[Stay]]:
    by_node: dict[str, list[Stay]] = defaultdict(list)
    for stays in t.stays.values():
        for s in stays:
            if s.running:
                by_node[s.node].append(s)
    return by_node


def _arrival_clash(
    t: Timeline,
    by_node: Mapping[str, list[Stay]],
    arrivals: Iterable[Stay],
    c: Any,
    clash: Callable[[str, str], bool],
) -> None:
    """Flag the first arrival of a VM beside a VM that `clash` says it must not meet."""
    for s in arrivals:
        if s.moved:
            for other in by_node.get(s.node, ()):
                overlap = other.start < s.end and s.start < other.end
                if other.vm != s.vm and overlap and clash(s.vm, other.vm):
                    t.flag(
                        "continuous-" + _code(c.kind),
                        f"{c.label()}: VM {s.vm} arrives on {s.node} at t={s.start} "
                        f"while VM {other.vm} is there",
                        s.start,
                    )
                    return


def _pair_rule(c: Any) -> Callable[[str, str], bool] | None:
    """For rules judged pairwise on a node: may these two VMs never meet?"""
    if c.kind == "spread":
        members = set(c.vms)
        return lambda a, b: a in members and b in members
    if c.kind == "lonely":
        members = set(c.vms)
        return lambda a, b: (a in members) != (b in members)
    if c.kind == "split":
        group = {v: i for i, g in enumerate(c.groups) for v in g}
        return lambda a, b: a in group and b in group and group[a] != group[b]
    return None


def check_continuous(t: Timeline, constraints: Sequence[rules.Constraint]) -> None:
    by_node: dict[str, list[Stay]] | None = None
    moved: list[Stay] | None = None
    for c in constraints:
        if not c.continuous:
            continue
        pair = _pair_rule(c)
        if pair is not None:
            by_node = by_node if by_node is not None else _running_by_node(t)
            if c.kind == "lonely":  # a stranger arriving beside a member breaks it too
                moved = moved or [s for stays in t.stays.values() for s in stays if s.moved]
                arrivals: Iterable[Stay] = moved
            else:
                arrivals = (s for v in c.vms_in_scope() for s in t.stays.get(v, ()))
            _arrival_clash(t, by_node, arrivals, c, pair)
        elif c.kind in ("ban", "fence", "among", "gather"):
            _arrivals_outside(t, c)
        elif c.kind in ("resourceCapacity", "runningCapacity"):
            _sweep(t, c)


def _arrivals_outside(t: Timeline, c: Any) -> None:
    """ban, fence, among, gather: where a member may arrive, from the rule's definition."""
    members = set(c.vms)
    for vm in c.vms:
        stays = t.stays.get(vm, [])
        for s in stays:
            if not s.moved:
                continue
            bad = None
            if c.kind == "ban" and s.node in c.nodes:
                bad = "a banned node"
            elif c.kind == "fence" and s.node not in c.nodes:
                bad = "a node outside the fence"
            elif c.kind == "among":
                first = stays[0]
                origin = first.node if first.running and not first.moved else None
                part = next((p for p in c.parts if origin in p), None)
                if part is not None and s.node not in part:
                    bad = f"a node outside the group of {origin}"
            elif c.kind == "gather":
                away = [
                    o.vm
                    for m in members - {vm}
                    for o in t.stays.get(m, [])
                    if o.running and o.node != s.node and o.start < s.end and s.start < o.end
                ]
                bad = f"a node away from VM {away[0]}" if away else None
            if bad:
                t.flag(
                    "continuous-" + _code(c.kind),
                    f"{c.label()}: VM {vm} arrives on {bad} ({s.node}) at t={s.start}",
                    s.start,
                )
                return


def _sweep(t: Timeline, c: Any) -> None:
    """resourceCapacity / runningCapacity on the nodes together, at every arrival."""
    nodes = set(c.nodes)
    events: list[tuple[int, int, bool]] = []
    for stays in t.stays.values():
        for s in stays:
            if s.node not in nodes or not s.running:
                continue
            q = s.demand.get(c.rc, 0) if c.kind == "resourceCapacity" else 1
            if q:
                events.append((s.start, q, s.moved))
                events.append((s.end, -q, False))
    events.sort(key=lambda e: (e[0], e[1]))
    total, i = 0, 0
    while i < len(events):
        now, arrival = events[i][0], False
        while i < len(events) and events[i][0] == now:
            total += events[i][1]
            arrival = arrival or events[i][2]
            i += 1
        if arrival and total > c.amount:
            what = c.rc if c.kind == "resourceCapacity" else "running VMs"
            t.flag(
                "continuous-" + _code(c.kind),
                f"{c.label()}: {total} {what} on the nodes at t={now} > {c.amount}",
                now,
            )
            return
