"""The planner's state while it schedules: what each node holds at the current instant, the
actions started so far, the NIC bandwidth in use, and the continuous rules asked before every
arrival and departure (`vmgrid.solver.planner` drives it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.model import MEMORY, Model, ModelError
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.plan_rules import PlanState, RuleIndex
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
class Todo:
    kind: ActionKind
    vm: str
    src: str | None
    dst: str | None
    reason: str
    after: list[int] = field(default_factory=list)


class Scheduler:
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
        self.pivoted: set[str] = set()
        """VMs moved aside once: a pivot onto a node that arrivals wait for is not repeated."""
        self.rules = RuleIndex(rules)
        self.view = PlanState(src, self.present, self.load, self.at, self.new_demand)
        self.actions: list[Action] = []
        self.running: list[tuple[int, Action, Todo]] = []
        self.departed: dict[str, list[int]] = {n: [] for n in src.nodes}
        self.boot_id: dict[str, int] = {}
        self.nic = nics(src, opts)
        self.nic_free = {side: self.nic[side[0]] for side in sides_of(self.nic)}
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
        return share_mbit(self.nic, self.opts, src, dst)

    def nic_has_room(self, src: str | None, dst: str) -> bool:
        share = self.share_mbit(src, dst)
        return share is None or all(self.nic_free[side] >= share for side in self.sides(src, dst))

    def sides(self, src: str | None, dst: str | None) -> list[tuple[str, str]]:
        """The NIC sides a migration src -> dst crosses: src outbound, dst inbound."""
        return nic_sides(self.nic, src, dst)

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

    def start(self, todo: Todo, now: int) -> Action:
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

    def finish(self, action: Action, todo: Todo) -> None:
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


def sides_of(nics: Mapping[str, int]) -> list[tuple[str, str]]:
    return [(n, d) for n in nics for d in (OUT, IN)]


def nics(src: Model, opts: PlannerOptions) -> dict[str, int]:
    """Node -> NIC bandwidth in Mbit/s for the nodes under the NIC model."""
    out = {n: opts.nic_mbit for n in src.nodes} if opts.nic_mbit else {}
    out.update({n: b for n, b in opts.nic_mbit_by_node.items() if n in src.nodes})
    return {n: int(b) for n, b in out.items() if b is not None}


def share_mbit(
    nic: Mapping[str, int], opts: PlannerOptions, src: str | None, dst: str
) -> int | None:
    """Bandwidth a migration src -> dst reserves on the NICs of `nic` (node -> Mbit/s) that it
    crosses: the slower end, capped by `opts.bandwidth_mbit` (None: NIC model off for both)."""
    if src is None or (src not in nic and dst not in nic):
        return None
    ends = [nic[n] for n in (src, dst) if n in nic]
    return max(1, min([*ends, opts.bandwidth_mbit or min(ends)]))


def nic_sides(nic: Mapping[str, int], src: str | None, dst: str | None) -> list[tuple[str, str]]:
    """The NIC sides of `nic` a migration src -> dst crosses: src outbound, dst inbound."""
    out = [(src, OUT)] if src is not None and src in nic else []
    return out + ([(dst, IN)] if dst is not None and dst in nic else [])
