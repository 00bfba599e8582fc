"""The link schedule: no link is ever oversubscribed, checked by an independent sweep."""

from __future__ import annotations

import networkx as nx
import pytest
from grid_builders import cluster, star, vm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vmgrid.solver.grid import (
    GridMove,
    MoveKind,
    PlannerConfig,
    Topology,
    find_oversubscriptions,
    plan_grid,
)
from vmgrid.solver.grid.schedule import Booking, LinkScheduler


def move(name: str, start: float, end: float, rate: int) -> GridMove:
    return GridMove(
        vm=name,
        src="a",
        dst="b",
        path=("a", "core", "b"),
        bottleneck_mbps=1000,
        rate_mbps=rate,
        memory_mib=1024,
        est_seconds=end - start,
        start_s=start,
        end_s=end,
        kind=MoveKind.RELIEF,
        reason="test",
    )


def test_checker_reports_overlapping_moves_beyond_bandwidth() -> None:
    topology = star(["a", "b"], bandwidth_mbps=1000)
    found = find_oversubscriptions([move("x", 0, 10, 600), move("y", 5, 15, 600)], topology)
    assert {o.link for o in found} == {("a", "core"), ("b", "core")}
    assert all(o.at_s == 5 and o.used_mbps == 1200 for o in found)


def test_checker_accepts_back_to_back_moves() -> None:
    topology = star(["a", "b"], bandwidth_mbps=1000)
    assert find_oversubscriptions([move("x", 0, 10, 1000), move("y", 10, 20, 1000)], topology) == []


def test_moves_that_each_fill_a_link_run_one_after_another() -> None:
    scheduler = LinkScheduler(star(["a", "b"], bandwidth_mbps=1000))
    links = (("a", "core"), ("b", "core"))
    starts = [scheduler.book(Booking(links, 1000, 10.0)) for _ in range(3)]
    assert starts == [0.0, 10.0, 20.0]


def test_a_move_fills_an_earlier_gap_when_it_fits() -> None:
    scheduler = LinkScheduler(star(["a", "b", "c"], bandwidth_mbps=1000))
    ab, bc = (("a", "core"), ("b", "core")), (("b", "core"), ("c", "core"))
    assert scheduler.book(Booking(ab, 1000, 10.0)) == 0.0
    assert scheduler.book(Booking(ab, 1000, 10.0)) == 10.0
    assert scheduler.book(Booking((("a", "core"),), 600, 5.0)) == 20.0
    assert scheduler.book(Booking((("c", "core"),), 1000, 30.0)) == 0.0
    assert scheduler.book(Booking(bc, 500, 5.0)) == 30.0


@st.composite
def small_grids(draw: st.DrawFn) -> tuple[Topology, list, PlannerConfig]:
    count = draw(st.integers(2, 5))
    names = [f"c{i}" for i in range(count)]
    graph = nx.Graph()
    routers = [f"r{i}" for i in range(draw(st.integers(1, 3)))]
    for i, router in enumerate(routers):
        graph.add_node(router, kind="router")
        if i:
            graph.add_edge(router, routers[i - 1], **link(draw))
    for name in names:
        graph.add_node(name, kind="cluster")
        graph.add_edge(name, routers[draw(st.integers(0, len(routers) - 1))], **link(draw))
    summaries = []
    for name in names:
        vms = [
            vm(
                f"{name}-{j}",
                cpu=draw(st.integers(100, 2000)),
                memory=draw(st.integers(64, 2048)),
                network=draw(st.integers(1, 100)),
                dirty=draw(st.integers(0, 300)),
            )
            for j in range(draw(st.integers(0, 12)))
        ]
        summaries.append(
            cluster(
                name, vms, capacity=(12_000, 16_384, 2_000), allow_consolidation=draw(st.booleans())
            )
        )
    config = PlannerConfig(
        max_migration_mbps=draw(st.sampled_from([200, 500, 1000])), min_path_mbps=100
    )
    return Topology.from_graph(graph, names), summaries, config


def link(draw: st.DrawFn) -> dict[str, object]:
    return {
        "bandwidth_mbps": draw(st.sampled_from([200, 1000, 2500, 10_000])),
        "latency_ms": draw(st.floats(0.1, 50.0)),
        "utilisation": draw(st.sampled_from([0.0, 0.1, 0.4, 0.45])),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_grids())
def test_no_plan_ever_oversubscribes_a_link(grid: tuple[Topology, list, PlannerConfig]) -> None:
    topology, summaries, config = grid
    plan = plan_grid(topology, summaries, config)
    assert find_oversubscriptions(plan.moves, topology) == []
    for m in plan.moves:
        assert m.rate_mbps <= m.bottleneck_mbps and m.rate_mbps <= config.max_migration_mbps
        assert m.end_s - m.start_s == pytest.approx(m.est_seconds) and m.est_seconds > 0
        assert m.path[0] == m.src and m.path[-1] == m.dst


bookings = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=2, unique=True),
        st.sampled_from([100, 250, 400, 1000]),
        st.floats(0.5, 40.0),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(bookings)
def test_scheduler_packs_random_bookings_without_oversubscription(
    requests: list[tuple[list[str], int, float]],
) -> None:
    topology = star(["a", "b", "c", "d"], links={"a": (1000, 1.0), "b": (1500, 1.0)})
    scheduler = LinkScheduler(topology)
    moves = []
    for i, ((src, dst), rate, seconds) in enumerate(requests):
        path = (src, "core", dst)
        start = scheduler.book(
            Booking(
                (
                    (src, "core") if src < "core" else ("core", src),
                    (dst, "core") if dst < "core" else ("core", dst),
                ),
                rate,
                seconds,
            )
        )
        moves.append(
            GridMove(
                vm=f"v{i}",
                src=src,
                dst=dst,
                path=path,
                bottleneck_mbps=1000,
                rate_mbps=rate,
                memory_mib=1,
                est_seconds=seconds,
                start_s=start,
                end_s=start + seconds,
                kind=MoveKind.RELIEF,
                reason="test",
            )
        )
    assert find_oversubscriptions(moves, topology) == []
