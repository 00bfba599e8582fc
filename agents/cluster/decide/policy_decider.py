"""The production decision for overload and underload cycles: vmgrid's ``DecisionPolicy``.

The ControlLoop still decides *when* to look (a trigger held for ``hold_s``, no plan running,
no cooldown, drains first) and whether a plan needs approval; this module decides *what*, with
the very policy the PlanetLab replay runs (``vmgrid.solver.decision``, see docs/replay.md):
relief of hosts above capacity and all-or-nothing consolidation of light hosts, with the
policy's own per-VM cooldown as hysteresis. The decider keeps the policy (its hysteresis
memory), the stable VM ids and the cycle counter for the life of the loop.

One manager-only addition: the policy fills hosts to a risk bound that includes two spreads of
each VM's recent changes. Seconds after a load step that spread is huge, and a VM asking a
whole node never fits anywhere with that headroom, so a held overload could stay unrelieved.
When the policy leaves a held-overloaded node overloaded, the same policy with no headroom
(``z = 0``: place on current demand) answers the relief instead, and says so.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    Trigger,
    TriggerKind,
    with_power_policy,
)
from vmgrid.agents.cluster.decide.move_limits import MoveHistory
from vmgrid.agents.cluster.decide.policy_limits import within_policy
from vmgrid.agents.cluster.decide.traffic_moves import toward_traffic
from vmgrid.agents.cluster.state.policy_view import (
    PolicyView,
    VmIds,
    eligible_nodes,
    plan_moves,
    to_policy_snapshot,
)
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.solver.decision import Decision as PolicyDecision
from vmgrid.solver.decision import DecisionPolicy, Move, PolicyConfig
from vmgrid.solver.plan import ActionKind, Plan


def policy_config(config: ControlConfig) -> PolicyConfig:
    """The policy's settings for this loop: production defaults, the band's CPU top as the
    fill and relief level, and the per-cycle migration budget."""
    band = config.operator_policy
    return PolicyConfig(
        max_moves=band.migrations_per_cycle or None,
        fill_level=band.cpu_high,
        overload_level=band.cpu_high,
    )


class PolicyDecider:
    """Stateful across cycles: the policy's hysteresis, VM ids and the cycle number."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self.policy = DecisionPolicy(self.config)
        self._no_headroom = DecisionPolicy(replace(self.config, z=0.0))
        self._full = DecisionPolicy(_full_capacity(self.config))
        self.ids = VmIds()
        self.step = 0
        self._before: DecisionPolicy | None = None

    def forget_last(self) -> None:
        """Undo the hysteresis memory of the last decision: its plan never ran (rejected,
        expired), so its VMs did not move and its hosts received nothing."""
        if self._before is not None:
            self.policy, self._before = self._before, None

    def view(self, snapshot: ClusterSnapshot, powered_off: bool = False) -> PolicyView:
        """The policy's view of `snapshot` for the next cycle (`powered_off`: nodes the manager
        powered off are hosts it may wake)."""
        return to_policy_snapshot(snapshot, self.ids, self.step, powered_off=powered_off)

    def follow(self, config: ControlConfig) -> None:
        """Take the operator policy's current band and budget (it may change at run time)."""
        wanted = policy_config(config)
        if wanted != self.config:
            self.config = wanted
            self.policy.config = wanted
            self._no_headroom.config = replace(wanted, z=0.0)
            self._full.config = _full_capacity(wanted)

    def decide(
        self,
        snapshot: ClusterSnapshot,
        trigger: Trigger,
        config: ControlConfig,
        history: MoveHistory | None = None,
    ) -> Decision:
        """The policy's moves for this cycle as a plan (None when nothing is to be moved)."""
        self.follow(config)
        wake = config.wake_powered_off
        if not eligible_nodes(snapshot, wake):
            return Decision(trigger, None, f"no node can host VMs ({trigger.reason})")
        view = self.view(snapshot, wake)
        self.step += 1
        self._before = copy.deepcopy(self.policy)
        result = self.policy.decide(view.snapshot)
        moves = list(result.moves)
        relieved = {m.source for m in moves if m.reason == "overload"}
        position = {n: i for i, n in enumerate(view.node_ids)}
        hot = {position[n] for n in trigger.nodes if n in position}
        stuck = [h for h in result.overloaded_hosts if h in hot and h not in relieved]
        relief_moves = sum(1 for m in moves if m.reason == "overload")
        budget = self.config.max_moves
        spent = budget is not None and relief_moves >= budget  # the rest waits for next cycle
        fallback = bool(stuck) and not spent and trigger.kind is TriggerKind.OVERLOAD
        beyond_band = False
        if fallback:
            relief = self._no_headroom.decide(view.snapshot).moves
            moves = [m for m in relief if m.reason == "overload"]
            if not any(m.source in stuck for m in moves):  # no room within the band
                relief = self._full.decide(view.snapshot).moves
                moves = [m for m in relief if m.reason == "overload"]
                beyond_band = bool(moves)
        emptied = {m.source for m in moves if m.reason == "consolidation"}
        if emptied and len(emptied) < config.min_gain_nodes:
            moves = [m for m in moves if m.reason != "consolidation"]
        band = config.operator_policy
        moves = toward_traffic(snapshot, view, moves, band.cpu_high, band.memory_high)
        held = set(trigger.nodes) if trigger.kind is TriggerKind.OVERLOAD else set()
        moves, waiting, notes = within_policy(snapshot, view, moves, config, history, held)
        memory_high = config.operator_policy.memory_high
        checked = plan_moves(snapshot, view, moves, memory_high, config.migration_link)
        stats: dict[str, object] = {
            "policy": "vmgrid",
            "step": self.step - 1,
            "overloaded_nodes": [view.node_ids[h] for h in result.overloaded_hosts],
            "used_cpsat": dict(result.used_solver),
            "no_headroom_relief": fallback,
            "beyond_band_relief": beyond_band,
            "skipped": list(checked.skipped),
            "waiting": list(waiting),
        }
        if checked.plan is None:
            self.forget_last()
            why = "; ".join([*checked.skipped, *waiting, *_over_budget(result, budget)])
            why = why or "no host is over the band or below it"
            return Decision(trigger, None, f"vmgrid policy: nothing to move ({why})", stats)
        plan = with_power_policy(_with_notes(checked.plan, notes), config.power_saving)
        summary = _summary(view, checked.moves, trigger, fallback)
        if beyond_band:
            summary += "; above the band: no node has room for them within it"
        woken = [a.subject for a in plan.actions if a.kind is ActionKind.BOOT_NODE]
        if woken:
            summary = f"{summary}; power on {', '.join(woken)} first"
        return Decision(trigger, plan, summary, stats, checked.active_nodes)


def _over_budget(result: PolicyDecision, budget: int | None) -> list[str]:
    """Why light hosts were left as they are when each holds more VMs than a cycle may move."""
    if not result.over_budget_hosts or result.moves:
        return []
    return [
        f"{result.over_budget_hosts} light node(s) each hold more VMs than the "
        f"{budget} migration(s) a cycle may start (migrations_per_cycle; a node is emptied "
        "whole or not at all)"
    ]


def _full_capacity(config: PolicyConfig) -> PolicyConfig:
    """The last resort of a relief that fits nowhere within the band: fill to capacity."""
    return replace(config, z=0.0, fill_level=1.0, overload_level=1.0)


def _with_notes(plan: Plan, notes: dict[str, str]) -> Plan:
    """Relief moves that break a minimum time say so in their reason."""
    if not notes:
        return plan
    actions = tuple(
        replace(a, reason=a.reason + notes[a.subject]) if a.subject in notes else a
        for a in plan.actions
    )
    return replace(plan, actions=actions)


def _summary(view: PolicyView, moves: tuple[Move, ...], trigger: Trigger, fallback: bool) -> str:
    parts = []
    relief = [m for m in moves if m.reason == "overload"]
    if relief:
        nodes = ", ".join(dict.fromkeys(view.node_ids[m.source] for m in relief))
        how = " without headroom" if fallback else ""
        parts.append(f"relieve {nodes}{how}: {len(relief)} migration(s)")
    merged = [m for m in moves if m.reason == "consolidation"]
    if merged:
        freed = len({m.source for m in merged})
        parts.append(f"consolidate: free {freed} node(s) with {len(merged)} migration(s)")
    return f"vmgrid policy: {'; '.join(parts)} ({trigger.reason})"
