"""Turn a source and a destination configuration into a timed, dependency-ordered plan.

Event-driven list scheduling: at each instant, actions that only release resources start at
once; an action that needs room on a node starts as soon as the node is online and holds the
VM's new demand on top of everything present or arriving there (a migrating VM holds its old
demand on its source until the migration ends). Every continuous rule is asked, through its
`admits_arrival` / `admits_departure` hooks, before each arrival and departure (pivots and
suspend/resume included), so it holds at every instant. When nothing can start and nothing runs,
the cycle is broken by migrating one VM to a pivot node that every rule allows (whitelists,
forbidden nodes, continuous hooks), else by suspend/resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.model import MEMORY, Model, ModelError, VMState
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.plan_rules import PlanState, RuleIndex, pivot_filter
from vmgrid.v1.errors import VmgridError


class PlanError(VmgridError, RuntimeError):
    """The destination cannot be reached by any ordering (should not happen for a valid dst)."""


@dataclass(frozen=True)
class PlannerOptions:
    """How long actions last and how many may share a node."""

    bandwidth_mbit: int | None = None
    """Bandwidth of one migration in Mbit/s; with it, migrate lasts memory*8/bandwidth seconds."""
    memory_resource: str = MEMORY
    """The resource (MiB) whose size drives migration durations."""
    max_inbound_per_node: int | None = None
    """Cap on concurrent inbound migrations per node (NIC sharing); None = capacity only."""
    nic_mbit: int | None = None
    """Per-NIC bandwidth model (None: off, BtrPlace's semantics). Every node's NIC carries this
    many Mbit/s of migration traffic in each direction (full duplex: a node's outbound and
    inbound migrations do not compete); a migration reserves its share on the source's outbound
    and the destination's inbound side for its whole duration, lasts memory*8/share seconds (at
    least its ``migrate`` attribute), and starts only when both sides have the share free, so
    concurrent migrations through one NIC direction split its bandwidth. With the model on,
    each migration also depends on the migrations that freed its NIC sides (the executor keeps
    the planned order), and the migrations of the busiest NIC sides are started first."""
    nic_mbit_by_node: Mapping[str, int] = field(default_factory=dict)
    """Per-node NIC bandwidth overriding `nic_mbit` (turns the model on for those nodes)."""
    suspend_across_nodes: bool = True
    """Break a migration cycle with no pivot node by suspending a VM and resuming it on its
    destination (BtrPlace's semantics: the image travels). Off where a suspended VM can only
    resume where it is (vmgrid's clusters pause in memory): such a cycle is a PlanError."""

    def __post_init__(self) -> None:
        for name, value in [
            ("bandwidth_mbit", self.bandwidth_mbit),
            ("nic_mbit", self.nic_mbit),
            *((f"nic_mbit_by_node[{n!r}]", b) for n, b in self.nic_mbit_by_node.items()),
        ]:
            if value is not None and value <= 0:
                raise ModelError(f"PlannerOptions.{name} = {value}: must be a positive Mbit/s")


@dataclass
class _Todo:
    kind: ActionKind
    vm: str
    src: str | None
    dst: str | None
    reason: str
    after: list[int] = field(default_factory=list)


class _Scheduler:
    def __init__(
        self,
        src: Model,
        dst: Model,
        opts: PlannerOptions,
        rules: Sequence[Constraint],
        reasons: Mapping[str, str],
        pivot_ok: Mapping[str, frozenset[str]],
    ) -> None:
        self.src, self.dst, self.opts = src, dst, opts
        self.reasons, self.pivot_ok = reasons, pivot_ok
        self.load = {n: {r: src.load(n, r) for r in src.resources} for n in src.nodes}
        self.present = {n: set(src.running_on(n)) for n in src.nodes}
        self.at: dict[str, set[str]] = {v: {n} for n, vs in self.present.items() for v in vs}
        self.inbound = {n: 0 for n in src.nodes}
        self.ready_at = {n: (0 if src.nodes[n].online else -1) for n in src.nodes}
        self.forbidden = frozenset(n for c in rules for n in c.forbidden_nodes())
        self.rules = RuleIndex(rules)
        self.view = PlanState(src, self.present, self.load, self.at, self.new_demand)
        self.actions: list[Action] = []
        self.running: list[tuple[int, Action, _Todo]] = []
        self.departed: dict[str, list[int]] = {n: [] for n in src.nodes}
        self.boot_id: dict[str, int] = {}
        self.nic = _nics(src, opts)
        self.nic_free = {side: self.nic[side[0]] for side in _sides(self.nic)}
        self.share: dict[int, int] = {}
        self.nic_frontier: dict[tuple[str, str], set[int]] = {}
        """NIC side -> the ended migrations whose bandwidth the next one on that side reuses."""

    def admitted(self, vm: str, node: str) -> bool:
        """Does every continuous rule let `vm` start arriving on `node` now?"""
        return self.rules.admits_arrival(self.view, vm, node)

    def may_leave(self, vm: str, node: str | None) -> bool:
        """Does every continuous rule let `vm` start leaving `node` now?"""
        return node is None or self.rules.admits_departure(self.view, vm, node)

    def share_mbit(self, src: str | None, dst: str) -> int | None:
        """Bandwidth a migration src -> dst reserves on both NICs (None: NIC model off)."""
        if src is None or (src not in self.nic and dst not in self.nic):
            return None
        ends = [self.nic[n] for n in (src, dst) if n in self.nic]
        return max(1, min([*ends, self.opts.bandwidth_mbit or min(ends)]))

    def nic_has_room(self, src: str | None, dst: str) -> bool:
        share = self.share_mbit(src, dst)
        return share is None or all(self.nic_free[side] >= share for side in self.sides(src, dst))

    def sides(self, src: str | None, dst: str | None) -> list[tuple[str, str]]:
        """The NIC sides a migration src -> dst crosses: src outbound, dst inbound."""
        out = [(src, OUT)] if src is not None and src in self.nic else []
        return out + ([(dst, IN)] if dst is not None and dst in self.nic else [])

    def duration(self, kind: ActionKind, vm: str, bandwidth_mbit: int | None = None) -> int:
        v = self.src.vms[vm]
        if kind is ActionKind.MIGRATE:
            base = v.duration_s("migrate")
            bandwidth = bandwidth_mbit or self.opts.bandwidth_mbit
            if bandwidth:
                mem = v.need(self.opts.memory_resource)
                base = max(base, math.ceil(mem * 8 / bandwidth))
            return base
        attr = {
            ActionKind.BOOT_VM: "boot",
            ActionKind.SHUTDOWN_VM: "shutdown",
            ActionKind.SUSPEND: "suspend",
            ActionKind.RESUME: "resume",
        }[kind]
        return v.duration_s(attr)

    def new_demand(self, vm: str) -> Mapping[str, int]:
        return self.dst.vms[vm].demand

    def fits(self, vm: str, node: str, now: int, src: str | None = None) -> bool:
        """Can `vm` start arriving on `node` at `now` (from `src` when it migrates)? Capacity,
        NIC and every continuous rule, for the arrival and for the departure from `src`."""
        if self.ready_at[node] < 0 or self.ready_at[node] > now:
            return False
        if not self.nic_has_room(src, node):
            return False
        cap = self.src.nodes[node].capacity
        load = self.load[node]
        for r, q in self.new_demand(vm).items():
            if q and load.get(r, 0) + q > cap.get(r, 0):
                return False
        if self.opts.max_inbound_per_node and self.inbound[node] >= self.opts.max_inbound_per_node:
            return False
        return self.may_leave(vm, src) and self.admitted(vm, node)

    def start(self, todo: _Todo, now: int) -> Action:
        share = None
        if todo.kind is ActionKind.MIGRATE and todo.dst is not None:
            share = self.share_mbit(todo.src, todo.dst)
        dur = self.duration(todo.kind, todo.vm, share)
        deps = list(todo.after)
        if todo.dst is not None:
            for r, q in self.new_demand(todo.vm).items():
                self.load[todo.dst][r] = self.load[todo.dst].get(r, 0) + q
            self.present[todo.dst].add(todo.vm)
            self.at.setdefault(todo.vm, set()).add(todo.dst)
            if todo.kind is ActionKind.MIGRATE:
                self.inbound[todo.dst] += 1
            if now > 0:
                deps.extend(self.departed[todo.dst])
            if todo.dst in self.boot_id:
                deps.append(self.boot_id[todo.dst])
        if share is not None:
            for side in self.sides(todo.src, todo.dst):
                deps.extend(self.nic_frontier.get(side, ()))
        action = Action(
            len(self.actions),
            todo.kind,
            todo.vm,
            todo.src,
            todo.dst,
            now,
            now + dur,
            todo.reason,
            tuple(sorted(set(deps))),
        )
        self.actions.append(action)
        self.running.append((action.end_s, action, todo))
        if share is not None:
            self.share[action.id] = share
            for side in self.sides(todo.src, todo.dst):
                self.nic_free[side] -= share
        return action

    def finish(self, action: Action, todo: _Todo) -> None:
        if todo.src is not None:
            old = self.src.vms[todo.vm]
            if old.host == todo.src and old.running:
                for r, q in old.demand.items():
                    self.load[todo.src][r] -= q
            elif todo.src in self.load:  # leaving a pivot: it held the new demand there
                for r, q in self.new_demand(todo.vm).items():
                    self.load[todo.src][r] -= q
            self.present[todo.src].discard(todo.vm)
            self.at.get(todo.vm, set()).discard(todo.src)
            self.departed[todo.src].append(action.id)
        if todo.kind is ActionKind.MIGRATE and todo.dst is not None:
            self.inbound[todo.dst] -= 1
        share = self.share.pop(action.id, None)
        if share is not None:
            for side in self.sides(todo.src, todo.dst):
                self.nic_free[side] += share
                before = self.nic_frontier.get(side, set()) - set(action.depends_on)
                self.nic_frontier[side] = before | {action.id}


OUT, IN = "out", "in"


def _sides(nics: Mapping[str, int]) -> list[tuple[str, str]]:
    return [(n, d) for n in nics for d in (OUT, IN)]


def _nics(src: Model, opts: PlannerOptions) -> dict[str, int]:
    """Node -> NIC bandwidth in Mbit/s for the nodes under the NIC model."""
    out = {n: opts.nic_mbit for n in src.nodes} if opts.nic_mbit else {}
    out.update({n: b for n, b in opts.nic_mbit_by_node.items() if n in src.nodes})
    return {n: int(b) for n, b in out.items() if b is not None}


def build_plan(
    src: Model,
    dst: Model,
    constraints: Sequence[Constraint] = (),
    options: PlannerOptions | None = None,
    reasons: Mapping[str, str] | None = None,
    pivot_allowed: Mapping[str, frozenset[str]] | None = None,
) -> Plan:
    """Schedule the actions that turn `src` into `dst`; `reasons` explains each VM's move."""
    opts = options or PlannerOptions()
    why = dict(reasons or {})
    s = _Scheduler(src, dst, opts, constraints, why, pivot_filter(src, constraints, pivot_allowed))
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
            s.running.append((a.end_s, a, _Todo(ActionKind.BOOT_NODE, name, None, None, "")))
    now, breaks = 0, 2 * len(pending) + len(src.nodes)
    while pending or s.running:
        progressed = _start_ready(s, pending, now)
        if not s.running and pending and not progressed:
            breaks -= 1
            if breaks < 0:  # a destination no ordering reaches: pivots would go round forever
                raise PlanError(f"no progress after cycle breaks: {_stuck(pending)}")
            _break_cycle(s, pending, now)
            continue
        if not s.running:
            break
        now = min(end for end, _, _ in s.running)
        ended = [(a, t) for end, a, t in s.running if end == now]
        s.running = [x for x in s.running if x[0] != now]
        for a, t in ended:
            s.finish(a, t)
    _shutdown_nodes(s, src, dst)
    return Plan(src, dst, tuple(s.actions))


def _todos(src: Model, dst: Model, why: Mapping[str, str]) -> list[_Todo]:
    out = []
    for name, old in src.vms.items():
        new = dst.vms[name]
        reason = why.get(name, "")
        if old.state is VMState.RUNNING and new.state is VMState.RUNNING and old.host != new.host:
            out.append(_Todo(ActionKind.MIGRATE, name, old.host, new.host, reason or "placement"))
        elif old.state is VMState.READY and new.state is VMState.RUNNING:
            out.append(_Todo(ActionKind.BOOT_VM, name, None, new.host, reason or "VM must run"))
        elif old.state is VMState.RUNNING and new.state is VMState.READY:
            out.append(_Todo(ActionKind.SHUTDOWN_VM, name, old.host, None, "VM must be ready"))
        elif old.state is VMState.RUNNING and new.state is VMState.SLEEPING:
            out.append(_Todo(ActionKind.SUSPEND, name, old.host, None, "VM must sleep"))
        elif old.state is VMState.SLEEPING and new.state is VMState.RUNNING:
            out.append(_Todo(ActionKind.RESUME, name, None, new.host, reason or "VM must run"))
    # Releasing actions first, then shortest first: fewer blocked starts, lower sum of end times.
    out.sort(key=lambda t: (t.dst is not None, src.vms[t.vm].need(MEMORY)))
    return out


def _start_ready(s: _Scheduler, pending: list[_Todo], now: int) -> bool:
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


def _busiest_side_first(s: _Scheduler, pending: list[_Todo]) -> Callable[[_Todo], tuple[int, ...]]:
    """Releasing actions first, then migrations whose NIC sides have the most left to carry,
    largest first: the busiest side bounds the makespan, so it must never idle."""
    work: dict[tuple[str, str], int] = {}
    for todo in pending:
        if todo.kind is ActionKind.MIGRATE:
            for side in s.sides(todo.src, todo.dst):
                work[side] = work.get(side, 0) + s.src.vms[todo.vm].need(s.opts.memory_resource)

    def key(todo: _Todo) -> tuple[int, ...]:
        if todo.kind is not ActionKind.MIGRATE:
            return (todo.dst is not None, 0, 0)
        load = max((work[side] for side in s.sides(todo.src, todo.dst)), default=0)
        return (True, -load, -s.src.vms[todo.vm].need(s.opts.memory_resource))

    return key


def _migration_src(todo: _Todo) -> str | None:
    return todo.src if todo.kind is ActionKind.MIGRATE else None


def _break_cycle(s: _Scheduler, pending: list[_Todo], now: int) -> None:
    """Nothing runs and nothing can start: move one VM aside (pivot), else suspend it."""
    for i, todo in enumerate(pending):
        if todo.kind is not ActionKind.MIGRATE:
            continue
        allowed = s.pivot_ok.get(todo.vm)
        for node in s.src.nodes:
            if node in (todo.src, todo.dst) or node in s.forbidden:
                continue
            if allowed is not None and node not in allowed:
                continue
            if not s.dst.nodes[node].online or not s.fits(todo.vm, node, now, todo.src):
                continue
            hop = _Todo(
                ActionKind.MIGRATE,
                todo.vm,
                todo.src,
                node,
                f"pivot through {node} to break a migration cycle",
            )
            a = s.start(hop, now)
            pending[i] = _Todo(ActionKind.MIGRATE, todo.vm, node, todo.dst, todo.reason, [a.id])
            return
    for i, todo in enumerate(pending):
        if not s.opts.suspend_across_nodes:
            break
        if todo.kind is ActionKind.MIGRATE and s.may_leave(todo.vm, todo.src):
            a = s.start(
                _Todo(
                    ActionKind.SUSPEND,
                    todo.vm,
                    todo.src,
                    None,
                    "suspend to break a migration cycle (no pivot node)",
                ),
                now,
            )
            pending[i] = _Todo(ActionKind.RESUME, todo.vm, None, todo.dst, todo.reason, [a.id])
            return
    raise PlanError(f"no action can start and no cycle can be broken: {_stuck(pending)}")


def _stuck(pending: list[_Todo]) -> str:
    return ", ".join(f"{t.kind.value} {t.vm}->{t.dst or '-'}" for t in pending[:5])


def _shutdown_nodes(s: _Scheduler, src: Model, dst: Model) -> None:
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
