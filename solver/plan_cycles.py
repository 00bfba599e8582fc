"""Breaking the planner's deadlocks: nothing runs and no pending action can start.

A wave first: for every destination node that some blocked arrival waits for, the VMs still on
it that must leave anyway (they wait for room elsewhere) are moved aside, onto pivot nodes, just
enough of them for the smallest waiting arrival to fit; each such departure unblocks an arrival,
so the schedule moves on, and the pivots go where they block nobody (nodes no arrival waits for
first). Only when no wave can be started: one VM to any pivot
node, else suspend on its source and resume on its destination. Every pivot asks capacity, the
NIC, every rule's whitelist and forbidden nodes and every continuous rule (`Scheduler.fits`).
"""

from __future__ import annotations

from collections.abc import Mapping

from vmgrid.solver.plan import ActionKind
from vmgrid.solver.plan_scheduler import PlanError, Scheduler, Todo


def break_cycle(s: Scheduler, pending: list[Todo], now: int) -> None:
    """Start pivots (or a suspend) so that some blocked action can start; PlanError if none."""
    if _pivot_wave(s, pending, now, anywhere=False) or _pivot_wave(s, pending, now, anywhere=True):
        return
    for i, todo in enumerate(pending):
        if todo.kind is not ActionKind.MIGRATE or todo.vm in s.pivoted:
            continue
        for node in s.src.nodes:
            if node not in (todo.src, todo.dst) and may_pivot(s, todo, node, now):
                _pivot(s, pending, i, node, now)
                return
    for i, todo in enumerate(pending):
        if not s.opts.suspend_across_nodes:
            break
        if todo.kind is ActionKind.MIGRATE and s.may_leave(todo.vm, todo.src):
            a = s.start(
                Todo(
                    ActionKind.SUSPEND,
                    todo.vm,
                    todo.src,
                    None,
                    "suspend to break a migration cycle (no pivot node)",
                ),
                now,
            )
            pending[i] = Todo(ActionKind.RESUME, todo.vm, None, todo.dst, todo.reason, [a.id])
            return
    raise PlanError(f"no action can start and no cycle can be broken: {stuck(pending)}")


def stuck(pending: list[Todo]) -> str:
    return ", ".join(f"{t.kind.value} {t.vm}->{t.dst or '-'}" for t in pending[:5])


def may_pivot(s: Scheduler, todo: Todo, node: str, now: int) -> bool:
    """May `todo`'s VM stop over on `node` now: a node online now that no rule forbids (a node
    that only empties to be switched off is fine: its shutdown waits for every departure),
    allowed by every rule's whitelist, with room, and admitted by every continuous rule."""
    if node in s.forbidden:
        return False
    allowed = s.pivot_ok.get(todo.vm)
    if allowed is not None and node not in allowed:
        return False
    return s.fits(todo.vm, node, now, todo.src)


def _pivot(s: Scheduler, pending: list[Todo], i: int, node: str, now: int) -> None:
    todo = pending[i]
    hop = Todo(
        ActionKind.MIGRATE,
        todo.vm,
        todo.src,
        node,
        f"pivot through {node} to break a migration cycle",
    )
    a = s.start(hop, now)
    s.pivoted.add(todo.vm)
    pending[i] = Todo(ActionKind.MIGRATE, todo.vm, node, todo.dst, todo.reason, [a.id])


def _excess(s: Scheduler, vm: str, node: str) -> dict[str, int]:
    """What `node` lacks, per resource, for `vm` to arrive now."""
    cap = s.src.nodes[node].capacity
    load = s.load[node]
    out = {}
    for r, q in s.new_demand(vm).items():
        over = load.get(r, 0) + q - cap.get(r, 0)
        if q and over > 0:
            out[r] = over
    return out


def _pivot_wave(s: Scheduler, pending: list[Todo], now: int, anywhere: bool) -> bool:
    """For each node that blocked arrivals wait for, pivot away enough of the VMs that must
    leave it for its smallest waiting arrival to fit; True when some pivot started. Pivots go
    to nodes no arrival waits for; `anywhere`: to those first, then to any node with room, but
    never a VM moved aside before (so pivots cannot go round)."""
    waiting: dict[str, list[Todo]] = {}
    leaving: dict[str, list[int]] = {}
    for i, todo in enumerate(pending):
        if todo.dst is not None and s.ready_at[todo.dst] >= 0 and s.ready_at[todo.dst] <= now:
            waiting.setdefault(todo.dst, []).append(todo)
        if todo.kind is ActionKind.MIGRATE and todo.src is not None:
            leaving.setdefault(todo.src, []).append(i)
    order = [n for n in s.src.nodes if n not in waiting and s.ready_at[n] >= 0]
    if anywhere:
        order += [n for n in waiting if s.ready_at[n] >= 0]
    used: set[int] = set()
    moved: set[str] = set()
    served: set[str] = set()
    """VMs a pivot of this wave makes room for: they are not moved aside themselves."""
    for node in sorted(waiting, key=lambda n: -len(waiting[n])):
        wanted = [
            (_excess(s, t.vm, node), t.vm)
            for t in waiting[node]
            if t.vm not in served and t.vm not in moved
        ]
        need, vm = min(
            ((e, v) for e, v in wanted if e), key=lambda ev: sum(ev[0].values()), default=({}, "")
        )
        if not need:
            continue  # blocked by a rule or the NIC, not by room: the fallback handles it
        leavers = [
            i
            for i in leaving.get(node, ())
            if i not in used
            and pending[i].vm not in served
            and not (anywhere and pending[i].vm in s.pivoted)
        ]
        chosen = _cover(s, pending, leavers, need)
        if chosen is None:
            continue
        for i in chosen:
            target = next(
                (p for p in order if p != node and may_pivot(s, pending[i], p, now)), None
            )
            if target is None or pending[i].dst == target:
                break
            _pivot(s, pending, i, target, now)
            used.add(i)
            moved.add(pending[i].vm)
        served.add(vm)
    return bool(used)


def _cover(
    s: Scheduler, pending: list[Todo], leavers: list[int], need: Mapping[str, int]
) -> list[int] | None:
    """Fewest leaving VMs (largest first on the resources lacking) whose departure covers
    `need`; None when all of them together do not."""
    left = dict(need)

    def size(i: int) -> int:
        demand = s.src.vms[pending[i].vm].demand if _at_home(s, pending[i]) else None
        d = demand if demand is not None else s.new_demand(pending[i].vm)
        return sum(d.get(r, 0) * 1000 // max(q, 1) for r, q in need.items())

    chosen = []
    for i in sorted(leavers, key=size, reverse=True):
        if all(q <= 0 for q in left.values()):
            break
        todo = pending[i]
        held = s.src.vms[todo.vm].demand if _at_home(s, todo) else s.new_demand(todo.vm)
        if not any(held.get(r, 0) for r, q in left.items() if q > 0):
            continue
        chosen.append(i)
        for r in left:
            left[r] -= held.get(r, 0)
    return chosen if chosen and all(q <= 0 for q in left.values()) else None


def _at_home(s: Scheduler, todo: Todo) -> bool:
    """Is the VM on its source host (holding its old demand), not on a pivot?"""
    old = s.src.vms[todo.vm]
    return old.running and old.host == todo.src
