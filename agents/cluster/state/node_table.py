"""ClusterState's table of node records and what reads it: views, loads, VM lookups by uuid
and the usage history of a node or VM (the part of the cache that never changes it), and the
watchers that follow its reports for the decision loop (hot spells, quiet runs)."""

from __future__ import annotations

from collections.abc import Callable, KeysView

from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.gauges import NodeGauge, gauge_of_record
from vmgrid.agents.cluster.state.host_window import HostWindow
from vmgrid.agents.cluster.state.nodes import (
    HotWatch,
    NodeLoad,
    NodeRecord,
    NodeStatus,
    NodeView,
    RecordVms,
)
from vmgrid.agents.cluster.state.quiet import QuietBand, QuietWatch
from vmgrid.agents.cluster.state.trend import (
    UsageHistory,
    UsageTrends,
    combine,
    node_rows,
    vm_pressure_rows,
    vm_rows,
)
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import VmUsage


class NodeTable:
    """The node records of one cluster and their reads (ClusterState builds on it)."""

    bus: EventBus
    trends: UsageTrends
    _nodes: dict[str, NodeRecord]
    _vm_nodes: dict[str, set[str]]
    """uuid -> ids of the nodes whose last report has it (find_vm without a scan)."""
    quiet: QuietWatch
    """Each node's runs of samples under and above the band (quiet.py)."""
    _hot: HotWatch

    @property
    def cluster_id(self) -> str:
        """Id of the cluster this state describes."""
        return self.bus.cluster_id

    def _node(self, node_id: str) -> NodeRecord:
        node = self._nodes.get(node_id)
        if node is None:
            raise NotFound(f"node {node_id!r} is not known to cluster {self.cluster_id!r}")
        return node

    def is_draining(self, node_id: str) -> bool:
        """Whether a node is in maintenance; NotFound names an unknown id."""
        return self._node(node_id).draining

    def node_status(self, node_id: str) -> NodeStatus:
        """Current status of a node; NotFound names an unknown id."""
        return self._node(node_id).status

    def node_ids(self) -> list[str]:
        """Ids of every known node."""
        return list(self._nodes)

    def known_ids(self) -> KeysView[str]:
        """Every known node's id, as a live view (no copy: a hello checks it against the node
        limit, and 5,000 agents reconnecting at once would otherwise copy the table 5,000
        times)."""
        return self._nodes.keys()

    def view(self, node_id: str) -> NodeView:
        """Immutable view of one node; NotFound names an unknown id."""
        return self._view(self._node(node_id))

    def views(self, built_vms: bool = True) -> list[NodeView]:
        """Immutable views of every node, sorted by id (`built_vms` False: for a process whose
        state no longer changes, their VMs are `RecordVms`, built when read)."""
        return [self._view(self._nodes[n], built_vms) for n in sorted(self._nodes)]

    def loads(self) -> list[NodeLoad]:
        """What metrics read of every node, sorted by id, without building its VMs' objects
        (a scrape of a large cluster would otherwise build tens of thousands)."""
        return [
            NodeLoad(n, node.status, node.usage, node.hello.capacity, node.states)
            for n, node in sorted(self._nodes.items())
        ]

    def gauges(self) -> list[NodeGauge]:
        """What the decision loop's trigger reads of every node, sorted by id, without
        building its VMs' objects (gauges.py)."""
        return [gauge_of_record(self._nodes[n]) for n in sorted(self._nodes)]

    def watch_hot(self, fraction: float, hold_s: float, listener: Callable[[str], None]) -> None:
        """Call `listener` with a node's id as soon as a report shows its CPU above `fraction`
        of its capacity for `hold_s` (see HotWatch): the loop then cycles at once."""
        self._hot.watch(fraction, hold_s, listener, self._nodes.values())

    def retune_hot(self, fraction: float) -> None:
        """Watch for CPU above `fraction` of capacity from now on (see watch_hot)."""
        self._hot.retune(fraction, self._nodes.values())

    def may_trigger(self, band: QuietBand, hold_s: float) -> bool:
        """False only when the decision loop's trigger would find nothing now (quiet.py):
        the loop then decides without taking a snapshot or forking a decision process."""
        return self.quiet.may_trigger(band, hold_s, self._nodes.values())

    def node_histories(self, copy: bool = True) -> dict[str, HostWindow]:
        """Every node's window of (sent_at, HostUsage), as a snapshot's ``node_history``:
        copies, or (``copy=False``) the windows themselves, for a reader the state cannot
        change under (a forked decision process, or one that reads before it awaits)."""
        if copy:
            return {n: node.history.copy() for n, node in self._nodes.items()}
        return {n: node.history for n, node in self._nodes.items()}

    @staticmethod
    def _view(node: NodeRecord, built_vms: bool = True) -> NodeView:
        hello = node.hello
        return NodeView(
            identity=hello.identity,
            capacity=hello.capacity,
            status=node.status,
            usage=node.usage,
            vms=tuple(node.vms.values()) if built_vms else RecordVms(node),
            last_seen_unix_ns=node.last_seen_unix_ns,
            last_sequence=node.last_sequence,
            draining=node.draining,
            degraded_reason=node.degraded_reason,
            vm_pressure=node.vm_pressure,
        )

    def find_vm(self, vm_uuid: str) -> tuple[str, VmUsage]:
        """(node_id, VM) of a VM by uuid (the first node that has it, in the order nodes were
        first seen, while a migration shows it on two); NotFound names it otherwise."""
        holders = self._vm_nodes.get(vm_uuid, ())
        for node_id in holders if len(holders) == 1 else self._nodes:
            node = self._nodes.get(node_id)
            if node is not None and vm_uuid in node.uuids:  # builds that node's VMs alone
                return node_id, node.vms[vm_uuid]
        raise NotFound(f"VM {vm_uuid!r} is not known to cluster {self.cluster_id!r}")

    def copies(self, vm_uuid: str) -> list[tuple[str, VmUsage]]:
        """(node_id, VM) for every node whose record shows the VM (a lost node's last report
        included; copies hidden by the one-owner rule are not records)."""
        found = []
        for node_id in sorted(self._vm_nodes.get(vm_uuid, ())):
            node = self._nodes.get(node_id)
            if node is not None and vm_uuid in node.uuids:
                found.append((node_id, node.vms[vm_uuid]))
        return found

    def settle_history(self) -> None:
        """Write every node's closing bucket now (a history read writes its node's own)."""
        for node in self._nodes.values():
            self.trends.settle(node.fold, node.vm_history, node.history)

    def node_usage_history(self, node_id: str, since_unix_ns: int) -> UsageHistory:
        """A node's usage since `since_unix_ns` (trend.combine); NotFound names an unknown id."""
        node = self._node(node_id)
        self.trends.settle(node.fold, node.vm_history, node.history)  # its closing bucket
        return combine(node_id, self.trends.nodes, since_unix_ns, node_rows(node.history))

    def vm_usage_history(self, vm_uuid: str, since_unix_ns: int) -> UsageHistory:
        """A VM's usage since `since_unix_ns` wherever it ran; NotFound names a uuid the
        cluster neither has nor had within the span."""
        node = next((n for n in self._nodes.values() if vm_uuid in n.uuids), None)
        if node is None and not self.trends.vms.known(vm_uuid):
            raise NotFound(f"VM {vm_uuid!r} is not known to cluster {self.cluster_id!r}")
        if node is not None:
            self.trends.settle(node.fold, node.vm_history, node.history)  # its closing bucket
        samples = () if node is None else node.vm_history.samples(vm_uuid)
        fold = None if node is None else node.fold
        rows = vm_pressure_rows(vm_rows(samples), vm_uuid, fold)
        return combine(vm_uuid, self.trends.vms, since_unix_ns, rows, self.trends.vm_pressure)
