"""Which job members HA restarts after a node failure (`HaMonitor._stranded`), on a real
cluster state fed reports: a member that no connected node holds in memory and that was last
seen holding memory on a failed node; not one stopped on purpose, not one a lost but unfenced
node may still run, not one running elsewhere."""

from __future__ import annotations

import time

from vmgrid.agents.cluster.act.driver import ManagerDriver
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance, FaultToleranceOptions
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)

GIB = 2**30
RUN, OFF = VmState.RUNNING, VmState.SHUT_OFF


class Cluster:
    def __init__(self, nodes: tuple[str, ...]) -> None:
        self.manager = ClusterManager(ClusterConfig(listen="127.0.0.1:0", insecure=True))
        self.now = 1000.0  # the state's monotonic clock, moved by hand
        self.manager.state = ClusterState(
            self.manager.bus, heartbeat_timeout_s=10.0, monotonic=lambda: self.now
        )
        driver = ManagerDriver(self.manager)
        executor = PlanExecutor(driver, Journal(":memory:"))
        self.ft = FaultTolerance(self.manager, executor, FaultToleranceOptions(), driver.images)
        self.state = self.manager.state
        self.sequence = 0
        for node in nodes:
            identity = NodeIdentity(node, node, f"test:///{node}", simulated=True)
            self.state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)

    def report(self, node: str, vms: dict[str, VmState]) -> None:
        self.sequence += 1
        usage = tuple(VmUsage(u, f"vm-{u}", s, 1, 100, GIB, GIB) for u, s in vms.items())
        host = HostUsage(100 * len(vms), len(vms) * GIB, 8 * GIB)
        self.state.apply_report(node, NodeReport(time.time_ns(), self.sequence, host, usage))

    def member(self, uuid: str, node: str) -> Member:
        member = Member(uuid, "job-1", f"vm-{uuid}", node, "<domain/>", "", 1, 1000, 1024, 0)
        self.ft.jobs.members.add(member)
        return member

    def lose(self, node: str, alive: dict[str, dict[str, VmState]]) -> None:
        """`node` goes silent past the heartbeat timeout while the others report `alive`."""
        self.now += 11.0
        for other, vms in alive.items():
            self.report(other, vms)
        self.state.check_timeouts()
        assert self.state.node_status(node) is NodeStatus.LOST

    def stranded(self) -> list[tuple[str, str]]:
        members = self.ft.jobs.members.members()
        return sorted((m.vm_uuid, m.node_id) for m in self.ft.ha._stranded(members))


def test_a_running_member_of_a_failed_node_is_stranded_one_stopped_on_purpose_is_not() -> None:
    c = Cluster(("n1", "n2"))
    c.report("n1", {"a": RUN, "b": OFF})
    c.report("n2", {"c": RUN})
    for uuid, node in (("a", "n1"), ("b", "n1"), ("c", "n2")):
        c.member(uuid, node)
    c.ft.ha._note_where(c.ft.jobs.members.members())
    c.lose("n1", {"n2": {"c": RUN}})
    assert c.stranded() == []  # lost, not fenced yet: n1 may still run it
    c.ft.ha.failed["n1"] = "fence command true exited 0"
    assert c.stranded() == [("a", "n1")]


def test_a_member_whose_uuid_a_migration_took_from_the_failed_node_is_stranded() -> None:
    """n1 fails while a plan moves member m (record: n3, where it was started) to n2: n2's
    prepared copy (shut off) takes the uuid from silent n1's record; HA last saw m on n1."""
    c = Cluster(("n1", "n2", "n3"))
    c.report("n1", {"m": RUN})
    c.report("n2", {})
    c.report("n3", {})
    c.member("m", "n3")
    c.ft.ha._note_where(c.ft.jobs.members.members())
    c.lose("n1", {"n2": {}, "n3": {}})
    c.report("n2", {"m": OFF})  # the destination's copy, defined, not started
    assert [vm.uuid for vm in c.state.view("n1").vms] == []  # gone from n1's record
    c.ft.ha.failed["n1"] = "fenced"
    assert c.stranded() == [("m", "n1")]
    c.report("n2", {"m": RUN})  # restarted there
    assert c.stranded() == []
