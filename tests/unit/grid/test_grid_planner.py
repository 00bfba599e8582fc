"""The inter-cluster planner's decisions: relief, affinity, consolidation, and what it refuses."""

from __future__ import annotations

import pytest
from grid_builders import cluster, star, vm
from vmgrid.solver.grid import (
    ClusterSummary,
    GridInputError,
    GridPlan,
    Health,
    MoveKind,
    PlannerConfig,
    VmGroup,
    plan_grid,
)
from vmgrid.solver.grid.generate import GridShape, generate_grid


def cpu_after(plan: GridPlan, summaries: list[ClusterSummary]) -> dict[str, int]:
    """Each cluster's CPU usage once the plan has run, recomputed from the moves."""
    usage = {s.id: s.usage.cpu_millicores for s in summaries}
    demand = {v.id: v.demand.cpu_millicores for s in summaries for v in s.vms}
    for move in plan.moves:
        usage[move.src] -= demand[move.vm]
        usage[move.dst] += demand[move.vm]
    return usage


def hot(name: str, count: int = 19, cpu: int = 500) -> ClusterSummary:
    return cluster(name, [vm(f"{name}-{i}", cpu=cpu, memory=256) for i in range(count)])


def test_overload_relief_moves_load_to_the_cluster_with_headroom() -> None:
    summaries = [
        hot("a"),  # 95% CPU
        cluster("b", [vm("b-0", cpu=3000, memory=1024)]),
        cluster("c", [vm("c-0", cpu=7900, memory=1024)]),  # 79%: no room
    ]
    plan = plan_grid(star(["a", "b", "c"]), summaries)
    after = cpu_after(plan, summaries)
    assert plan.moves and {m.dst for m in plan.moves} == {"b"}
    assert all(
        m.kind is MoveKind.RELIEF and "overload relief: a cpu" in m.reason for m in plan.moves
    )
    assert after["a"] <= 8000 and after["b"] <= 8000
    assert (plan.stats.overloaded, plan.stats.relieved) == (1, 1)


def test_relief_prefers_the_wider_path() -> None:
    topology = star(["a", "b", "c"], links={"b": (200, 1.0), "c": (10_000, 1.0)})
    summaries = [hot("a"), cluster("b"), cluster("c")]
    plan = plan_grid(topology, summaries)
    assert plan.moves and {m.dst for m in plan.moves} == {"c"}
    assert all(m.path == ("a", "core", "c") and m.bottleneck_mbps == 10_000 for m in plan.moves)


def test_a_group_moves_whole() -> None:
    members = [vm(f"g-{i}", cpu=1500, memory=128) for i in range(3)]
    others = [vm(f"a-{i}", cpu=500, memory=2048) for i in range(10)]
    group = VmGroup("g", tuple(m.id for m in members), traffic_mbps=500)
    summaries = [cluster("a", members + others, groups=[group]), cluster("b"), cluster("c")]
    plan = plan_grid(star(["a", "b", "c"]), summaries)
    moved = [m for m in plan.moves if m.group_id == "g"]
    assert len(moved) == 3
    assert len({m.dst for m in moved}) == 1


def test_relief_sends_a_group_part_towards_its_other_members() -> None:
    topology = star(["a", "b", "c"], links={"b": (10_000, 5.0), "c": (10_000, 5.0)})
    local = [vm("g-a", cpu=4000, memory=256)]
    summaries = [
        cluster(
            "a",
            local + [vm(f"a-{i}", cpu=500, memory=4096) for i in range(11)],
            groups=[VmGroup("g", ("g-a",), 50)],
        ),
        cluster("b"),
        cluster("c", [vm("g-c")], groups=[VmGroup("g", ("g-c",), 50)]),
    ]
    plan = plan_grid(topology, summaries)
    grouped = [m for m in plan.moves if m.vm == "g-a"]
    assert grouped and grouped[0].dst == "c" and grouped[0].kind is MoveKind.RELIEF


def test_a_split_heavy_group_is_gathered_into_its_biggest_part() -> None:
    summaries = [
        cluster("a", [vm("g-1"), vm("g-2")], groups=[VmGroup("g", ("g-1", "g-2"), 400)]),
        cluster("b", [vm("g-3")], groups=[VmGroup("g", ("g-3",), 400)]),
    ]
    plan = plan_grid(star(["a", "b"]), summaries)
    assert [(m.vm, m.src, m.dst, m.kind) for m in plan.moves] == [
        ("g-3", "b", "a", MoveKind.AFFINITY)
    ]
    assert plan.stats.groups_gathered == 1


def test_a_light_split_group_is_left_alone() -> None:
    summaries = [
        cluster("a", [vm("g-1"), vm("g-2")], groups=[VmGroup("g", ("g-1", "g-2"), 5)]),
        cluster("b", [vm("g-3")], groups=[VmGroup("g", ("g-3",), 5)]),
    ]
    assert plan_grid(star(["a", "b"]), summaries).moves == ()


def idle_and_busy(allow: bool) -> list[ClusterSummary]:
    return [
        cluster("idle", [vm("i-0"), vm("i-1")], allow_consolidation=allow),  # 10% CPU
        cluster("busy", [vm(f"b-{i}") for i in range(5)]),  # 50% CPU
    ]


def test_consolidation_empties_a_cluster_that_allows_it() -> None:
    summaries = idle_and_busy(allow=True)
    plan = plan_grid(star(["idle", "busy"]), summaries)
    assert {(m.vm, m.dst, m.kind) for m in plan.moves} == {
        ("i-0", "busy", MoveKind.CONSOLIDATION),
        ("i-1", "busy", MoveKind.CONSOLIDATION),
    }
    assert plan.stats.consolidated == 1


def test_consolidation_only_when_allowed() -> None:
    topology = star(["idle", "busy"])
    assert plan_grid(topology, idle_and_busy(allow=False)).moves == ()
    off = PlannerConfig(consolidation=False)
    assert plan_grid(topology, idle_and_busy(allow=True), off).moves == ()


def test_consolidation_is_all_or_nothing() -> None:
    summaries = [
        cluster("idle", [vm("i-0", cpu=2000), vm("i-1", cpu=200)], allow_consolidation=True),
        cluster("busy", [vm(f"b-{i}", cpu=1000) for i in range(7)]),  # room for 1000 only
    ]
    plan = plan_grid(star(["idle", "busy"]), summaries)
    assert plan.moves == ()
    assert any("idle not consolidated" in note for note in plan.stats.notes)


def test_degraded_and_unreachable_clusters_receive_nothing() -> None:
    summaries = [
        hot("a"),
        cluster("b", health=Health.DEGRADED),
        cluster("c", health=Health.UNREACHABLE),
    ]
    plan = plan_grid(star(["a", "b", "c"]), summaries)
    assert plan.moves == ()
    assert plan.stats.unrelieved == 1
    assert any("no cluster has room" in note for note in plan.stats.notes)


def test_summary_for_a_cluster_missing_from_the_topology_is_rejected() -> None:
    with pytest.raises(GridInputError, match=r"cluster summary 'zz' has no node of kind 'cluster'"):
        plan_grid(star(["a", "b"]), [cluster("a"), cluster("zz")])


def test_group_member_must_be_a_movable_vm() -> None:
    summaries = [cluster("a", [vm("x")], groups=[VmGroup("g", ("x", "ghost"), 10)]), cluster("b")]
    with pytest.raises(GridInputError, match=r"group 'g' in cluster 'a': VM 'ghost' is not"):
        plan_grid(star(["a", "b"]), summaries)


def test_inconsistent_settings_are_rejected() -> None:
    with pytest.raises(GridInputError, match=r"target_ratio 0.9 must not exceed overload_ratio"):
        PlannerConfig(overload_ratio=0.8, target_ratio=0.9)
    with pytest.raises(GridInputError, match=r"overload_ratio 1.5 must be in \(0, 1\]"):
        PlannerConfig(overload_ratio=1.5)


def test_a_generated_grid_is_relieved_and_replayable() -> None:
    shape = GridShape(clusters=20, nodes_per_cluster=4, vms_per_node=10)
    first, again = generate_grid(shape, seed=3), generate_grid(shape, seed=3)
    assert first.summaries == again.summaries
    plan = plan_grid(first.topology, first.summaries)
    assert plan.stats.overloaded == plan.stats.relieved == 2
    assert plan.moves == plan_grid(again.topology, again.summaries).moves


def test_no_summaries_gives_an_empty_plan_with_a_note() -> None:
    from pathlib import Path

    from vmgrid.solver.grid import load_topology, plan_grid

    example = Path(__file__).parents[3] / "deploy/examples/topology-example.graphml"
    plan = plan_grid(load_topology(example), [])
    assert plan.moves == () and plan.stats.notes == ("no cluster summaries",)
