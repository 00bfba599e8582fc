"""A new leader resumes an interrupted plan only once the plan's nodes reported over their own
streams: usage copied from the old leader's warm view, even with the agent connected, is not
enough (it may be a leader behind, showing a VM where an earlier plan moved it from)."""

from __future__ import annotations

from types import SimpleNamespace

from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState


def _report(sequence: int, vm: str) -> m.NodeReport:
    usage = m.VmUsage(vm, vm, m.VmState.RUNNING, 2, 500, 2**30, 2**30, 1000, 2000)
    return m.NodeReport(10**18 + sequence, sequence, m.HostUsage(500, 2**34, 2**36, 0, 0), (usage,))


def test_warm_view_usage_is_not_a_report_over_the_nodes_own_stream() -> None:
    state = ClusterState(EventBus("t"))
    hello = m.NodeHello(
        m.NodeIdentity("n1", "n1", "test:///n1"), m.NodeCapacity(64000, 2**38, 10**10)
    )
    state.node_connected(hello, 1)
    state.apply_report("n1", _report(7, "vm-a"))  # what the old leader's warm view carried
    runtime = SimpleNamespace(manager=SimpleNamespace(state=state, has_stream=lambda _n: True))

    state.node_connected(hello, 2)  # the agent says hello to the new leader
    assert state.view("n1").usage is not None  # still the warm view's
    assert not ClusterRuntime._reported(runtime, {"n1"})  # type: ignore[arg-type]

    state.apply_report("n1", _report(1, "vm-a"))  # its first report on the new stream
    assert ClusterRuntime._reported(runtime, {"n1"})  # type: ignore[arg-type]
