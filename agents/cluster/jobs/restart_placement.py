"""Where a failed node's job member restarts: a pure choice over the solver's model (the HA
monitor acts on it; the N+1 check asks it for every node in turn)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.rules.check import involving, refusing_rules
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, VMState


@dataclass(frozen=True)
class RestartPlacement:
    """Where a member would restart after its node fails, and the rules that breaks."""

    node: str | None
    """None: no other connected node has memory for it."""
    broken: tuple[Rule, ...] = ()
    cpu_short: bool = False
    """The chosen node lacks room for its CPU or network (restarted all the same)."""


Slack = Callable[[str, str], int]
"""(node, resource) -> room left; the model's own by default."""


def restart_target(
    model: Model,
    rules: Iterable[Rule],
    member: Member,
    slack: Slack | None = None,
    rules_model: Callable[[], Model] | None = None,
) -> RestartPlacement:
    """Where `member` restarts: a node with memory for it that keeps every placement rule if
    there is one (most room first), else one with memory all the same. Pure: the HA monitor
    acts on it, and the N+1 check (capacity.py) asks it for every node in turn, with its own
    running `slack` and the model rules are checked on built only when a rule is involved
    (`rules_model`)."""
    room = slack or model.slack
    fits = _fitting(model, member, room)
    if not fits:
        return RestartPlacement(None)
    need = {CPU: member.cpu_millicores, NET: member.bandwidth_mbps}

    def short(n: str) -> bool:
        return any(room(n, r) < q for r, q in need.items())

    def rank(n: str) -> tuple[bool, int, str]:
        return (short(n), -room(n, MEMORY), n)

    involved = involving(rules, [member.vm_uuid], fits)
    if not involved:
        best = min(fits, key=rank)
        return RestartPlacement(best, (), short(best))
    placed = rules_model() if rules_model is not None else model
    arriving = as_vm(member)
    best = min(fits, key=rank)
    broken = refusing_rules(involved, placed, arriving, best)
    if not broken:
        return RestartPlacement(best, (), short(best))
    for node in sorted(fits, key=rank)[1:]:  # the best node that keeps every rule...
        if not refusing_rules(involved, placed, arriving, node):
            return RestartPlacement(node, (), short(node))
    return RestartPlacement(best, tuple(broken), short(best))  # ...else the best, naming them


def restart_reason(model: Model, member: Member, placement: RestartPlacement) -> str:
    """The HA restart in words and figures: what failed, where the member goes and what that
    node's memory and CPU go from and to, and any rule the choice breaks."""
    node = placement.node or "-"
    cap_mem, cap_cpu = model.nodes[node].cap(MEMORY), model.nodes[node].cap(CPU)
    mem, cpu = model.load(node, MEMORY), model.load(node, CPU)

    def pct(used: int, cap: int) -> int:
        return round(100 * used / max(1, cap))

    among = "the node with most free memory" + (
        " (no node with room keeps every rule)" if placement.broken else " that keeps the rules"
    )
    text = (
        f"{member.node_id} failed (fenced): restart {member.name} "
        f"({member.cpu_millicores / 1000:.1f} cores, {member.memory_mib} MiB, HA priority "
        f"{member.ha_priority}) on {node}, {among} "
        f"(memory {pct(mem, cap_mem)}% -> {pct(mem + member.memory_mib, cap_mem)}%, "
        f"cpu {pct(cpu, cap_cpu)}% -> {pct(cpu + member.cpu_millicores, cap_cpu)}%)"
    )
    if placement.broken:
        text += "; no node with room keeps " + ", ".join(r.rule_id for r in placement.broken)
    if placement.cpu_short:
        text += "; short of CPU there (restarted all the same)"
    return text


def as_vm(member: Member) -> VM:
    """The member as the solver's model sees it (demand in solver units, READY)."""
    demand = {CPU: member.cpu_millicores, MEMORY: member.memory_mib, NET: member.bandwidth_mbps}
    return VM(member.vm_uuid, demand, VMState.READY, None, {"ha_priority": member.ha_priority})


def _fitting(model: Model, member: Member, room: Slack) -> list[str]:
    """Connected nodes other than the member's failed one with memory for it. CPU and network
    are compressible: a restart is never refused for them, only steered (the ranking)."""
    return [
        n
        for n in model.online_nodes()
        if n != member.node_id and room(n, MEMORY) >= member.memory_mib
    ]
