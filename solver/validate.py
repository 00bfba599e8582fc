"""Independent plan validator: replays a timed plan and lists every rule it breaks.

It shares nothing with the planner but the value types, so a planner bug cannot hide itself.
Semantics (BtrPlace's, as the issue states them):

- an action lasts at least the element's default duration (attribute ``migrate``, ``boot`` or
  ``shutdown``, else 1 s) and starts at t >= 0;
- a VM has one action at a time; a migration leaves the VM's current host towards another node;
  a VM boot places a ready VM;
- a migrating VM holds its consumption on its source until the migration ends and its new
  demand on its destination from the migration's start; staying VMs keep their old consumption
  until the end; a node never exceeds any capacity at any instant (intervals are half-open);
- a VM only arrives on a node that is online then (booted nodes from their boot's end); a node
  shuts down only when nothing is on it any more;
- suspend and VM shutdown take a running VM off its current host: it holds its old demand there
  until the action ends, then nothing anywhere (its image does not pin the node); resume brings
  a sleeping VM (suspended earlier in the plan, or sleeping in the source) onto any online node,
  holding its new demand there from the resume's start, as a boot does; the VM ends sleeping,
  ready or running according to its last action;
- at the end every online node fits the new demands and every rule holds; a continuous rule
  also holds at every arrival (`vmgrid.solver.validate_rules` checks each kind from its
  definition);
- the new demands come from the problem (each VM's demand with every `preserve` applied),
  never from the plan, so a plan cannot grade its own demands.

`validate` returns violations (empty means valid), each naming the action, node, resource and
time, so that a failing property test or benchmark says what went wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.model import Model, Resources, VMState
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.validate_rules import (
    Final,
    Stay,
    as_rules,
    check_continuous,
    check_final,
    preserved_demands,
)

NEVER = 2**62
"""A time after every action: the end of a presence that lasts past the plan."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule. `rule` is a stable code; `message` is one line for a human."""

    rule: str
    message: str
    time_s: int | None = None


_VM_DURATION = {
    ActionKind.MIGRATE: "migrate",
    ActionKind.BOOT_VM: "boot",
    ActionKind.SUSPEND: "suspend",
    ActionKind.RESUME: "resume",
    ActionKind.SHUTDOWN_VM: "shutdown",
}
"""VM actions the validator replays, with the attribute naming their default duration."""

_LEAVING = (ActionKind.SUSPEND, ActionKind.SHUTDOWN_VM)


def _show(a: Action) -> str:
    where = {
        ActionKind.MIGRATE: f" {a.src}->{a.dst}",
        ActionKind.BOOT_VM: f" on {a.dst}",
        ActionKind.RESUME: f" on {a.dst}",
        ActionKind.SUSPEND: f" on {a.src}",
        ActionKind.SHUTDOWN_VM: f" on {a.src}",
    }.get(a.kind, "")
    return f"{a.kind.value} {a.subject}{where} [{a.start_s},{a.end_s})"


class _Replay:
    def __init__(
        self,
        source: Model,
        demands: Mapping[str, Resources],
        actions: Sequence[Action],
    ) -> None:
        self.src = source
        self.demands = demands
        self.actions = actions
        self.out: list[Violation] = []
        self.stays: dict[str, list[Stay]] = defaultdict(list)  # by VM, in time order
        self.online_from: dict[str, int] = {}
        self.online_until: dict[str, int] = {}
        self.end_state: dict[str, VMState] = {}

    def flag(self, rule: str, message: str, time_s: int | None = None) -> None:
        self.out.append(Violation(rule, message, time_s))

    def run(self, constraints: Sequence[Constraint]) -> list[Violation]:
        vm_actions, node_actions = self._check_actions()
        self._nodes(node_actions)
        self._vms(vm_actions)
        self._arrivals()
        self._capacity_over_time()
        self._final(constraints)
        self._continuous(constraints)
        return self.out

    def _check_actions(self) -> tuple[dict[str, list[Action]], dict[str, list[Action]]]:
        vm_actions: dict[str, list[Action]] = defaultdict(list)
        node_actions: dict[str, list[Action]] = defaultdict(list)
        for a in self.actions:
            if a.kind in _VM_DURATION:
                vm = self.src.vms.get(a.subject)
                if vm is None:
                    self.flag("unknown", f"{_show(a)}: unknown VM {a.subject}")
                    continue
                minimum = vm.duration_s(_VM_DURATION[a.kind])
                vm_actions[a.subject].append(a)
            elif a.kind in (ActionKind.BOOT_NODE, ActionKind.SHUTDOWN_NODE):
                node = self.src.nodes.get(a.subject)
                if node is None:
                    self.flag("unknown", f"{_show(a)}: unknown node {a.subject}")
                    continue
                minimum = node.duration_s("boot" if a.kind is ActionKind.BOOT_NODE else "shutdown")
                node_actions[a.subject].append(a)
            else:
                self.flag("unsupported", f"{_show(a)}: action kind {a.kind.value} not checked")
                continue
            if a.start_s < 0:
                self.flag("time", f"{_show(a)}: starts before t=0", a.start_s)
            if a.end_s - a.start_s < minimum:
                self.flag(
                    "duration",
                    f"{_show(a)}: lasts {a.end_s - a.start_s}s, less than its {minimum}s",
                    a.start_s,
                )
        return vm_actions, node_actions

    def _nodes(self, node_actions: Mapping[str, list[Action]]) -> None:
        for name, node in self.src.nodes.items():
            start, end = (-NEVER, NEVER) if node.online else (NEVER, NEVER)
            acts = node_actions.get(name, [])
            if len(acts) > 1:
                self.flag("node-actions", f"node {name}: {len(acts)} actions, at most 1 allowed")
            for a in acts[:1]:
                if a.kind is ActionKind.BOOT_NODE and node.online:
                    self.flag("node-state", f"{_show(a)}: node {name} is already online")
                elif a.kind is ActionKind.BOOT_NODE:
                    start = a.end_s
                elif not node.online:
                    self.flag("node-state", f"{_show(a)}: node {name} is already offline")
                else:
                    end = a.start_s
            self.online_from[name] = start
            self.online_until[name] = end

    def _vms(self, vm_actions: Mapping[str, list[Action]]) -> None:
        for name, vm in self.src.vms.items():
            new = self.demands.get(name, vm.demand)
            stays = self.stays[name]
            state = vm.state
            if vm.host is not None:
                up = state is VMState.RUNNING
                stays.append(
                    Stay(name, vm.host, 0, NEVER, vm.demand if up else {}, False, None, up)
                )
            last_end = -NEVER
            for a in sorted(vm_actions.get(name, []), key=lambda x: (x.start_s, x.end_s)):
                if a.start_s < last_end:
                    self.flag("overlap", f"{_show(a)}: starts before the VM's previous action ends")
                last_end = max(last_end, a.end_s)
                if a.kind in _LEAVING:
                    state = self._leave(name, a, state, stays)
                    continue
                if a.dst is None or a.dst not in self.src.nodes:
                    self.flag("unknown", f"{_show(a)}: unknown destination node {a.dst}")
                    continue
                if a.kind is ActionKind.BOOT_VM:
                    if state is not VMState.READY:
                        self.flag("vm-state", f"{_show(a)}: VM {name} is {state.value}, not ready")
                        continue
                    state = VMState.RUNNING
                elif a.kind is ActionKind.RESUME:
                    if state is not VMState.SLEEPING:
                        self.flag("vm-state", f"{_show(a)}: VM {name} is {state.value}, not asleep")
                        continue
                    if stays and stays[-1].end == NEVER:  # asleep in the source: image leaves
                        stays[-1].end = a.start_s
                    state = VMState.RUNNING
                else:
                    here = stays[-1].node if stays else None
                    if state is not VMState.RUNNING or a.src != here:
                        where = f"on {here}" if here else "not placed"
                        self.flag(
                            "source",
                            f"{_show(a)}: VM {name} is {state.value} {where}, not on {a.src}",
                            a.start_s,
                        )
                        continue
                    if a.dst == here:
                        self.flag("source", f"{_show(a)}: source and destination are the same")
                        continue
                    stays[-1].end = a.end_s
                stays.append(Stay(name, a.dst, a.start_s, NEVER, new, True, a))
            self.end_state[name] = state

    def _leave(self, name: str, a: Action, state: VMState, stays: list[Stay]) -> VMState:
        """Suspend or shutdown: the running VM frees its host when the action ends."""
        here = stays[-1].node if stays and stays[-1].end == NEVER else None
        if state is not VMState.RUNNING or a.src != here:
            where = f"on {here}" if here else "not placed"
            self.flag(
                "source",
                f"{_show(a)}: VM {name} is {state.value} {where}, not on {a.src}",
                a.start_s,
            )
            return state
        stays[-1].end = a.end_s
        return VMState.SLEEPING if a.kind is ActionKind.SUSPEND else VMState.READY

    def _arrivals(self) -> None:
        """Destinations online on arrival; shut-down nodes empty from the shutdown's start."""
        for stays in self.stays.values():
            for s in stays:
                on, off = self.online_from[s.node], self.online_until[s.node]
                if s.action is not None and not on <= s.start < off:
                    self.flag(
                        "offline-destination",
                        f"{_show(s.action)}: node {s.node} is not online at t={s.start}",
                        s.start,
                    )
                elif off < NEVER and s.end > off and s.running:
                    self.flag(
                        "shutdown-non-empty",
                        f"node {s.node}: shuts down at t={off} while VM {s.vm} is still on it",
                        off,
                    )

    def _capacity_over_time(self) -> None:
        events: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for stays in self.stays.values():
            for s in stays:
                for rc, q in s.demand.items():
                    if q:
                        events[(s.node, rc)].append((s.start, q))
                        if s.end < NEVER:
                            events[(s.node, rc)].append((s.end, -q))
        for (node, rc), evs in events.items():
            cap = self.src.nodes[node].cap(rc)
            evs.sort()
            load, i = 0, 0
            while i < len(evs):
                t = evs[i][0]
                while i < len(evs) and evs[i][0] == t:
                    load += evs[i][1]
                    i += 1
                if load > cap and t < NEVER:
                    self.flag(
                        "capacity",
                        f"node {node}: {rc} load {load} exceeds capacity {cap} at t={t}",
                        t,
                    )
                    break

    def final_hosts(self) -> dict[str, str]:
        """VM -> node where it ends running."""
        return {
            vm: stays[-1].node
            for vm, stays in self.stays.items()
            if stays and self.end_state.get(vm) is VMState.RUNNING
        }

    def _final(self, constraints: Sequence[Constraint]) -> None:
        hosts = self.final_hosts()
        online = {n for n in self.src.nodes if self.online_until[n] == NEVER}
        online &= {n for n in self.src.nodes if self.online_from[n] < NEVER}
        load: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for vm, node in hosts.items():
            for rc, q in self.demands.get(vm, self.src.vms[vm].demand).items():
                load[node][rc] += q
        for node, per_rc in load.items():
            for rc, q in per_rc.items():
                if q > self.src.nodes[node].cap(rc):
                    cap = self.src.nodes[node].cap(rc)
                    self.flag("final-capacity", f"node {node}: ends with {rc} {q} > {cap}")
        check_final(self, constraints, Final(hosts, online, load))

    def _continuous(self, constraints: Sequence[Constraint]) -> None:
        check_continuous(self, constraints)


def validate(
    source: Model,
    actions: Iterable[Action],
    constraints: Iterable[Any] = (),
    demands: Mapping[str, Resources] | None = None,
) -> list[Violation]:
    """Check `actions` applied to `source` against `constraints` (solver rules or BtrPlace
    instance constraints); `demands` maps VMs to their new demand, by default each VM's demand
    with the `preserve` rules applied."""
    rules = as_rules(constraints)
    if demands is None:
        demands = preserved_demands(source, rules)
    return _Replay(source, demands, tuple(actions)).run(tuple(rules))


def validate_plan(plan: Any, constraints: Iterable[Any] = ()) -> list[Violation]:
    """Check a `vmgrid.solver.plan.Plan` against the problem's `constraints`; the new demands
    are the source's with the `preserve` rules applied, not those of the plan's destination."""
    return validate(plan.src, plan.actions, constraints)


def validate_btrplace_plan(instance_json: Any, plan_json: Any) -> list[Violation]:
    """Check an exported plan against the raw BtrPlace instance it answers.

    Each argument is a decoded JSON document or a path to one (gzip accepted).
    """
    from vmgrid.solver.btrplace.plan_io import plan_from_json
    from vmgrid.solver.btrplace.reader import parse_instance, read_json

    if isinstance(instance_json, str | Path):
        instance_json = read_json(instance_json)
    if isinstance(plan_json, str | Path):
        plan_json = read_json(plan_json)
    instance = parse_instance(instance_json)
    actions = plan_from_json(plan_json, instance)
    return validate(instance.source, actions, instance.constraints, instance.demands)
