"""ClusterState's side of the one-owner-per-VM rule (ownership.py): the part of a report a
node owns, and the records changed when another node's copy of a VM wins or loses."""

from __future__ import annotations

import logging

from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.node_table import NodeTable
from vmgrid.agents.cluster.state.ownership import VmOwners, conflict_message
from vmgrid.agents.model import VmUsage
from vmgrid.agents.report_rows import SAMPLE_WIDTH, ReportRows, new_vm_usage, vm_row

log = logging.getLogger(__name__)


class OwnedNodes(NodeTable):
    """Node records kept to one node per VM uuid (the callbacks VmOwners calls)."""

    owners: VmOwners

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
        kept_samples = [x for i in keep for x in samples[i * width : (i + 1) * width]]
        rows = ReportRows(
            report.sent_at_unix_ns,
            report.sequence,
            report.host,
            tuple(report.uuids[i] for i in keep),
            tuple(report.states[i] for i in keep),
            tuple(report.rows[i] for i in keep),
            kept_samples,
            tuple(p for p in report.vm_pressure if p.uuid in owned),
        )
        return rows, kept_samples

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
