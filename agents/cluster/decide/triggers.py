"""Why the decision loop acts: the triggers (a drain, a node held above or below the operator
policy's band, CPU pressure) found on a snapshot or on the manager's node gauges.

`find_trigger` reads a snapshot; `trigger_from` reads gauges (state/gauges.py), which the
manager's records give without building any VM's object: a forked decision process asks them
first and takes the snapshot only when there is something to do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmgrid.agents.cluster.decide.operator_policy import above_band, below_band
from vmgrid.agents.cluster.state.gauges import NodeGauge, gauge_of_view
from vmgrid.agents.cluster.state.host_window import HostWindow
from vmgrid.agents.cluster.state.nodes import NodeStatus
from vmgrid.agents.cluster.state.quiet import cpu_pressure as cpu_pressure
from vmgrid.agents.model import HostUsage

if TYPE_CHECKING:
    from vmgrid.agents.cluster.decide.control import ControlConfig
    from vmgrid.agents.cluster.state.state import ClusterSnapshot


class TriggerKind(enum.Enum):
    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    DRAIN = "drain"
    UNDRAIN = "undrain"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    nodes: tuple[str, ...]
    reason: str


def _fractions(
    history: Sequence[tuple[int, HostUsage]], gauge: NodeGauge, hold_s: float
) -> list[tuple[float, float, float]]:
    """(CPU, memory, CPU pressure) of the node's samples over the last `hold_s` seconds, or
    []: fractions of capacity, and the pressure's some avg10 in percent (-1: not reported).

    Time is measured on the node's own clock (its samples' timestamps), so clock skew between
    agent and manager does not shorten or stretch the hold time. Every sample from the newest
    one taken at least `hold_s` before the last (the anchor) up to the last counts: counting
    only the samples inside the window would let a window that holds one or two samples
    (reports a little more than a period apart) pass after one period.
    """
    if not history:
        return []
    times, cpu, pressure = _columns(history)
    start = times[-1] - hold_s * 1e9
    anchors = [i for i, t in enumerate(times) if t <= start]
    if not anchors:
        return []
    cap = max(1, gauge.cpu_millicores)
    memory = gauge.memory_fraction
    anchor = anchors[-1]
    return [(c / cap, memory, p) for c, p in zip(cpu[anchor:], pressure[anchor:], strict=True)]


def _columns(
    history: Sequence[tuple[int, HostUsage]],
) -> tuple[list[int], list[int], list[float]]:
    """Each sample's time, CPU and CPU pressure (a node's HostWindow gives them without
    building its samples' objects)."""
    if isinstance(history, HostWindow):
        return history.times(), history.cpu(), history.cpu_pressure()
    return (
        [t for t, _ in history],
        [s.cpu_used_millicores for _, s in history],
        [cpu_pressure(s) for _, s in history],
    )


def find_trigger(
    snapshot: ClusterSnapshot, config: ControlConfig, drains: bool = True
) -> Trigger | None:
    """The most urgent reason to reconfigure now, or None (`drains` False: the rebalancing
    triggers of the nodes not in maintenance, for when the drains can do no more)."""
    gauges = [gauge_of_view(v) for v in snapshot.nodes]
    return trigger_from(gauges, snapshot.node_history, config, drains)


def trigger_from(
    gauges: Sequence[NodeGauge],
    node_history: Mapping[str, Sequence[tuple[int, HostUsage]]],
    config: ControlConfig,
    drains: bool = True,
) -> Trigger | None:
    """`find_trigger` on the nodes' gauges (sorted by id) and windows of host samples: what
    a snapshot's views give, or the manager's records without building any VM's object
    (ClusterState.gauges)."""
    live = [g for g in gauges if g.status is NodeStatus.CONNECTED]
    draining = [g.node_id for g in live if g.draining and g.moves_on_drain]
    if draining and drains:
        return Trigger(TriggerKind.DRAIN, tuple(draining), f"nodes in maintenance: {draining}")
    if not drains:
        live = [g for g in live if not g.draining]
    band, pressure = config.operator_policy, config.pressure_trigger
    samples = {
        g.node_id: _fractions(node_history.get(g.node_id, ()), g, config.hold_s) for g in live
    }
    hot = [
        g
        for g in live
        if samples[g.node_id]
        and all(above_band(band, c, m) or 0 < pressure < p for c, m, p in samples[g.node_id])
    ]
    if hot:
        names = tuple(g.node_id for g in hot)
        also = f" or cpu pressure above {pressure:g} %" if pressure > 0 else ""
        return Trigger(
            TriggerKind.OVERLOAD,
            names,
            f"{_listed(names)} above the band (CPU {_pct(band.cpu_high)} / memory "
            f"{_pct(band.memory_high)}){also} for {config.hold_s:g} s",
        )
    cold = [
        g
        for g in live
        if g.vm_count
        and samples[g.node_id]
        and all(below_band(band, c, m) for c, m, _ in samples[g.node_id])
    ]
    if cold:
        names = tuple(g.node_id for g in cold)
        return Trigger(
            TriggerKind.UNDERLOAD,
            names,
            f"{_listed(names)} below the band (CPU {_pct(band.cpu_low)} / memory "
            f"{_pct(band.memory_low)}) for {config.hold_s:g} s",
        )
    return None


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"


def _listed(names: tuple[str, ...], shown: int = 5) -> str:
    """Node names for a message: the first few and how many more (a cluster has thousands)."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"
