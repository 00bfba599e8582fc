"""A real ClusterState fed with reports on a hand-driven clock, for the policy's tests."""

from __future__ import annotations

from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)

MIB = 2**20
GIB = 2**30
SECOND = 1_000_000_000


class Cluster:
    """Nodes of 4 cores and 16 GiB unless told otherwise, test-driver ones unless `simulated`
    is False; VMs of 1 GiB, of which their agent measured nothing unless told (`measured`)."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * SECOND
        self.state = ClusterState(EventBus("c1"), clock_ns=lambda: self.now_ns)
        self.sequence = 0
        self.placement: dict[str, dict[str, int]] = {}
        self.figures: dict[str, tuple[int, int]] = {}  # name -> (resident MiB, dirty MiB/s)

    def node(
        self, node_id: str, cpu: int = 4000, memory: int = 16 * GIB, simulated: bool = True
    ) -> Cluster:
        uri = f"test:///{node_id}" if simulated else f"qemu+ssh://{node_id}/system"
        identity = NodeIdentity(node_id, node_id, uri, simulated=simulated)
        self.state.node_connected(NodeHello(identity, NodeCapacity(cpu, memory, 10**9)), 1)
        self.placement[node_id] = {}
        return self

    def vms(self, node_id: str, **cpu: int) -> Cluster:
        """Put VMs (name=millicores) on `node_id`."""
        self.placement[node_id].update(cpu)
        return self

    def measured(self, name: str, resident_mib: int, dirty_mib_s: int = 0) -> Cluster:
        """What VM `name`'s agent measured for its migration estimate (#16); the dirty set is
        one second's dirtying."""
        self.figures[name] = (resident_mib, dirty_mib_s)
        return self

    def _usage(self, name: str, cpu: int) -> VmUsage:
        resident, dirty = self.figures.get(name, (0, 0))
        return VmUsage(
            f"uuid-{name}", name, VmState.RUNNING, 1, cpu, GIB, GIB,
            memory_resident_bytes=resident * MIB,
            memory_dirty_bytes_per_second=dirty * MIB,
            memory_dirty_set_bytes=dirty * MIB,
        )  # fmt: skip

    def run(self, seconds: int = 40) -> Cluster:
        """Every node reports its VMs every 5 s for `seconds`."""
        for _ in range(seconds // 5 + 1):
            self.sequence += 1
            for node_id, vms in self.placement.items():
                usage = tuple(self._usage(n, c) for n, c in sorted(vms.items()))
                host = HostUsage(sum(vms.values()), len(vms) * GIB, 16 * GIB)
                report = NodeReport(self.now_ns, self.sequence, host, usage)
                self.state.apply_report(node_id, report)
            self.now_ns += 5 * SECOND
        return self
