"""Pressure as an overload signal: what the decision sees of a node whose CPUs stall.

A node whose CPU pressure (PSI ``some avg10``) stays above ``control.pressure_trigger`` is
overloaded whatever its utilisation says (find_trigger counts it). Deciders reason in
capacity, so for the decision such a node's CPU capacity is what it uses now, less a tenth:
a node where tasks queue for CPUs has no CPU to spare, and relief moves at least a tenth of its
load off it. The snapshot the loop keeps, and every figure an operator sees, are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from vmgrid.agents.cluster.decide.control import ControlConfig, Trigger, TriggerKind, cpu_pressure
from vmgrid.agents.cluster.state.state import ClusterSnapshot

PRESSURED_SHARE = 0.9
"""Share of its current CPU use a pressured node is given as capacity by the decision."""


def pressured_nodes(
    snapshot: ClusterSnapshot, trigger: Trigger, config: ControlConfig
) -> list[str]:
    """The trigger's overloaded nodes whose last sample is above the pressure trigger."""
    if trigger.kind is not TriggerKind.OVERLOAD or config.pressure_trigger <= 0:
        return []
    out = []
    for node in trigger.nodes:
        history = snapshot.node_history.get(node, ())
        if history and cpu_pressure(history[-1][1]) > config.pressure_trigger:
            out.append(node)
    return out


def as_full(snapshot: ClusterSnapshot, nodes: list[str]) -> ClusterSnapshot:
    """`snapshot` with each of `nodes` given PRESSURED_SHARE of its CPU use as CPU capacity."""
    if not nodes:
        return snapshot
    chosen = set(nodes)
    views = []
    for view in snapshot.nodes:
        if view.node_id in chosen and view.usage is not None:
            cpu = max(1, int(view.usage.cpu_used_millicores * PRESSURED_SHARE))
            cpu = min(cpu, view.capacity.cpu_millicores)
            view = replace(view, capacity=replace(view.capacity, cpu_millicores=cpu))
        views.append(view)
    return replace(snapshot, nodes=tuple(views))
