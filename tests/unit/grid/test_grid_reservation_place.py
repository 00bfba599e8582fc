"""Where a grid reservation puts an arriving VM (`reservations.place`), on a real ClusterState."""

from __future__ import annotations

import pytest
from vmgrid.agents import grid_model as gm
from vmgrid.agents import model as m
from vmgrid.agents.cluster.grid.reservations import place
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.errors import FailedPrecondition

GIB = 2**30


def cluster(memory_gib: dict[str, list[int]]) -> ClusterManager:
    """16 GiB nodes running VMs of the given sizes."""
    manager = ClusterManager(ClusterConfig(insecure=True))
    for node, sizes in memory_gib.items():
        hello = m.NodeHello(
            m.NodeIdentity(node, f"{node}.lab", ""), m.NodeCapacity(8000, 16 * GIB, 10**10)
        )
        session = manager.open_session(hello)
        usages = tuple(
            m.VmUsage(f"{node}-vm{i}", f"{node}-vm{i}", m.VmState.RUNNING, 1, 100, g * GIB, g * GIB)
            for i, g in enumerate(sizes)
        )
        manager.handle_report(
            session, m.NodeReport(1, 1, m.HostUsage(500, 2 * GIB, 16 * GIB), usages)
        )
    return manager


ARRIVING = gm.VmDemand(
    "8c7e0b8e-0000-4000-8000-000000000001", "web-1", cpu_millicores=1000, memory_bytes=2 * GIB
)


def test_a_node_over_its_capacity_does_not_stop_another_from_taking_the_vm() -> None:
    # n1 runs 18 GiB of VMs on 16 GiB (started behind the applier's back): the solver used to
    # move one of them away first, and the reservation was refused ("fits only after moving")
    manager = cluster({"n1": [16, 2], "n2": [2]})
    assert place(manager.state.snapshot(), ARRIVING, "r1", []) == "n2"


def test_a_node_to_avoid_is_never_chosen_and_none_left_is_said() -> None:
    manager = cluster({"n1": [2], "n2": [2]})
    snapshot = manager.state.snapshot()
    assert place(snapshot, ARRIVING, "r1", [], avoid=("n1",)) == "n2"
    assert place(snapshot, ARRIVING, "r1", [], avoid=("n2",)) == "n1"
    with pytest.raises(FailedPrecondition, match="no node to reserve on but n1, n2"):
        place(snapshot, ARRIVING, "r1", [], avoid=("n1", "n2"))


def test_a_cluster_whose_every_node_is_over_its_capacity_says_so() -> None:
    manager = cluster({"n1": [16, 2], "n2": [17]})
    with pytest.raises(
        FailedPrecondition, match=r"every connected node is over its capacity \(n1, n2\)"
    ):
        place(manager.state.snapshot(), ARRIVING, "r1", [])
