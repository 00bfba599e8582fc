"""Pressure in GET /history over loopback: a demo cluster's agents on the libvirt test driver
read no PSI, so every pressure point of their nodes and VMs is null (never 0); an agent whose
reports carry host and VM pressure (played by hand on the node link) gets its values charted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from dashboard_harness import DashboardDemo, DashboardHarness, any_vm
from node_link_harness import StreamAgent
from test_dashboard_api import call
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec

pytestmark = pytest.mark.slow

PRESSURE = ("pressure_cpu_some_avg10", "pressure_memory_some_avg10", "pressure_io_some_avg10")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    harness = DashboardHarness(nodes=1, vms_per_node=1)
    try:
        yield harness.start(tmp_path_factory.mktemp("dashboard-pressure"))
    finally:
        harness.stop()


def test_the_test_driver_reports_no_pressure_and_history_says_unavailable(
    demo: DashboardDemo,
) -> None:
    vm = any_vm(demo)
    for query in ("node=c1-n1", f"vm={vm['uuid']}"):
        status, body = call(demo, f"/history?{query}", token="read")
        assert status == 200, body
        points = len(body["times_unix_ms"])
        assert points > 0
        for name in PRESSURE:
            assert body["series"][name] == [None] * points, (query, name)
        assert None not in body["series"]["cpu_used_millicores"][-points:]


def _stall(value: float) -> m.PressureStall:
    return m.PressureStall(value, value / 2, 1000, 500)


def test_reports_with_pressure_fill_the_node_and_vm_series(demo: DashboardDemo) -> None:
    state: dict[str, Any] = {}

    async def connect() -> None:
        channel = grpc.aio.insecure_channel(demo.runtime.address)
        agent = StreamAgent(channel, "c1-psi")
        await agent.hello()
        state.update(channel=channel, agent=agent)

    async def report(k: int) -> None:
        agent: StreamAgent = state["agent"]
        agent.sequence += 1
        host = m.HostUsage(
            500, 2**30, 2**33, pressure=m.Pressure(_stall(10.0 + k), _stall(2.5), None)
        )
        vm = m.VmUsage("psi-vm", "psi-vm", m.VmState.RUNNING, 1, 250, 2**28, 2**29)
        vm_pressure = (m.VmPressure("psi-vm", m.Pressure(_stall(40.0 + k), None, _stall(7.0))),)
        message = m.NodeReport(time.time_ns(), agent.sequence, host, (vm,), vm_pressure)
        agent.send(report=codec.encode_report(message))

    async def close() -> None:
        state["agent"].close()
        await state["channel"].close()

    demo.run(connect())
    try:
        for k in range(3):
            demo.run(report(k))
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        node: dict[str, Any] = {}
        vm: dict[str, Any] = {}
        while time.monotonic() < deadline:
            _, node = call(demo, "/history?node=c1-psi&minutes=5", token="read")
            _, vm = call(demo, "/history?vm=psi-vm&minutes=5", token="read")
            if len(vm.get("times_unix_ms", ())) >= 3 and len(node.get("times_unix_ms", ())) >= 3:
                break
            time.sleep(0.2)
        assert node["series"]["pressure_cpu_some_avg10"][-3:] == [10.0, 11.0, 12.0], node
        assert node["series"]["pressure_memory_some_avg10"][-3:] == [2.5, 2.5, 2.5]
        assert node["series"]["pressure_io_some_avg10"][-3:] == [None, None, None]
        assert vm["series"]["pressure_cpu_some_avg10"][-3:] == [40.0, 41.0, 42.0], vm
        assert vm["series"]["pressure_memory_some_avg10"][-3:] == [None, None, None]
        assert vm["series"]["pressure_io_some_avg10"][-3:] == [7.0, 7.0, 7.0]
        assert vm["series"]["cpu_used_millicores"][-3:] == [250.0, 250.0, 250.0]
    finally:
        demo.run(close())
