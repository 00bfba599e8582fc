"""Turn a source and a destination configuration into a timed, dependency-ordered plan.

Event-driven list scheduling: at each instant, actions that only release resources start at
once; an action that needs room on a node starts as soon as the node is online and holds the
VM's new demand on top of everything present or arriving there (a migrating VM holds its old
demand on its source until the migration ends). Every continuous rule is asked, through its
`admits_arrival` / `admits_departure` hooks, before each arrival and departure (pivots and
suspend/resume included), so it holds at every instant. When nothing can start and nothing runs,
the deadlock is broken by moving VMs aside onto pivot nodes that every rule allows
(`vmgrid.solver.plan_cycles`: a wave of them, each freeing room that a blocked arrival waits
for), else by suspend/resume. With ``partial=True`` a schedule that cannot go further (or runs
out of time) ends with what it reached: the plan's `dst` is then the configuration its actions
lead to, a subset of the requested moves, valid at every instant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.model import MEMORY, Model, NodeState, VMState
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.plan_cycles import break_cycle, stuck
from vmgrid.solver.plan_rules import pivot_filter
from vmgrid.solver.plan_scheduler import PlanError, PlannerOptions, Scheduler, Todo


def build_plan(
    src: Model,
    dst: Model,
    constraints: Sequence[Constraint] = (),
    options: PlannerOptions | None = None,
    reasons: Mapping[str, str] | None = None,
    pivot_allowed: Mapping[str, frozenset[str]] | None = None,
    *,
    partial: bool = False,
    deadline: float | None = None,
) -> Plan:
    """Schedule the actions that turn `src` into `dst`; `reasons` explains each VM's move.

    PlanError when no ordering is found (or `deadline`, a `time.perf_counter()` instant, passes);
    with `partial`, the plan of the actions that could be ordered instead, whose `dst` is the
    configuration they reach (VMs whose move was not ordered stay where they are)."""
    opts = options or PlannerOptions()
    why = dict(reasons or {})
    s = Scheduler(src, dst, opts, constraints, why, pivot_filter(src, constraints, pivot_allowed))
    pending = _todos(src, dst, why)
    for name, node in src.nodes.items():
        if not node.online and dst.nodes[name].online:
            a = Action(
                len(s.actions),
                ActionKind.BOOT_NODE,
                name,
                None,
                name,
                0,
                node.duration_s("boot"),
                "node must be online at the end",
            )
            s.actions.append(a)
            s.boot_id[name] = a.id
            s.ready_at[name] = a.end_s
            s.running.append((a.end_s, a, Todo(ActionKind.BOOT_NODE, name, None, None, "")))
    now, breaks = 0, 2 * len(pending) + len(src.nodes)
    failure = ""
    while pending or s.running:
        if deadline is not None and not failure and time.perf_counter() > deadline:
            failure = f"out of time with {len(pending)} actions left: {stuck(pending)}"
        progressed = not failure and _start_ready(s, pending, now)
        if not s.running and pending and not progressed:
            if failure:
                break
            breaks -= 1
            if breaks < 0:  # a destination no ordering reaches: pivots would go round forever
                failure = f"no progress after cycle breaks: {stuck(pending)}"
                continue
            try:
                break_cycle(s, pending, now)
            except PlanError as exc:
                failure = str(exc)
            continue
        if not s.running:
            break
        now = min(end for end, _, _ in s.running)
        ended = [(a, t) for end, a, t in s.running if end == now]
        s.running = [x for x in s.running if x[0] != now]
        for a, t in ended:
            s.finish(a, t)
    if failure and not partial:
        raise PlanError(failure)
    reached = _reached(src, dst, pending) if pending else dst
    _shutdown_nodes(s, src, reached)
    return Plan(src, reached, tuple(s.actions))


def _reached(src: Model, dst: Model, pending: list[Todo]) -> Model:
    """The configuration reached when `pending` is dropped: each of those VMs where it is now,
    and every node that still hosts one online."""
    vms = []
    for todo in pending:
        old, new = src.vms[todo.vm], dst.vms[todo.vm]
        if todo.kind is ActionKind.MIGRATE and todo.src is not None:
            vms.append(replace(new, host=todo.src, state=VMState.RUNNING))
        elif todo.kind is ActionKind.RESUME and todo.after and old.running:
            vms.append(replace(new, host=old.host, state=VMState.SLEEPING))
        elif old.running:
            vms.append(replace(new, host=old.host, state=VMState.RUNNING))
        else:
            vms.append(replace(new, host=old.host, state=old.state))
    out = dst.with_vms(vms)
    keep = [
        replace(out.nodes[n], state=NodeState.ONLINE)
        for n in {v.host for v in vms if v.host is not None}
        if not out.nodes[n].online
    ]
    return out.with_nodes(keep) if keep else out


def _todos(src: Model, dst: Model, why: Mapping[str, str]) -> list[Todo]:
    out = []
    for name, old in src.vms.items():
        new = dst.vms[name]
        reason = why.get(name, "")
        if old.state is VMState.RUNNING and new.state is VMState.RUNNING and old.host != new.host:
            out.append(Todo(ActionKind.MIGRATE, name, old.host, new.host, reason or "placement"))
        elif old.state is VMState.READY and new.state is VMState.RUNNING:
            out.append(Todo(ActionKind.BOOT_VM, name, None, new.host, reason or "VM must run"))
        elif old.state is VMState.RUNNING and new.state is VMState.READY:
            out.append(Todo(ActionKind.SHUTDOWN_VM, name, old.host, None, "VM must be ready"))
        elif old.state is VMState.RUNNING and new.state is VMState.SLEEPING:
            out.append(Todo(ActionKind.SUSPEND, name, old.host, None, "VM must sleep"))
        elif old.state is VMState.SLEEPING and new.state is VMState.RUNNING:
            out.append(Todo(ActionKind.RESUME, name, None, new.host, reason or "VM must run"))
    # Releasing actions first, then shortest first: fewer blocked starts, lower sum of end times.
    out.sort(key=lambda t: (t.dst is not None, src.vms[t.vm].need(MEMORY)))
    return out


def _start_ready(s: Scheduler, pending: list[Todo], now: int) -> bool:
    started = False
    keep = []
    if s.nic:
        pending.sort(key=_busiest_side_first(s, pending))
    for todo in pending:
        if (
            todo.dst is None
            and s.may_leave(todo.vm, todo.src)
            or todo.dst is not None
            and s.fits(todo.vm, todo.dst, now, _migration_src(todo))
        ):
            s.start(todo, now)
            started = True
        else:
            keep.append(todo)
    pending[:] = keep
    return started


def _busiest_side_first(s: Scheduler, pending: list[Todo]) -> Callable[[Todo], tuple[int, ...]]:
    """Releasing actions first, then migrations whose NIC sides have the most left to carry,
    largest first: the busiest side bounds the makespan, so it must never idle."""
    work: dict[tuple[str, str], int] = {}
    for todo in pending:
        if todo.kind is ActionKind.MIGRATE:
            for side in s.sides(todo.src, todo.dst):
                work[side] = work.get(side, 0) + s.src.vms[todo.vm].need(s.opts.memory_resource)

    def key(todo: Todo) -> tuple[int, ...]:
        if todo.kind is not ActionKind.MIGRATE:
            return (todo.dst is not None, 0, 0)
        load = max((work[side] for side in s.sides(todo.src, todo.dst)), default=0)
        return (True, -load, -s.src.vms[todo.vm].need(s.opts.memory_resource))

    return key


def _migration_src(todo: Todo) -> str | None:
    return todo.src if todo.kind is ActionKind.MIGRATE else None


def _shutdown_nodes(s: Scheduler, src: Model, dst: Model) -> None:
    for name, node in src.nodes.items():
        if node.online and not dst.nodes[name].online:
            deps = s.departed[name]
            start = max((s.actions[d].end_s for d in deps), default=0)
            s.actions.append(
                Action(
                    len(s.actions),
                    ActionKind.SHUTDOWN_NODE,
                    name,
                    name,
                    None,
                    start,
                    start + node.duration_s("shutdown"),
                    "node must be offline at the end",
                    tuple(deps),
                )
            )


__all__ = ["PlanError", "PlannerOptions", "build_plan"]
