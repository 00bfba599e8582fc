"""The cluster manager's mutable cache of nodes and VMs, and its immutable snapshots.

Reports are applied as they arrive (``apply_report`` is the ingest hot path: it stores the
decoded values, appends to bounded history windows and publishes events only on change).
The decision loop works on ``snapshot()``, a frozen copy that later reports cannot alter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from vmgrid.agents.cluster.rules.store import Rule, RuleStore
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.history import NodeHistory, VmSample, cpu_matrix
from vmgrid.agents.cluster.state.nodes import HotWatch, NodeRecord
from vmgrid.agents.cluster.state.nodes import NodeLoad as NodeLoad
from vmgrid.agents.cluster.state.nodes import NodeStatus as NodeStatus
from vmgrid.agents.cluster.state.nodes import NodeView as NodeView
from vmgrid.agents.cluster.state.ownership import VmOwners, conflict_message
from vmgrid.agents.cluster.state.trend import (
    NodeFold,
    UsageHistory,
    UsageTrends,
    combine,
    node_rows,
    vm_pressure_rows,
    vm_rows,
)
from vmgrid.agents.errors import FailedPrecondition, NotFound
from vmgrid.agents.model import (
    HostUsage,
    LifecycleEvent,
    NodeHello,
    NodeReport,
    VmUsage,
)
from vmgrid.agents.report_rows import SAMPLE_WIDTH, ReportRows, VmRow, new_vm_usage, vm_row

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Immutable view of the whole cluster for one decision cycle."""

    cluster_id: str
    taken_at_unix_ns: int
    nodes: tuple[NodeView, ...]
    # node_id -> ((sent_at_unix_ns, HostUsage), ...), oldest first
    node_history: Mapping[str, tuple[tuple[int, HostUsage], ...]]
    # vm uuid -> private copy of its node's history; read through vm_samples()
    _vm_histories: Mapping[str, NodeHistory]
    rules: tuple[Rule, ...] = ()
    """Every placement rule of the cluster at the time of the snapshot."""

    def vm_samples(self, vm_uuid: str) -> tuple[VmSample, ...]:
        """Past samples of a VM, oldest first; NotFound names an unknown uuid."""
        history = self._vm_histories.get(vm_uuid)
        if history is None:
            raise NotFound(f"VM {vm_uuid!r} has no history in cluster {self.cluster_id!r}")
        return history.samples(vm_uuid)

    def vm_cpu_matrix(
        self, vm_uuids: Sequence[str], cap: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """CPU histories of many VMs as one matrix, newest first, capped (history.cpu_matrix)."""
        return cpu_matrix([self._vm_histories.get(u) for u in vm_uuids], vm_uuids, cap)

    def node(self, node_id: str) -> NodeView:
        """The node with this id; NotFound names it otherwise."""
        for view in self.nodes:
            if view.node_id == node_id:
                return view
        raise NotFound(f"node {node_id!r} is not known to cluster {self.cluster_id!r}")

    def vms(self) -> Iterator[tuple[str, VmUsage]]:
        """(node_id, VM) for every VM in the cluster."""
        for view in self.nodes:
            for vm in view.vms:
                yield view.node_id, vm


class ClusterState:
    """Nodes, VMs and usage history of one cluster. Use from the event loop thread only."""

    def __init__(
        self,
        bus: EventBus,
        *,
        history_window: int = 60,
        heartbeat_timeout_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        clock_ns: Callable[[], int] = time.time_ns,
        trends: UsageTrends | None = None,
    ) -> None:
        self.bus = bus
        self.trends = trends or UsageTrends()
        """The last hour of every node's and VM's usage, in buckets (the dashboard's charts)."""
        self.rules = RuleStore()
        """The cluster's placement rules; the runtime swaps in one kept in its database."""
        self.history_window = history_window
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._monotonic = monotonic
        self._clock_ns = clock_ns
        self._nodes: dict[str, NodeRecord] = {}
        self._hot = HotWatch()
        self._vm_nodes: dict[str, set[str]] = {}
        """uuid -> ids of the nodes whose last report has it (find_vm without a scan)."""
        self.owners = VmOwners(self._evict, self._adopt, self._conflict)
        """Which node holds each VM uuid (see ownership.py); copies on other nodes are hidden."""
        self.power_listeners: list[Callable[[str, NodeHello | None, bool], None]] = []
        """Called with (node id, its hello, in maintenance) when the manager powers a node off
        or a powered-off node's maintenance flag changes, and with (node id, None, False) when
        a powered-off node's agent connects again (the journal keeps powered-off nodes)."""

    @property
    def cluster_id(self) -> str:
        """Id of the cluster this state describes."""
        return self.bus.cluster_id

    def node_connected(self, hello: NodeHello, connection_id: int) -> bool:
        """Register a (re)connecting node; True when the node id was already known."""
        node_id = hello.identity.node_id
        now = self._monotonic()
        node = self._nodes.get(node_id)
        if node is None:
            node = self._nodes[node_id] = NodeRecord(hello, connection_id, now, self.history_window)
            self._hot.set_limit(node)
            self.bus.publish(EventKind.NODE_JOINED, node_id=node_id, message="agent connected")
            return False
        node.hello = hello
        self._hot.set_limit(node)
        node.connection_id = connection_id
        node.last_seen_monotonic = now
        node.last_sequence = 0
        if node.status is NodeStatus.LOST:
            node.status = NodeStatus.CONNECTED
            self.bus.publish(EventKind.NODE_RETURNED, node_id=node_id, message="agent reconnected")
        elif node.status is NodeStatus.POWERED_OFF:
            node.status = NodeStatus.CONNECTED
            node.usage = None  # powered on: known to run once it reports
            self.bus.publish(
                EventKind.NODE_POWER_CHANGED, node_id=node_id, message="powered on: agent connected"
            )
            self._tell_power(node_id, None, False)
        return True

    def is_current(self, node_id: str, connection_id: int) -> bool:
        """True when this connection is the node's latest one (older streams are ignored)."""
        node = self._nodes.get(node_id)
        return node is not None and node.connection_id == connection_id

    def touch(self, node_id: str) -> None:
        """Record life from a node (any message); a lost node that speaks again returns."""
        node = self._nodes[node_id]
        node.last_seen_monotonic = self._monotonic()
        if node.status is NodeStatus.LOST:
            node.status = NodeStatus.CONNECTED
            self.bus.publish(EventKind.NODE_RETURNED, node_id=node_id, message="agent spoke again")

    def mark_powered_off(self, node_id: str) -> None:
        """The manager has powered the node off: it stays known (capacity, identity) as a node
        that may be powered on, until its agent says hello again."""
        node = self._node(node_id)
        if node.status is NodeStatus.POWERED_OFF:
            return
        node.status = NodeStatus.POWERED_OFF
        node.usage = None
        # What it last reported is gone with the power: a VM that left just before (its move
        # counted as done on the command's success) must not be seen there any more.
        for vm in node.vms.values():
            self._gone(node_id, vm)
        self.owners.released(node_id, node.uuids, self._nodes)
        self._index_vms(node_id, node.uuids, ())
        node.set_rows((), (), (), {})
        self.trends.flush(node_id, node.fold, node.vm_history, node.history)
        node.vm_history = NodeHistory(self.history_window)
        node.fold = NodeFold()
        self.bus.publish(
            EventKind.NODE_POWER_CHANGED, node_id=node_id, message="powered off by the manager"
        )
        self._tell_power(node_id, node.hello, node.draining)

    def _tell_power(self, node_id: str, hello: NodeHello | None, draining: bool) -> None:
        for listener in self.power_listeners:
            listener(node_id, hello, draining)

    def _gone(self, node_id: str, vm: VmUsage) -> None:
        """Publish that `vm` is no longer on `node_id`."""
        self.bus.publish(
            EventKind.VM_DISAPPEARED,
            node_id=node_id,
            vm_uuid=vm.uuid,
            previous_vm_state=vm.state,
            simulated=vm.simulated,
            message=vm.name,
        )

    def restore_powered_off(self, hello: NodeHello, draining: bool = False) -> None:
        """Know a node the manager powered off before a restart (from the journal), so that it
        may be powered on; a node already known is left as it is."""
        node_id = hello.identity.node_id
        if node_id in self._nodes:
            return
        node = NodeRecord(hello, -1, self._monotonic(), self.history_window)
        node.status = NodeStatus.POWERED_OFF
        node.draining = draining
        self._nodes[node_id] = node
        self.bus.publish(
            EventKind.NODE_POWER_CHANGED,
            node_id=node_id,
            message="powered off by the manager (known from the journal)",
        )

    def set_degraded(self, node_id: str, reason: str) -> None:
        """Keep why the node's agent cannot read its hypervisor; publish when that changes."""
        node = self._nodes[node_id]
        if node.degraded_reason == reason:
            return
        node.degraded_reason = reason
        self.bus.publish(
            EventKind.NODE_DEGRADED_CHANGED,
            node_id=node_id,
            message=f"degraded: {reason}" if reason else "hypervisor readable again",
        )

    def apply_report(self, node_id: str, report: NodeReport | ReportRows) -> bool:
        """Apply a full report; False when it is stale (sequence not newer) or comes from a
        node the manager powered off (until its next hello), and was ignored.

        A report proves the agent reads its hypervisor, so it also ends a degraded spell.
        ``ReportRows`` is the ingest path's form (no VmUsage per VM); a NodeReport is
        converted to it and its VmUsage objects kept as the node's.
        """
        node = self._nodes[node_id]
        node.last_seen_monotonic = self._monotonic()
        if node.status is not NodeStatus.CONNECTED:
            self.touch(node_id)
            if node.status is NodeStatus.POWERED_OFF:
                return False  # a last report while it shuts down; off until its next hello
        if node.degraded_reason:
            self.set_degraded(node_id, "")
        if report.sequence and report.sequence <= node.last_sequence:
            return False
        built = None
        if isinstance(report, NodeReport):
            built = {vm.uuid: vm for vm in report.vms}
            report = ReportRows.of(report)
        node.last_sequence = report.sequence
        sent_at = report.sent_at_unix_ns
        samples = report.samples
        if not sent_at:
            sent_at = self._clock_ns()
            samples = list(samples)
            samples[0::SAMPLE_WIDTH] = [sent_at] * len(report.uuids)
        node.last_seen_unix_ns = sent_at
        node.usage = report.host
        self.trends.before_report(node_id, node.fold, node.vm_history, node.history, sent_at)
        node.history.append((sent_at, report.host))
        if node.hot_since or report.host.cpu_used_millicores > node.hot_limit:
            self._hot.report(node_id, node, report.host.cpu_used_millicores, sent_at)
        if report.uuids != node.uuids or self.owners.contested:
            report, samples = self._admit(node_id, report, samples)
            if built is not None and len(built) != len(report.uuids):
                built = {uuid: built[uuid] for uuid in report.uuids}
        if report.vm_pressure or node.vm_pressure:
            node.vm_pressure = MappingProxyType({p.uuid: p.pressure for p in report.vm_pressure})
            self.trends.vm_pressure_report(
                node.fold, self.history_window, sent_at, node.vm_pressure
            )
        uuids, states = report.uuids, report.states
        history = node.vm_history
        if uuids != node.uuids:
            self._index_vms(node_id, node.uuids, uuids)
            self._vms_changed(node_id, node, report)
        elif states != node.states:
            self._states_changed(node_id, node, report)
        history.write_row(uuids, samples)
        history.advance()
        self.trends.after_report(node.fold)
        node.set_rows(uuids, states, report.rows, built)
        return True

    def _vms_changed(self, node_id: str, node: NodeRecord, report: ReportRows) -> None:
        """Publish the VMs that appeared, changed state or left, and free the slots of those
        that left (the rows are the node's before the report)."""
        old = dict(zip(node.uuids, node.rows, strict=True))
        publish = self.bus.publish
        for row in report.rows:
            uuid, state = row[0], row[2]
            previous = old.pop(uuid, None)
            if previous is None:
                publish(
                    EventKind.VM_APPEARED,
                    node_id=node_id,
                    vm_uuid=uuid,
                    vm_state=state,
                    simulated=row[11],
                    message=row[1],
                )
            elif previous[2] is not state:
                self._state_changed(node_id, previous, row)
        if old:
            self.owners.released(node_id, old, self._nodes)
        for uuid, row in old.items():
            self.trends.leaving(node.fold, node.vm_history, uuid)
            node.vm_history.remove(uuid)
            self._gone(node_id, new_vm_usage(*row))

    def _states_changed(self, node_id: str, node: NodeRecord, report: ReportRows) -> None:
        for previous, row in zip(node.rows, report.rows, strict=True):
            if previous[2] is not row[2]:
                self._state_changed(node_id, previous, row)

    def _state_changed(self, node_id: str, previous: VmRow, row: VmRow) -> None:
        self.bus.publish(
            EventKind.VM_STATE_CHANGED,
            node_id=node_id,
            vm_uuid=row[0],
            vm_state=row[2],
            previous_vm_state=previous[2],
            simulated=row[11],
            message=row[1],
        )

    def watch_hot(self, fraction: float, hold_s: float, listener: Callable[[str], None]) -> None:
        """Call `listener` with a node's id as soon as a report shows its CPU above `fraction`
        of its capacity for `hold_s` (see HotWatch): the loop then cycles at once."""
        self._hot.watch(fraction, hold_s, listener, self._nodes.values())

    def retune_hot(self, fraction: float) -> None:
        """Watch for CPU above `fraction` of capacity from now on (see watch_hot)."""
        self._hot.retune(fraction, self._nodes.values())

    def _admit(
        self, node_id: str, report: ReportRows, samples: list[int]
    ) -> tuple[ReportRows, list[int]]:
        """The part of a report whose VMs the node owns (see ownership.py), and its samples.
        Called when the node's VMs changed or some uuid is contested (rare): a node whose
        VMs stay the same owns them all already."""
        vms = [new_vm_usage(*row) for row in report.rows]
        kept = self.owners.admit(node_id, vms, self._nodes)
        if len(kept) == len(vms):
            return report, samples
        owned = {vm.uuid for vm in kept}
        keep = [i for i, uuid in enumerate(report.uuids) if uuid in owned]
        width = SAMPLE_WIDTH
        rows = ReportRows(
            report.sent_at_unix_ns,
            report.sequence,
            report.host,
            tuple(report.uuids[i] for i in keep),
            tuple(report.states[i] for i in keep),
            tuple(report.rows[i] for i in keep),
            [x for i in keep for x in samples[i * width : (i + 1) * width]],
            tuple(p for p in report.vm_pressure if p.uuid in owned),
        )
        return rows, rows.samples

    def _evict(self, node_id: str, uuid: str) -> VmUsage | None:
        """Drop a VM from a node's record: another node's copy of it won."""
        node = self._nodes[node_id]
        if uuid not in node.uuids:
            return None
        vm = node.vms[uuid]
        keep = [i for i, u in enumerate(node.uuids) if u != uuid]
        uuids = tuple(node.uuids[i] for i in keep)
        self._index_vms(node_id, node.uuids, uuids)
        vms = {u: v for u, v in node.vms.items() if u != uuid}
        node.set_rows(
            uuids, tuple(node.states[i] for i in keep), tuple(node.rows[i] for i in keep), vms
        )
        self.trends.leaving(node.fold, node.vm_history, uuid)
        node.vm_history.remove(uuid)
        self._gone(node_id, vm)
        return vm

    def _adopt(self, node_id: str, vm: VmUsage) -> None:
        """Show a node's hidden copy of a VM (it won) until that node's next report."""
        node = self._nodes[node_id]
        uuids = (*node.uuids, vm.uuid)
        self._index_vms(node_id, node.uuids, uuids)
        vms = dict(node.vms)
        vms[vm.uuid] = vm
        node.set_rows(uuids, (*node.states, vm.state), (*node.rows, vm_row(vm)), vms)
        node.vm_history.add(vm.uuid)
        self.bus.publish(
            EventKind.VM_APPEARED, node_id=node_id, vm_uuid=vm.uuid, vm_state=vm.state,
            simulated=vm.simulated, message=vm.name,
        )  # fmt: skip

    def _conflict(self, node_id: str, owner: str, vm: VmUsage) -> None:
        message = conflict_message(node_id, owner, vm)
        log.warning("cluster %s: %s", self.cluster_id, message)
        self.bus.publish(
            EventKind.VM_CONFLICT, node_id=node_id, vm_uuid=vm.uuid, vm_state=vm.state,
            simulated=vm.simulated, message=message,
        )  # fmt: skip

    def apply_lifecycle(self, node_id: str, event: LifecycleEvent) -> None:
        """Publish a VM lifecycle event; the next report carries the resulting state."""
        self.touch(node_id)
        self.bus.publish(
            EventKind.VM_LIFECYCLE,
            node_id=node_id,
            vm_uuid=event.vm_uuid,
            simulated=event.simulated,
            message=f"{event.kind.value}: {event.detail}" if event.detail else event.kind.value,
        )

    def check_timeouts(self) -> list[str]:
        """Mark nodes silent for longer than the timeout as lost; returns their ids."""
        deadline = self._monotonic() - self.heartbeat_timeout_s
        lost = []
        for node_id, node in self._nodes.items():
            if node.status is NodeStatus.CONNECTED and node.last_seen_monotonic < deadline:
                node.status = NodeStatus.LOST
                lost.append(node_id)
                self.bus.publish(
                    EventKind.NODE_LOST,
                    node_id=node_id,
                    message=f"no message for more than {self.heartbeat_timeout_s:g} s",
                )
        return lost

    def set_draining(self, node_id: str, draining: bool) -> None:
        """Mark a node as draining (no new VMs) or not."""
        node = self._node(node_id)
        if node.draining != draining:
            node.draining = draining
            if node.status is NodeStatus.POWERED_OFF:
                self._tell_power(node_id, node.hello, draining)
            self.bus.publish(
                EventKind.NODE_DRAIN_CHANGED,
                node_id=node_id,
                message="draining" if draining else "undrained",
            )

    def forget_node(self, node_id: str) -> None:
        """Drop a lost or powered-off node that holds no VMs, with its history; the journal
        forgets it too (a power listener). FailedPrecondition says why a node is kept."""
        node = self._node(node_id)
        if node.status is NodeStatus.CONNECTED:
            raise FailedPrecondition(f"node {node_id!r} is connected; stop its agent first")
        if node.vms:
            raise FailedPrecondition(
                f"node {node_id!r} holds {len(node.vms)} VM(s) ({', '.join(sorted(node.vms)[:3])}"
                "); move or remove them first"
            )
        self.owners.forget_node(node_id, self._nodes)
        del self._nodes[node_id]
        self._tell_power(node_id, None, False)
        self.bus.publish(EventKind.NODE_FORGOTTEN, node_id=node_id, message="forgotten")

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

    def view(self, node_id: str) -> NodeView:
        """Immutable view of one node; NotFound names an unknown id."""
        return self._view(self._node(node_id))

    def views(self) -> list[NodeView]:
        """Immutable views of every node, sorted by id."""
        return [self._view(self._nodes[n]) for n in sorted(self._nodes)]

    def loads(self) -> list[NodeLoad]:
        """What metrics read of every node, sorted by id, without building its VMs' objects
        (a scrape of a large cluster would otherwise build tens of thousands)."""
        return [
            NodeLoad(n, node.status, node.usage, node.hello.capacity, node.states)
            for n, node in sorted(self._nodes.items())
        ]

    @staticmethod
    def _view(node: NodeRecord) -> NodeView:
        hello = node.hello
        return NodeView(
            identity=hello.identity,
            capacity=hello.capacity,
            status=node.status,
            usage=node.usage,
            vms=tuple(node.vms.values()),
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

    def _index_vms(self, node_id: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        """Keep ``_vm_nodes`` (uuid -> nodes reporting it) as a node's VMs change."""
        index = self._vm_nodes
        for uuid in set(old).difference(new):
            holders = index.get(uuid)
            if holders is not None:
                holders.discard(node_id)
                if not holders:
                    del index[uuid]
        for uuid in new:
            index.setdefault(uuid, set()).add(node_id)

    def node_usage_history(self, node_id: str, since_unix_ns: int) -> UsageHistory:
        """A node's usage since `since_unix_ns` (trend.combine); NotFound names an unknown id."""
        node = self._node(node_id)
        return combine(node_id, self.trends.nodes, since_unix_ns, node_rows(node.history))

    def vm_usage_history(self, vm_uuid: str, since_unix_ns: int) -> UsageHistory:
        """A VM's usage since `since_unix_ns` wherever it ran; NotFound names a uuid the
        cluster neither has nor had within the span."""
        node = next((n for n in self._nodes.values() if vm_uuid in n.uuids), None)
        if node is None and not self.trends.vms.known(vm_uuid):
            raise NotFound(f"VM {vm_uuid!r} is not known to cluster {self.cluster_id!r}")
        samples = () if node is None else node.vm_history.samples(vm_uuid)
        fold = None if node is None else node.fold
        rows = vm_pressure_rows(vm_rows(samples), vm_uuid, fold)
        return combine(vm_uuid, self.trends.vms, since_unix_ns, rows, self.trends.vm_pressure)

    def report_impossible(self, rule_id: str, reason: str) -> None:
        """A decider could not keep `rule_id` (and kept the VMs running rather than lose
        one): say so once, in the store (``rules check``) and as an event."""
        if self.rules.mark_impossible(rule_id, reason):
            self.bus.publish(EventKind.RULE_CHANGED, message=f"rule {rule_id} impossible: {reason}")

    def report_possible(self, rule_id: str) -> None:
        """A rule reported impossible holds again."""
        if self.rules.mark_possible(rule_id):
            self.bus.publish(EventKind.RULE_CHANGED, message=f"rule {rule_id} holds again")

    def snapshot(self, copy_history: bool = True) -> ClusterSnapshot:
        """Frozen copy of the cluster, history included. ``copy_history=False`` shares the
        VM histories instead of copying them: only for a process whose state can no longer
        change (a forked decision process), where the copy would be wasted time."""
        node_history = {n: tuple(node.history) for n, node in self._nodes.items()}
        vm_histories: dict[str, NodeHistory] = {}
        for node in self._nodes.values():
            history = node.vm_history.copy() if copy_history else node.vm_history
            for uuid in node.uuids:
                vm_histories[uuid] = history
        return ClusterSnapshot(
            cluster_id=self.cluster_id,
            taken_at_unix_ns=self._clock_ns(),
            nodes=tuple(self.views()),
            node_history=MappingProxyType(node_history),
            _vm_histories=MappingProxyType(vm_histories),
            rules=self.rules.kept(),
        )
