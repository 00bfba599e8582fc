"""Cross-cluster traffic end to end (#16) on two simulated clusters (libvirt test driver): what
the clusters measure reaches the coordinator in their summaries, is resolved into a pair of VMs
in two clusters, the coordinator's plan gathers that pair, and the grid dashboard's
GET /traffic shows it with each cluster's heaviest pairs.

The test driver carries no traffic (its agents report the matrix unavailable), so each cluster
is given the matrix a metering node would report, under a key of its own beside the nodes'."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grid_harness import Grid
from test_dashboard_grid import Api, with_grid_dashboard
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.coordinator.planning import planner_input
from vmgrid.coordinator.traffic import resolve_external
from vmgrid.solver import grid as planner

pytestmark = pytest.mark.slow

ROUTER = "52:54:00:ff:ff:ff"
RATE = 15_000_000  # bytes/s: 120 Mbit/s, above the planner's heavy_traffic_mbps (100)
LOCAL = 2_000_000  # bytes/s between two VMs of c1


def vms_of(grid: Grid, cluster_id: str) -> list[tuple[str, str]]:
    """(node, VM uuid) of the cluster's VMs, by node."""
    views = grid.runtimes[cluster_id].manager.state.views()
    return sorted((view.node_id, vm.uuid) for view in views for vm in view.vms)


def meter(ends: list[tuple[str, str, str]], flows: list[TrafficFlow]) -> TrafficMatrix:
    endpoints = tuple(TrafficEndpoint(vm, mac, ip) for vm, mac, ip in ends)
    return TrafficMatrix(True, "", 30_000, endpoints, tuple(flows))


def both_ways(mac: str, peer_mac: str, peer_ip: str, rate: int) -> list[TrafficFlow]:
    return [
        TrafficFlow(mac, peer_mac, rate // 2, dst_ip=peer_ip),
        TrafficFlow(peer_mac, mac, rate // 2, src_ip=peer_ip),
    ]


async def wait_resolved(grid: Grid, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        records = grid.coordinator.registry.records()
        if resolve_external(records) and all(r.summary and r.summary.heavy_pairs for r in records):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no cross-cluster pair reached the coordinator")


def test_measured_cross_cluster_pair_is_planned_for_and_shown(tmp_path: Path) -> None:
    async def check(grid: Grid, api: Api) -> None:
        (_, a), (_, a2) = vms_of(grid, "c1")[0], vms_of(grid, "c1")[-1]  # on two nodes
        (_, x), (_, x2) = vms_of(grid, "c2")[0], vms_of(grid, "c2")[-1]
        mac_a, mac_a2, mac_x, mac_x2 = (f"52:54:00:00:00:0{i}" for i in range(1, 5))
        c1, c2 = (grid.runtimes[c].manager.state for c in ("c1", "c2"))
        c1.traffic.apply(
            "meter",
            meter(
                [(a, mac_a, "10.1.0.1"), (a2, mac_a2, "10.1.0.2")],
                both_ways(mac_a, ROUTER, "10.2.0.1", RATE) + both_ways(mac_a, mac_a2, "", LOCAL),
            ),
        )
        c2.traffic.apply("meter", meter(
            [(x, mac_x, "10.2.0.1"), (x2, mac_x2, "10.2.0.2")],
            both_ways(mac_x, ROUTER, "10.1.0.1", RATE) + both_ways(mac_x2, mac_x, "", LOCAL // 2),
        ))  # fmt: skip
        await wait_resolved(grid)

        coordinator = grid.coordinator.coordinator
        records = coordinator.registry.records()
        [pair] = resolve_external(records)
        assert {(pair.vm_a, pair.cluster_a), (pair.vm_b, pair.cluster_b)} == {
            (a, "c1"),
            (x, "c2"),
        }
        inputs = planner_input(records, coordinator.current_topology())
        group_id = f"g-{min(a, x)}"
        assert {s.id: s.groups for s in inputs.summaries} == {
            "c1": (planner.VmGroup(group_id, (a,), 120),),
            "c2": (planner.VmGroup(group_id, (x,), 120),),
        }
        dry_run = await coordinator.plan(planner.PlannerConfig(consolidation=False))
        moves = [(mv.vm, mv.kind, mv.group_id) for mv in dry_run.plan.moves]
        assert len(moves) == 1 and moves[0][0] in (a, x)
        assert moves[0][1:] == (planner.MoveKind.AFFINITY, group_id)

        status, body = await api.get("/traffic")
        assert status == 200
        shown = [
            ({(p["vm_a"], p["cluster_a"]), (p["vm_b"], p["cluster_b"])}, p["bytes_per_second"],
             p["crosses"])
            for p in body["pairs"]
        ]  # fmt: skip
        assert shown == [
            ({(a, "c1"), (x, "c2")}, RATE, "cluster"),
            ({(a, "c1"), (a2, "c1")}, LOCAL, "node"),
            ({(x, "c2"), (x2, "c2")}, LOCAL // 2, "node"),
        ]
        assert all(p["name_a"] and p["node_a"] for p in body["pairs"])
        status, body = await api.get("/traffic?limit=1")
        assert status == 200 and len(body["pairs"]) == 1
        status, body = await api.get("/traffic?limit=0")
        assert status == 400 and body["error"]["field"] == "limit"

    asyncio.run(asyncio.wait_for(with_grid_dashboard(tmp_path, check), 150))
