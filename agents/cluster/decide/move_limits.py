"""The operator policy's limits on moves: budgets, minimum times, the band's low edge.

Deciders propose migrations; ``screen`` keeps those the operator policy allows and says why
the others wait. What counts across cycles (migrations of the last hour, when each VM last
moved and which nodes it left) is a ``MoveHistory`` the loop reads from the plan journal, so a
restarted manager keeps counting where it was.

- Rebalancing (consolidation, or any move no overload needs) keeps every limit; a node emptied
  by consolidation is emptied all or nothing, so one refused move refuses its node's others.
- Relief of an overload may break the minimum times (the reason says so); it keeps the
  per-cycle budget always, and the hourly budgets unless the node is above its full capacity.
- Drains are the operator's own request and only keep the band (see control.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy, below_band
from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.state.solver_view import memory_fraction
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeView
from vmgrid.solver.constraints import Ban, Constraint, Root, RunningCapacity
from vmgrid.solver.model import Model
from vmgrid.solver.plan import ActionKind, Plan

HOUR_S = 3600.0


@dataclass(frozen=True)
class PastMove:
    """A migration the journal holds (started, running or done)."""

    vm: str
    src: str
    dst: str
    at_unix_s: float


@dataclass(frozen=True)
class MoveHistory:
    """Recent migrations and the time they are judged at."""

    moves: tuple[PastMove, ...] = ()
    now_unix_s: float = 0.0

    def last_moved_ago(self, vm: str) -> float | None:
        """Seconds since `vm` last moved, None if it did not in the history."""
        times = [m.at_unix_s for m in self.moves if m.vm == vm]
        return self.now_unix_s - max(times) if times else None

    def left_ago(self, vm: str, node: str) -> float | None:
        """Seconds since `vm` last left `node`, None if it did not in the history."""
        times = [m.at_unix_s for m in self.moves if m.vm == vm and m.src == node]
        return self.now_unix_s - max(times) if times else None

    def last_hour(self) -> list[PastMove]:
        return [m for m in self.moves if self.now_unix_s - m.at_unix_s < HOUR_S]

    def per_node_last_hour(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for m in self.last_hour():
            counts[m.src] += 1
            counts[m.dst] += 1
        return counts


@dataclass(frozen=True)
class Proposal:
    """One migration a decider would like."""

    vm: str
    name: str
    src: str
    dst: str
    relief: bool
    """An overload needs it (else: rebalancing)."""
    group: str = ""
    """Proposals sharing a group go or wait together (a node consolidation empties)."""
    beyond_capacity: bool = False
    """Its source is above its full capacity: hourly budgets do not hold it back."""
    need: str = "overload relief"
    """What needs a relief move, said when it breaks a minimum time (or a broken rule)."""


@dataclass(frozen=True)
class Screened:
    kept: tuple[Proposal, ...]
    waiting: tuple[str, ...]
    """Why each refused proposal waits, one line each."""
    notes: dict[str, str] = field(default_factory=dict)
    """VM -> the limit its relief move breaks and why (added to the action's reason)."""


def screen(proposals: Sequence[Proposal], policy: OperatorPolicy, history: MoveHistory) -> Screened:
    """The proposals the policy allows, in order (relief first as given), and the others."""
    hour_left = _left(policy.migrations_per_hour, len(history.last_hour()))
    node_used = history.per_node_last_hour()
    cycle_left = _left(policy.migrations_per_cycle, 0)
    kept: list[Proposal] = []
    waiting: list[str] = []
    notes: dict[str, str] = {}
    refused_groups: set[str] = set()
    groups = _grouped(proposals)
    for group in groups:
        why = _group_refusal(group, policy, history, refused_groups)
        if why is None:
            why = _budget_refusal(group, policy, hour_left, node_used, cycle_left)
        if why is not None:
            waiting.extend(why)
            refused_groups.update(p.group for p in group if p.group)
            continue
        for p in group:
            note = _bypass_note(p, policy, history)
            if note:
                notes[p.vm] = note
            kept.append(p)
            cycle_left = None if cycle_left is None else cycle_left - 1
            if not (p.relief and p.beyond_capacity):
                hour_left = None if hour_left is None else hour_left - 1
            node_used[p.src] += 1
            node_used[p.dst] += 1
    return Screened(tuple(kept), tuple(waiting), notes)


def _left(limit: int, used: int) -> int | None:
    return None if limit == 0 else max(0, limit - used)


def _grouped(proposals: Sequence[Proposal]) -> list[list[Proposal]]:
    out: list[list[Proposal]] = []
    index: dict[str, int] = {}
    for p in proposals:
        if p.group and p.group in index:
            out[index[p.group]].append(p)
            continue
        if p.group:
            index[p.group] = len(out)
        out.append([p])
    return out


def _group_refusal(
    group: list[Proposal],
    policy: OperatorPolicy,
    history: MoveHistory,
    refused: set[str],
) -> list[str] | None:
    """Why a rebalancing group may not move (minimum times), None when it may."""
    lines: list[str] = []
    for p in group:
        if p.relief:
            continue
        moved = history.last_moved_ago(p.vm)
        if moved is not None and moved < policy.min_move_interval_s:
            lines.append(
                f"{p.name}: moved {_minutes(moved)} ago, stays {_minutes(policy.min_move_interval_s)}"
                " (min_move_interval_s)"
            )
        left = history.left_ago(p.vm, p.dst)
        if left is not None and left < policy.return_after_s:
            lines.append(
                f"{p.name} -> {p.dst}: left it {_minutes(left)} ago, may return after "
                f"{_minutes(policy.return_after_s)} (return_after_s)"
            )
    if not lines:
        return None
    return _with_group(group, lines)


def _budget_refusal(
    group: list[Proposal],
    policy: OperatorPolicy,
    hour_left: int | None,
    node_used: Counter[str],
    cycle_left: int | None,
) -> list[str] | None:
    size = len(group)
    if cycle_left is not None and size > cycle_left:
        return _with_group(
            group, [f"{group[0].name}: budget of {policy.migrations_per_cycle} per cycle spent"]
        )
    hourly = [p for p in group if not (p.relief and p.beyond_capacity)]
    if hour_left is not None and len(hourly) > hour_left:
        return _with_group(
            group,
            [f"{group[0].name}: budget of {policy.migrations_per_hour} migrations per hour spent"],
        )
    if policy.migrations_per_node_hour:
        extra: Counter[str] = Counter()
        for p in hourly:
            extra[p.src] += 1
            extra[p.dst] += 1
        for node, count in extra.items():
            if node_used[node] + count > policy.migrations_per_node_hour:
                return _with_group(
                    group,
                    [
                        f"{group[0].name}: {node} has had {node_used[node]} of its "
                        f"{policy.migrations_per_node_hour} migrations this hour"
                    ],
                )
    return None


def _with_group(group: list[Proposal], lines: list[str]) -> list[str]:
    if len(group) > 1 and group[0].group:
        lines.append(f"consolidation of {group[0].group} waits ({len(group)} VMs move together)")
    return lines


def _bypass_note(p: Proposal, policy: OperatorPolicy, history: MoveHistory) -> str:
    """The limit a relief move breaks, in words (empty when it breaks none)."""
    if not p.relief:
        return ""
    parts = []
    moved = history.last_moved_ago(p.vm)
    if moved is not None and moved < policy.min_move_interval_s:
        parts.append(f"moved {_minutes(moved)} ago")
    left = history.left_ago(p.vm, p.dst)
    if left is not None and left < policy.return_after_s:
        parts.append(f"left {p.dst} {_minutes(left)} ago")
    if not parts:
        return ""
    return f"; {p.need} overrides the minimum time ({', '.join(parts)})"


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def pinned(vms: Iterable[str], policy: OperatorPolicy, history: MoveHistory) -> list[str]:
    """VMs that moved less than ``min_move_interval_s`` ago (rebalancing leaves them)."""
    out = []
    for vm in vms:
        ago = history.last_moved_ago(vm)
        if ago is not None and ago < policy.min_move_interval_s:
            out.append(vm)
    return out


def recently_left(
    vms: Iterable[str], policy: OperatorPolicy, history: MoveHistory
) -> dict[str, list[str]]:
    """VM -> the nodes it left less than ``return_after_s`` ago."""
    out: dict[str, list[str]] = {}
    wanted = set(vms)
    for m in history.moves:
        if m.vm in wanted and history.now_unix_s - m.at_unix_s < policy.return_after_s:
            out.setdefault(m.vm, [])
            if m.src not in out[m.vm]:
                out[m.vm].append(m.src)
    return out


def policy_constraints(
    snapshot: ClusterSnapshot,
    model: Model,
    policy: OperatorPolicy,
    history: MoveHistory,
    underload: bool,
    draining: tuple[str, ...],
    spread: int | None,
) -> list[Constraint]:
    """Minimum times and the band's low edge for rebalancing (a VM a broken rule needs to
    move is free of them); the spread of a drain."""
    out: list[Constraint] = []
    if underload:
        broken = {
            vm for v in violations(snapshot.rules, model) for vm in v.rule.constraint.vms_in_scope()
        }
        running = [v for v in model.vms if model.vms[v].host is not None and v not in broken]
        stay = set(pinned(running, policy, history))
        for view in snapshot.nodes:
            if view.node_id in model.nodes and not _below_now(view, policy):
                stay.update(v for v in model.running_on(view.node_id) if v not in broken)
        if stay:
            out.append(Root(tuple(sorted(stay))))
        for vm, nodes in sorted(recently_left(running, policy, history).items()):
            host = model.vms[vm].host
            banned = tuple(n for n in nodes if n in model.nodes and n != host)
            if banned and vm not in stay:
                out.append(Ban((vm,), banned))
    if draining and spread is not None:
        leaving = [vm for node in draining if node in model.nodes for vm in model.running_on(node)]
        targets = [
            n for n in model.online_nodes() if n not in draining and not snapshot.node(n).draining
        ]
        if len(leaving) > 1 and len(targets) > 1:
            share = math.ceil(len(leaving) / (len(targets) if spread == 1 else 2))
            for node in targets:
                amount = len(model.running_on(node)) + share
                out.append(RunningCapacity((node,), amount))
    return out


def _below_now(view: NodeView, policy: OperatorPolicy) -> bool:
    cpu = (
        view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores) if view.usage else 0.0
    )
    return below_band(policy, cpu, memory_fraction(view))


def screened_plan(
    snapshot: ClusterSnapshot,
    plan: Plan,
    relief: bool,
    policy: OperatorPolicy,
    history: MoveHistory,
) -> Plan | str:
    """The solver's plan if the policy's budgets allow it all (with the reasons of relief moves
    that break a minimum time), else why it waits."""
    beyond = {
        v.node_id
        for v in snapshot.nodes
        if v.usage and v.usage.cpu_used_millicores > v.capacity.cpu_millicores
    }
    names = {vm.uuid: vm.name or vm.uuid for v in snapshot.nodes for vm in v.vms}
    broken = {
        vm: f"rule {v.rule.rule_id}"
        for v in violations(snapshot.rules, plan.src)
        for vm in v.rule.constraint.vms_in_scope()
    }
    proposals = [
        Proposal(
            a.subject,
            names.get(a.subject, a.subject),
            a.src,
            a.dst,
            relief or a.subject in broken,
            "" if relief else "plan",
            a.src in beyond,
            broken.get(a.subject, "overload relief"),
        )
        for a in plan.actions
        if a.kind is ActionKind.MIGRATE and a.src is not None and a.dst is not None
    ]
    screened = screen(proposals, policy, history)
    if len(screened.kept) < len(proposals):
        return "; ".join(dict.fromkeys(screened.waiting))
    if not screened.notes:
        return plan
    actions = tuple(
        replace(a, reason=a.reason + screened.notes[a.subject])
        if a.kind is ActionKind.MIGRATE and a.subject in screened.notes
        else a
        for a in plan.actions
    )
    return replace(plan, actions=actions)
