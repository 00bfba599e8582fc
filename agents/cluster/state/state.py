"""The cluster manager's mutable cache of nodes and VMs, and its immutable snapshots.

Reports are applied as they arrive (``apply_report`` is the ingest hot path: it stores the
decoded values, appends to bounded history windows and publishes events only on change).
The decision loop works on ``snapshot()``, a frozen copy that later reports cannot alter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType

from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.history import NodeHistory
from vmgrid.agents.cluster.state.migration_estimate import MigrationFixedCost
from vmgrid.agents.cluster.state.nodes import HotWatch, NodeRecord
from vmgrid.agents.cluster.state.nodes import NodeLoad as NodeLoad
from vmgrid.agents.cluster.state.nodes import NodeStatus as NodeStatus
from vmgrid.agents.cluster.state.nodes import NodeView as NodeView
from vmgrid.agents.cluster.state.owned_nodes import OwnedNodes
from vmgrid.agents.cluster.state.ownership import VmOwners
from vmgrid.agents.cluster.state.quiet import QuietWatch
from vmgrid.agents.cluster.state.snapshot import ClusterSnapshot as ClusterSnapshot
from vmgrid.agents.cluster.state.traffic import ClusterTraffic
from vmgrid.agents.cluster.state.trend import NodeFold, UsageTrends
from vmgrid.agents.errors import FailedPrecondition
from vmgrid.agents.model import LifecycleEvent, NodeHello, NodeReport
from vmgrid.agents.report_rows import (
    SAMPLE_WIDTH,
    ReportRows,
    VmRow,
    new_vm_usage,
    sample_list,
)

CLOCK_AHEAD_NS = 60 * 1_000_000_000
"""How far ahead of the manager's clock a node's report time is trusted by the usage trends."""


class ClusterState(OwnedNodes):
    """Nodes, VMs and usage history of one cluster. Use from the event loop thread only.

    Its reads are NodeTable's (node_table.py), its side of VM ownership OwnedNodes's
    (owned_nodes.py); here: what changes it (connections, reports, power, snapshots)."""

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
        self.traffic = ClusterTraffic(monotonic=monotonic)
        """Measured VM-to-VM traffic; its heavy pairs join the rules as soft terms."""
        self.migration_fixed = MigrationFixedCost(monotonic=monotonic)
        """The real live migrations' fixed cost, learned from the ones that ended (the driver)."""
        self.history_window = history_window
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._monotonic = monotonic
        self._clock_ns = clock_ns
        self._nodes: dict[str, NodeRecord] = {}
        self._trend_horizon_ns = 0
        """Reports sent up to this time go into the trends under their own time (_trend_time:
        the manager's clock is read once a minute, not once a report)."""
        self._hot = HotWatch()
        self.quiet = QuietWatch()
        self._vm_nodes: dict[str, set[str]] = {}
        """uuid -> ids of the nodes whose last report has it (find_vm without a scan)."""
        self.owners = VmOwners(self._evict, self._adopt, self._conflict)
        """Which node holds each VM uuid (see ownership.py); copies on other nodes are hidden."""
        self.drain_listeners: list[Callable[[str, bool], None]] = []
        """Called with (node id, draining) when a node's maintenance flag changes."""
        self.pending_drains: set[str] = set()
        """Nodes in maintenance (from the journal) whose agent has not connected since the
        manager started: they come back draining."""
        self.power_listeners: list[Callable[[str, NodeHello | None, bool], None]] = []
        """Called with (node id, its hello, in maintenance) when the manager powers a node off
        or a powered-off node's maintenance flag changes, and with (node id, None, False) when
        a powered-off node's agent connects again (the journal keeps powered-off nodes)."""

    def node_connected(self, hello: NodeHello, connection_id: int) -> bool:
        """Register a (re)connecting node; True when the node id was already known."""
        node_id = hello.identity.node_id
        now = self._monotonic()
        node = self._nodes.get(node_id)
        if node is None:
            node = self._nodes[node_id] = NodeRecord(hello, connection_id, now, self.history_window)
            self._hot.set_limit(node)
            self.bus.publish(EventKind.NODE_JOINED, node_id=node_id, message="agent connected")
            if node_id in self.pending_drains:  # in maintenance before the manager started
                self.pending_drains.discard(node_id)
                node.draining = True
                self.bus.publish(
                    EventKind.NODE_DRAIN_CHANGED, node_id=node_id, message="draining (kept)"
                )
            return False
        node.hello = hello
        self._hot.set_limit(node)
        self.quiet.restart(node)  # its capacity may have changed
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
        self.owners.drop_hidden(node_id)
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
        if report.traffic is not None:
            self.traffic.apply(node_id, report.traffic)
        sent_at = report.sent_at_unix_ns
        samples = report.samples
        if not sent_at:
            sent_at = self._clock_ns()
            samples = list(sample_list(samples, sent_at))
            samples[0::SAMPLE_WIDTH] = [sent_at] * len(report.uuids)
        node.last_seen_unix_ns = sent_at
        node.usage = report.host
        trend_at = sent_at if sent_at <= self._trend_horizon_ns else self._trend_time(sent_at)
        self.trends.before_report(node_id, node.fold, node.vm_history, node.history, trend_at)
        node.history.add(sent_at, report.host)
        self.quiet.follow(node, sent_at, report.host)
        if node.hot_since or report.host.cpu_used_millicores > node.hot_limit:
            self._hot.report(node_id, node, report.host.cpu_used_millicores, sent_at)
        if report.uuids != node.uuids or self.owners.contested:
            report, samples = self._admit(node_id, report, sample_list(samples, sent_at))
            if built is not None and len(built) != len(report.uuids):
                built = {uuid: built[uuid] for uuid in report.uuids}
        if report.vm_pressure or node.vm_pressure:
            node.vm_pressure = MappingProxyType({p.uuid: p.pressure for p in report.vm_pressure})
            self.trends.vm_pressure_report(
                node.fold, self.history_window, trend_at, node.vm_pressure
            )
        uuids, states = report.uuids, report.states
        history = node.vm_history
        if uuids != node.uuids:
            self._index_vms(node_id, node.uuids, uuids)
            self._vms_changed(node_id, node, report)
        elif states != node.states:
            self._states_changed(node_id, node, report)
        history.write_row(uuids, samples, sent_at)
        history.advance()
        self.trends.after_report(node.fold)
        node.set_rows(uuids, states, report.rows, built)
        return True

    def _trend_time(self, sent_at: int) -> int:
        """The time a report goes into the usage trends under: its own, unless the node's clock
        runs more than CLOCK_AHEAD_NS ahead of the manager's, then the manager's (the trends'
        buckets are shared: one node's time decades ahead would expire every other node's
        hour and drop what they report next)."""
        now = self._clock_ns()
        self._trend_horizon_ns = now + CLOCK_AHEAD_NS
        return sent_at if sent_at <= self._trend_horizon_ns else now

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
                # its closing bucket: no report of it will come to write it
                self.trends.settle(node.fold, node.vm_history, node.history)
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
            for listener in self.drain_listeners:
                listener(node_id, draining)

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
        self.traffic.forget(node_id)
        del self._nodes[node_id]
        self._tell_power(node_id, None, False)
        self.bus.publish(EventKind.NODE_FORGOTTEN, node_id=node_id, message="forgotten")

    def report_impossible(self, rule_id: str, reason: str) -> None:
        """A decider could not keep `rule_id` (and kept the VMs running rather than lose
        one): say so once, in the store (``rules check``) and as an event."""
        if self.rules.mark_impossible(rule_id, reason):
            self.bus.publish(EventKind.RULE_CHANGED, message=f"rule {rule_id} impossible: {reason}")

    def report_possible(self, rule_id: str) -> None:
        """A rule reported impossible holds again."""
        if self.rules.mark_possible(rule_id):
            self.bus.publish(EventKind.RULE_CHANGED, message=f"rule {rule_id} holds again")

    def snapshot(self, copy_history: bool = True, built_vms: bool = True) -> ClusterSnapshot:
        """Frozen copy of the cluster, history included. ``copy_history=False`` shares the VM
        histories, ``built_vms=False`` gives VMs as `RecordVms` (built when read): only where
        the state can no longer change (a forked decision process)."""
        node_history = self.node_histories(copy_history)
        vm_histories: dict[str, NodeHistory] = {}
        for node in self._nodes.values():
            history = node.vm_history.copy() if copy_history else node.vm_history
            for uuid in node.uuids:
                vm_histories[uuid] = history
        return ClusterSnapshot(
            cluster_id=self.cluster_id,
            taken_at_unix_ns=self._clock_ns(),
            nodes=tuple(self.views(built_vms)),
            node_history=MappingProxyType(node_history),
            _vm_histories=MappingProxyType(vm_histories),
            rules=self.rules.kept() + self.traffic.soft_rules(),
            migration_fixed_s=self.migration_fixed.seconds(),
        )
