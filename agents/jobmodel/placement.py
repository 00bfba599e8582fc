"""Placement of a job: one cluster for the whole group, then nodes by that cluster's solver.

Two stages, as in a scheduler's filter/score then bind:
1. `choose_clusters` filters the cluster summaries (health, pinned cluster, nodes named by
   ban/fence, headroom per resource including network, the largest node's room, enough nodes for
   spread) and ranks the survivors by the headroom the group leaves (most first). Each filtered
   cluster keeps its reason, so an operator sees why a job did not go there.
2. `place_in_cluster` adds the members as READY VMs to that cluster's model with a `running`
   constraint and the group's spread/gather/ban/fence, pins the VMs already running (a
   submission never migrates others) and calls the solver. All-or-nothing: a group is placed
   only when every member gets a node; else it is rejected with the solver's conflicts. With
   `tolerate_failures` > 0, HA admission control (`vmgrid.solver.admission`) must agree too.

`place_group` runs both. A rejection is a `Rejection` value, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vmgrid.agents.jobmodel.spec import JobSpec, NodeSize
from vmgrid.solver import CPU, MEMORY, NET, VM, Model, Problem, SolveOptions, VMState, solve
from vmgrid.solver.admission import HA_PRIORITY, admit
from vmgrid.solver.constraints import Ban, Constraint, Fence, Gather, Root, Running, Spread
from vmgrid.solver.cpsat import CpsatOptions

JOB_ATTRIBUTE = "job"


@dataclass(frozen=True)
class ClusterView:
    """What placement needs from a cluster summary.

    `free`: headroom summed over online nodes; `largest_free`: per resource, the most any one
    online node has left (a member bigger than that cannot go there).
    """

    id: str
    free: NodeSize
    largest_free: NodeSize
    nodes: frozenset[str]
    healthy: bool = True


@dataclass(frozen=True)
class ClusterChoice:
    """Clusters able to take the group, best first, and why the others were filtered."""

    ranked: tuple[str, ...]
    filtered: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """Why a group cannot be placed: the stage that refused, a reason, solver conflicts and
    the per-cluster reasons."""

    stage: str
    reason: str
    conflicts: tuple[str, ...] = ()
    clusters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupPlacement:
    """Every member's node in one cluster."""

    cluster_id: str
    hosts: Mapping[str, str]
    solver_status: str
    admission: str = ""


def view_of(cluster_id: str, model: Model, healthy: bool = True) -> ClusterView:
    """A `ClusterView` from a cluster's solver model (cpu millicores, mem MiB, net Mbit/s)."""
    online = model.online_nodes()

    def free(r: str) -> list[int]:
        return [max(0, model.slack(n, r)) for n in online] or [0]

    return ClusterView(
        id=cluster_id,
        free=NodeSize(sum(free(CPU)), sum(free(MEMORY)), sum(free(NET))),
        largest_free=NodeSize(max(free(CPU)), max(free(MEMORY)), max(free(NET))),
        nodes=frozenset(online),
        healthy=healthy,
    )


def choose_clusters(spec: JobSpec, views: Sequence[ClusterView]) -> ClusterChoice | Rejection:
    """Filter and rank clusters for the whole group of `spec`."""
    filtered: dict[str, str] = {}
    scores: dict[str, float] = {}
    for view in views:
        why = _filter(spec, view)
        if why:
            filtered[view.id] = why
        else:
            scores[view.id] = _headroom_left(spec, view)
    if not scores:
        detail = "; ".join(f"{c}: {r}" for c, r in sorted(filtered.items())) or "no clusters"
        return Rejection("cluster", f"no cluster can take the group ({detail})", (), filtered)
    ranked = tuple(sorted(scores, key=lambda c: (-scores[c], c)))
    return ClusterChoice(ranked, filtered)


def _filter(spec: JobSpec, view: ClusterView) -> str:
    k = len(spec.members)
    need = (spec.cpu_millicores, spec.memory_mib, spec.bandwidth_mbps)
    if not view.healthy:
        return "cluster is not healthy"
    if spec.cluster and spec.cluster != view.id:
        return f"job is pinned to cluster {spec.cluster}"
    usable = set(view.nodes) - set(spec.placement.ban)
    if spec.placement.fence:
        usable &= set(spec.placement.fence)
    if not usable:
        return "no node left after ban/fence"
    if spec.placement.spread and len(usable) < k:
        return f"spread needs {k} nodes, {len(usable)} usable"
    names = ("cpu millicores", "memory MiB", "network Mbit/s")
    for name, q, total, one in zip(
        names, need, _tuple(view.free), _tuple(view.largest_free), strict=True
    ):
        if q * k > total:
            return f"{name}: group needs {q * k}, {total} free"
        if spec.placement.gather and q * k > one:
            return f"{name}: gathered group needs {q * k} on one node, at most {one} free"
        if q > one:
            return f"{name}: one member needs {q}, at most {one} free on a node"
    return ""


def _headroom_left(spec: JobSpec, view: ClusterView) -> float:
    """The smallest fraction of free room the group leaves on any resource (higher is better)."""
    k = len(spec.members)
    need = (spec.cpu_millicores, spec.memory_mib, spec.bandwidth_mbps)
    fractions = [(t - q * k) / t for q, t in zip(need, _tuple(view.free), strict=True) if t > 0]
    return min(fractions, default=0.0)


def _tuple(size: NodeSize) -> tuple[int, int, int]:
    return (size.cpu_millicores, size.memory_mib, size.network_mbps)


def member_vms(spec: JobSpec) -> list[VM]:
    """The members as READY solver VMs carrying their HA priority and job name."""
    demand = {CPU: spec.cpu_millicores, MEMORY: spec.memory_mib, NET: spec.bandwidth_mbps}
    attrs: dict[str, str | int | float | bool] = {
        HA_PRIORITY: spec.ha_priority,
        JOB_ATTRIBUTE: spec.name,
    }
    return [VM(m, dict(demand), VMState.READY, None, dict(attrs)) for m in spec.members]


def group_constraints(spec: JobSpec, model: Model) -> list[Constraint]:
    """running + the group's spread/gather/ban/fence, restricted to this cluster's nodes."""
    vms = spec.members
    rules = spec.placement
    out: list[Constraint] = [Running(vms)]
    if rules.spread and len(vms) > 1:
        out.append(Spread(vms))
    if rules.gather and len(vms) > 1:
        out.append(Gather(vms))
    banned = tuple(n for n in rules.ban if n in model.nodes)
    if banned:
        out.append(Ban(vms, banned))
    if rules.fence:
        out.append(Fence(vms, tuple(n for n in rules.fence if n in model.nodes)))
    return out


def place_in_cluster(
    spec: JobSpec,
    cluster_id: str,
    model: Model,
    *,
    tolerate_failures: int = 0,
    options: SolveOptions | None = None,
    cluster_rules: Sequence[Constraint] = (),
) -> GroupPlacement | Rejection:
    """Nodes for every member in `model`, or a rejection naming the solver's conflicts.
    `cluster_rules` are the cluster's own placement rules: those that hold now and name only
    VMs and nodes of `model` are kept by the placement too."""
    clash = sorted(set(spec.members) & set(model.vms))
    if clash:
        return Rejection("nodes", f"VM name {clash[0]!r} already exists in {cluster_id}")
    members = member_vms(spec)
    world = model.with_vms(members)
    running = tuple(v.name for v in model.vms.values() if v.running)
    constraints = group_constraints(spec, world) + ([Root(running)] if running else [])
    draining = tuple(n for n, node in model.nodes.items() if node.attributes.get("draining"))
    if draining:  # maintenance: nothing new lands there
        constraints.append(Ban(tuple(spec.members), draining))
    constraints += [
        rule
        for rule in cluster_rules
        if set(rule.vms_in_scope()) <= set(model.vms)
        and set(rule.nodes_in_scope()) <= set(model.nodes)
        and rule.is_satisfied(model, model)
    ]
    opts = options or SolveOptions(cpsat=CpsatOptions(time_limit_s=5.0, num_workers=2))
    result = solve(Problem(world, constraints, "mttr"), opts)
    dst = result.dst
    if dst is None:
        reason = f"{cluster_id}: the solver found no placement for every member ({result.status})"
        if result.conflicts:
            reason += f"; conflicting: {', '.join(result.conflicts)}"
        return Rejection("nodes", reason, result.conflicts)
    hosts = {m: dst.vms[m].host for m in spec.members}
    missing = [m for m, h in hosts.items() if h is None or not dst.vms[m].running]
    if missing:
        return Rejection("nodes", f"{cluster_id}: member {missing[0]} got no node")
    placed = {m: str(h) for m, h in hosts.items()}
    verdict = ""
    if tolerate_failures > 0:
        decision = admit(model, [v.on(placed[v.name]) for v in members], tolerate_failures)
        if not decision.admitted:
            return Rejection("admission", f"{cluster_id}: HA admission refused: {decision.reason}")
        verdict = decision.reason
    return GroupPlacement(cluster_id, placed, result.status, verdict)


def place_group(
    spec: JobSpec,
    clusters: Mapping[str, Model],
    *,
    tolerate_failures: int = 0,
    healthy: Mapping[str, bool] | None = None,
    max_clusters: int = 3,
    options: SolveOptions | None = None,
) -> GroupPlacement | Rejection:
    """Choose one cluster and its nodes for the whole group; try up to `max_clusters` in rank
    order when a cluster's solver or admission refuses."""
    views = [view_of(c, m, (healthy or {}).get(c, True)) for c, m in sorted(clusters.items())]
    choice = choose_clusters(spec, views)
    if isinstance(choice, Rejection):
        return choice
    reasons = dict(choice.filtered)
    last: Rejection | None = None
    for cluster_id in choice.ranked[:max_clusters]:
        outcome = place_in_cluster(
            spec,
            cluster_id,
            clusters[cluster_id],
            tolerate_failures=tolerate_failures,
            options=options,
        )
        if isinstance(outcome, GroupPlacement):
            return outcome
        reasons[cluster_id] = outcome.reason
        last = outcome
    assert last is not None
    return Rejection(last.stage, last.reason, last.conflicts, reasons)
