"""Every action of a decided plan says why, in words and figures.

Deciders give each action a short reason ("vmgrid policy: relieve c1-n4"). Before a plan
leaves the decision cycle, `explained` rewrites each reason from the snapshot it was decided
on: which node was beyond which threshold, by how much and for how long, what the action moves
and how much, what the destination's CPU and memory go from and to (actions counted in plan
order), and the rules that involve the VM. The decider's own words stay at the end::

    c1-n4 cpu 104% > 85% for 24 s: move vm-7 (1.2 cores, 512 MiB) to c1-n2 (cpu 31% -> 43%,
    memory 20% -> 27%); rules involved: web-spread [vmgrid policy: relieve c1-n4 ...]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    Trigger,
    TriggerKind,
    cpu_pressure,
)
from vmgrid.agents.cluster.decide.operator_policy import above_band, below_band
from vmgrid.agents.cluster.state.solver_view import memory_fraction
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeView
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import HOLDS_MEMORY_STATES, VmUsage
from vmgrid.solver.plan import Action, ActionKind

MIB = 1 << 20


@dataclass
class _Load:
    """A node's CPU (millicores) and held memory (bytes) as the plan's actions change them."""

    cpu: int
    memory: int
    cpu_cap: int
    memory_cap: int

    def pct(self) -> tuple[int, int]:
        return _pct(self.cpu, self.cpu_cap), _pct(self.memory, self.memory_cap)


def _pct(used: float, cap: float) -> int:
    return round(100 * used / max(1, cap))


def cores(millicores: int) -> str:
    """Millicores as cores for a sentence: 1200 -> "1.2 cores"."""
    return f"{millicores / 1000:.1f} cores"


def mib(size_bytes: int) -> str:
    """Bytes as MiB (or GiB from 10 GiB up) for a sentence."""
    if size_bytes >= 10 << 30:
        return f"{size_bytes / (1 << 30):.0f} GiB"
    return f"{size_bytes // MIB} MiB"


def node_figures(view: NodeView) -> str:
    """ "cpu 71% memory 40%" (and CPU pressure when reported) of a node now."""
    if view.usage is None:
        return "no report yet"
    cpu = _pct(view.usage.cpu_used_millicores, view.capacity.cpu_millicores)
    text = f"cpu {cpu}% memory {_pct(memory_fraction(view) * 100, 100)}%"
    pressure = cpu_pressure(view.usage)
    if pressure >= 0:
        text += f" cpu pressure {pressure:.0f}%"
    return text


def held_for_s(
    snapshot: ClusterSnapshot, view: NodeView, inside: Callable[[float, float], bool]
) -> float:
    """Seconds the node's samples have been `inside` (CPU, memory fractions), up to its last."""
    history = snapshot.node_history.get(view.node_id, ())
    if not history:
        return 0.0
    cap = max(1, view.capacity.cpu_millicores)
    memory = memory_fraction(view)
    start = history[-1][0]
    for sent_at, usage in reversed(history):
        if not inside(usage.cpu_used_millicores / cap, memory):
            break
        start = sent_at
    return (history[-1][0] - start) / 1e9


def trigger_clause(
    snapshot: ClusterSnapshot, trigger: Trigger, config: ControlConfig, node: str
) -> str:
    """Why the node is acted on: the threshold it crossed, with figures, or the request."""
    try:
        view = snapshot.node(node)
    except NotFound:
        return f"{node} (not reported)"
    if trigger.kind is TriggerKind.DRAIN:
        return f"{node} in maintenance ({node_figures(view)})"
    if trigger.kind is TriggerKind.UNDRAIN:
        return f"{node} left maintenance"
    if view.usage is None:
        return f"{node} ({trigger.reason})"
    cpu = _pct(view.usage.cpu_used_millicores, view.capacity.cpu_millicores)
    memory = _pct(memory_fraction(view) * 100, 100)
    band = config.operator_policy
    cpu_high, memory_high = round(band.cpu_high * 100), round(band.memory_high * 100)
    cpu_low, memory_low = round(band.cpu_low * 100), round(band.memory_low * 100)
    if trigger.kind is TriggerKind.OVERLOAD and node in trigger.nodes:
        held = held_for_s(snapshot, view, lambda c, m: above_band(band, c, m))
        parts = []
        if cpu > cpu_high:
            parts.append(f"cpu {cpu}% > {cpu_high}%")
        if memory > memory_high:
            parts.append(f"memory {memory}% > {memory_high}%")
        pressure = cpu_pressure(view.usage)
        if config.pressure_trigger > 0 and pressure > config.pressure_trigger:
            parts.append(f"cpu pressure {pressure:.0f}% > {config.pressure_trigger:g}%")
            held = max(held, config.hold_s)
        figures = " and ".join(parts) or f"cpu {cpu}% memory {memory}%"
        return f"{node} {figures} for {max(held, config.hold_s):.0f} s"
    below = cpu < cpu_low and memory < memory_low
    if trigger.kind is TriggerKind.UNDERLOAD and node in trigger.nodes:
        held = held_for_s(snapshot, view, lambda c, m: below_band(band, c, m))
        return (
            f"{node} cpu {cpu}% < {cpu_low}% and memory {memory}% < {memory_low}% for "
            f"{max(held, config.hold_s):.0f} s"
        )
    if below:
        return f"{node} {node_figures(view)}, below the band (cpu {cpu_low}%, memory {memory_low}%)"
    return f"{node} {node_figures(view)}"


def explained(snapshot: ClusterSnapshot, decision: Decision, config: ControlConfig) -> Decision:
    """`decision` with each action's reason in words and figures (see the module docstring)."""
    plan = decision.plan
    if plan is None or not plan.actions:
        return decision
    vms = {vm.uuid: (node, vm) for node, vm in snapshot.vms()}
    loads = {v.node_id: _load(v) for v in snapshot.nodes}
    naming: dict[str, list[str]] = {}  # vm uuid -> ids of the rules that name it
    for rule in snapshot.rules:
        for vm_uuid in rule.constraint.vms_in_scope():
            naming.setdefault(vm_uuid, []).append(rule.rule_id)
    actions = []
    for action in sorted(plan.actions, key=lambda a: (a.start_s, a.id)):
        rules = naming.get(action.subject, []) if action.dst else []
        reason = _reason(snapshot, decision.trigger, config, action, vms, loads, rules)
        actions.append(replace(action, reason=reason))
    actions.sort(key=lambda a: a.id)
    return replace(decision, plan=replace(plan, actions=tuple(actions)))


def _load(view: NodeView) -> _Load:
    cpu = view.usage.cpu_used_millicores if view.usage is not None else 0
    memory = sum(vm.memory_allocated_bytes for vm in view.vms if vm.state in HOLDS_MEMORY_STATES)
    return _Load(cpu, memory, view.capacity.cpu_millicores, view.capacity.memory_bytes)


def _reason(
    snapshot: ClusterSnapshot,
    trigger: Trigger,
    config: ControlConfig,
    action: Action,
    vms: dict[str, tuple[str, VmUsage]],
    loads: dict[str, _Load],
    rules: list[str],
) -> str:
    if action.kind.on_node:
        return action.reason
    found = vms.get(action.subject)
    vm = found[1] if found else None
    name = vm.name if vm is not None and vm.name else action.subject
    node = action.src or (found[0] if found else None) or action.dst or ""
    if trigger.kind is TriggerKind.UNDRAIN and action.dst:
        node = action.dst
    why = trigger_clause(snapshot, trigger, config, node) if node else trigger.reason
    what = _action_clause(action, name, vm, loads)
    kept = f"; rules involved: {', '.join(rules[:3])}" if rules else ""
    original = f" [{action.reason}]" if action.reason else ""
    return f"{why}: {what}{kept}{original}"


def _action_clause(action: Action, name: str, vm: VmUsage | None, loads: dict[str, _Load]) -> str:
    cpu = vm.cpu_used_millicores if vm is not None else 0
    memory = vm.memory_allocated_bytes if vm is not None else 0
    size = f"{cores(cpu)}, {mib(memory)}" if vm is not None else "size unknown"
    verb = {
        ActionKind.MIGRATE: "move",
        ActionKind.BOOT_VM: "start",
        ActionKind.RESUME: "resume",
        ActionKind.SUSPEND: "suspend",
        ActionKind.SHUTDOWN_VM: "shut down",
    }[action.kind]
    source = loads.get(action.src or "")
    if source is not None and action.kind in (ActionKind.MIGRATE, ActionKind.SHUTDOWN_VM):
        source.cpu -= cpu
        source.memory -= memory
    dest = loads.get(action.dst or "")
    if dest is None or action.kind in (ActionKind.SUSPEND, ActionKind.SHUTDOWN_VM):
        where = f" on {action.src}" if action.src else ""
        return f"{verb} {name} ({size}){where}"
    cpu_before, mem_before = dest.pct()
    dest.cpu += cpu
    dest.memory += memory if action.kind is not ActionKind.RESUME else 0
    cpu_after, mem_after = dest.pct()
    target = "to" if action.kind is ActionKind.MIGRATE else "on"
    return (
        f"{verb} {name} ({size}) {target} {action.dst} "
        f"(cpu {cpu_before}% -> {cpu_after}%, memory {mem_before}% -> {mem_after}%)"
    )
