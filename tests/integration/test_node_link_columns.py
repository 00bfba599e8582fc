"""Reports in columns over a real node-link stream: the VM list sent once is kept per stream,
and a bad column is refused naming it while the stream and the node's state stay as they were."""

from __future__ import annotations

import time

import grpc
import grpc.aio
from node_link_harness import StreamAgent
from test_node_link_malformed import eventually, run, vms_by_node
from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.common import node_codec as codec


def _report(sequence: int, cpu: int, *uuids: str, memory: int = 2**28) -> m.NodeReport:
    vms = tuple(
        m.VmUsage(u, u, m.VmState.RUNNING, 1, cpu, memory if k else 2**28, 2**29)
        for k, u in enumerate(uuids)
    )
    return m.NodeReport(time.time_ns(), sequence, m.HostUsage(100, 2**30, 2**33), vms)


def test_columns_reports_list_vms_once_and_a_bad_column_is_refused_by_name() -> None:
    async def scenario(server: ClusterServer, channel: grpc.aio.Channel) -> None:
        agent = StreamAgent(channel, "n1")
        await agent.hello()
        encoder = codec.ReportEncoder()
        agent.send(report=encoder.encode(_report(1, 100, "a", "b")))
        later = encoder.encode(_report(2, 700, "a", "b"))
        assert later.vm_columns.same_vms
        agent.send(report=later)

        async def second_applied() -> bool:
            view = server.manager.state.view("n1")
            return view.last_sequence == 2 and view.vms[0].cpu_used_millicores == 700

        await eventually(second_applied)
        history = server.manager.state.snapshot().vm_samples("b")
        assert [(s.cpu_used_millicores, s.memory_used_bytes) for s in history] == [
            (100, 2**28),
            (700, 2**28),
        ]  # from the reports' integer blocks
        bad = encoder.encode(_report(3, 100, "a", "b", memory=-7))
        assert bad.vm_columns.int_block
        agent.send(report=bad)
        error = (await agent.recv()).error
        field = "report.vm_columns.int_block.memory_used_bytes[1]"
        assert error.field == field and "-7" in error.message
        assert error.sequence == 3
        agent.send(report=encoder.encode(_report(4, 100, "a", "b")))  # same_vms after refusal
        assert (await agent.recv()).error.field == "report.vm_columns.same_vms"
        encoder.forget()
        agent.send(report=encoder.encode(_report(5, 300, "a", "c")))

        async def listed_again() -> bool:
            return await vms_by_node(channel) == {"n1": ["a", "c"]}

        await eventually(listed_again)
        assert server.manager.state.view("n1").last_sequence == 5
        agent.close()

    run(scenario)
