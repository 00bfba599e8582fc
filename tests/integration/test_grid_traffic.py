"""Cross-cluster traffic end to end (#16) on two simulated clusters (libvirt test driver): what
the clusters measure reaches the coordinator in their summaries, is resolved into a pair of VMs
in two clusters, and the coordinator's plan gathers that pair.

The test driver carries no traffic (its agents report the matrix unavailable), so each cluster
is given the matrix a metering node would report, under a key of its own beside the nodes'."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grid_harness import Grid, two_clusters
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.coordinator.planning import planner_input
from vmgrid.coordinator.traffic import resolve_external
from vmgrid.solver import grid as planner

pytestmark = pytest.mark.slow

ROUTER = "52:54:00:ff:ff:ff"
RATE = 15_000_000  # bytes/s: 120 Mbit/s, above the planner's heavy_traffic_mbps (100)


def first_vm(grid: Grid, cluster_id: str) -> str:
    return grid.runtimes[cluster_id].manager.state.views()[0].vms[0].uuid


def meter(vm: str, mac: str, ip: str, peer_ip: str) -> TrafficMatrix:
    """`vm` exchanges RATE with `peer_ip` behind the router, as its node's meter reports it."""
    flows = (
        TrafficFlow(mac, ROUTER, RATE // 2, dst_ip=peer_ip),
        TrafficFlow(ROUTER, mac, RATE // 2, src_ip=peer_ip),
    )
    return TrafficMatrix(True, "", 30_000, (TrafficEndpoint(vm, mac, ip),), flows)


async def wait_resolved(grid: Grid, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if resolve_external(grid.coordinator.registry.records()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no cross-cluster pair reached the coordinator")


def test_measured_cross_cluster_pair_is_grouped_and_gathered_by_the_plan(tmp_path: Path) -> None:
    async def go() -> None:
        async with two_clusters(tmp_path) as grid:
            a, x = first_vm(grid, "c1"), first_vm(grid, "c2")
            c1, c2 = (grid.runtimes[c].manager.state for c in ("c1", "c2"))
            c1.traffic.apply("meter", meter(a, "52:54:00:00:01:01", "10.1.0.1", "10.2.0.1"))
            c2.traffic.apply("meter", meter(x, "52:54:00:00:02:01", "10.2.0.1", "10.1.0.1"))
            await wait_resolved(grid)
            coordinator = grid.coordinator.coordinator
            [pair] = resolve_external(coordinator.registry.records())
            assert {(pair.vm_a, pair.cluster_a), (pair.vm_b, pair.cluster_b)} == {
                (a, "c1"),
                (x, "c2"),
            }
            inputs = planner_input(coordinator.registry.records(), coordinator.current_topology())
            groups = {s.id: s.groups for s in inputs.summaries}
            group_id = f"g-{min(a, x)}"
            assert groups == {
                "c1": (planner.VmGroup(group_id, (a,), 120),),
                "c2": (planner.VmGroup(group_id, (x,), 120),),
            }
            dry_run = await coordinator.plan(planner.PlannerConfig(consolidation=False))
            moves = [(mv.vm, mv.kind, mv.group_id) for mv in dry_run.plan.moves]
            assert len(moves) == 1 and moves[0][0] in (a, x)
            assert moves[0][1:] == (planner.MoveKind.AFFINITY, group_id)

    asyncio.run(asyncio.wait_for(go(), 150))
