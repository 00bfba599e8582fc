"""A cluster's uplink that knows several coordinator replicas backs off while none answers
for long, and still reaches a coordinator that appears within its cluster timeout.

The real ``GridUplink`` against a real coordinator's gRPC server, both in the test's event
loop; the second replica's address has nothing listening."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.grid.uplink import GridUplink
from vmgrid.bench.ports import free_ports
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from waiting import time_until

CLUSTER_TIMEOUT_S = 4.0


async def _coordinator(port: int, workdir: Path) -> CoordinatorServer:
    config = CoordinatorConfig(
        listen=f"127.0.0.1:{port}",
        insecure=True,
        state_db=str(workdir / "grid.sqlite"),
        summary_period_s=0.5,
        cluster_timeout_s=CLUSTER_TIMEOUT_S,
    ).validate()
    coordinator = CoordinatorServer(config)
    await coordinator.start()
    return coordinator


def test_an_uplink_dials_less_during_a_long_outage_and_reaches_a_returning_coordinator(
    tmp_path: Path,
) -> None:
    asyncio.run(asyncio.wait_for(_outage(tmp_path), 60))


async def _outage(workdir: Path) -> None:
    port, other = free_ports(2)
    targets = f"127.0.0.1:{port},127.0.0.1:{other}"
    coordinator = await _coordinator(port, workdir)
    capacity = m.Capacity(cpu_millicores=8000, memory_bytes=2**34, network_bps=10**9)
    hello = m.ClusterHello("rack-a", capacity, node_count=2, endpoint="a:7443")

    def summary() -> m.ClusterSummary:
        return m.ClusterSummary(0, 0, capacity, m.Capacity(0, 0, 0), ())

    uplink = GridUplink(targets, None, hello, summary, period_s=0.5)
    uplink.start()
    try:
        await time_until(uplink.connected.is_set, 10)
        await coordinator.stop()
        outage = time.monotonic()
        await time_until(lambda: not uplink.connected.is_set(), 10)
        first = uplink.dials
        await asyncio.sleep(CLUSTER_TIMEOUT_S)  # within the cluster timeout: dials stay quick
        fast = uplink.dials - first
        await asyncio.sleep(4.0)
        middle = uplink.dials
        await asyncio.sleep(4.0)  # 8-12 s into the outage: the ceiling is 2 s
        slow = uplink.dials - middle
        print(f"dials in the first 4 s of the outage: {fast}; from 8 to 12 s: {slow}")
        # a round tries both addresses, then waits: at most 0.5 s within the cluster timeout
        assert fast >= 10  # 8 rounds or more (dials to loopback fail at once)
        assert slow <= 10  # rounds at least 1 s apart; 0.5 s apart would be 16 dials or more

        coordinator = await _coordinator(port, workdir)
        back = await time_until(uplink.connected.is_set, CLUSTER_TIMEOUT_S)
        print(f"reconnected {back:.2f} s after the coordinator came back "
              f"({time.monotonic() - outage:.1f} s into the outage)")  # fmt: skip
    finally:
        await uplink.stop()
        await coordinator.stop()
