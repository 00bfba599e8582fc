"""A VM arriving through a grid move, started in the destination cluster (`commands.py`).

A simulated arrival is defined and started on its reserved node through the cluster's
applier; when the applier refuses that start (the room was taken since the reservation), the
copy defined there is removed and the VM is placed again, that node excluded, and started where
it is placed. A real arrival (a libvirt live migration) is awaited until its node reports it.
A rule the start would break is judged exactly as the applier will judge it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from vmgrid.agents import grid_model as gm
from vmgrid.agents import model as am
from vmgrid.agents.cluster.act.driver import simulated_domain_xml
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.oneshot import one_action, run_or_raise
from vmgrid.agents.cluster.act.preconditions import Preconditions
from vmgrid.agents.cluster.grid.journal import GridJournal, Reservation
from vmgrid.agents.cluster.grid.reservations import arriving_vm, place
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.rules.check import arrival_refusal_of
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import FailedPrecondition, NotFound, VmgridError
from vmgrid.solver.plan import ActionKind

log = logging.getLogger(__name__)

# A shutting-down VM is not one a grid move may take out, nor one a move in has started.
RUNNING = am.RUNNING_STATES - {am.VmState.SHUTTING_DOWN}
_ARRIVAL_WAIT_S = 30.0


class ArrivalStarter:
    """The destination's half of a commit; `require` sends a node command and raises
    VmgridError unless it succeeds, `reserved` lists the reservations held now."""

    def __init__(
        self,
        manager: ClusterManager,
        executor: PlanExecutor,
        arrivals: Preconditions,
        journal: GridJournal,
        require: Callable[[str, am.Command], Awaitable[None]],
        reserved: Callable[[], list[Reservation]],
    ) -> None:
        self.manager = manager
        self.executor = executor
        self.arrivals = arrivals
        self.journal = journal
        self._require = require
        self._reserved = reserved

    async def arrive_simulated(self, cid: str, r: Reservation) -> Reservation:
        """Define and start the VM on its reserved node, or, when the applier refuses that
        start (the room was taken since the reservation: by an operator's VM, a restart, a
        decision that did not count the reservation), on another node of this cluster that
        takes it now. Returns the reservation as it ends (its node may have changed)."""
        if self._running_here(r.vm.vm_uuid):
            return r
        try:
            await self._start_on(cid, r)
            return r
        except VmgridError as refused:
            elsewhere = await self._replaced(cid, r, refused)
        await self._start_on(f"{cid}/{elsewhere.node_id}", elsewhere)
        return elsewhere

    async def _start_on(self, cid: str, r: Reservation) -> None:
        vm = am.VmUsage(
            r.vm.vm_uuid,
            r.vm.name or f"vm-{uuid.UUID(r.vm.vm_uuid).hex[:8]}",
            am.VmState.DEFINED,
            vcpus=max(1, -(-r.vm.cpu_millicores // 1000)),
            cpu_used_millicores=0,
            memory_used_bytes=0,
            memory_allocated_bytes=r.vm.memory_bytes,
        )
        await self._require(r.node_id, am.DefineCommand(f"{cid}/define", simulated_domain_xml(vm)))
        self._rules_it_breaks(r)
        reason = f"arrives from another cluster (reservation {r.reservation_id})"
        start = one_action(ActionKind.BOOT_VM, vm.uuid, reason, dst=r.node_id)
        await run_or_raise(self.executor, f"grid-{cid}-start", [start], origin="grid")

    async def _replaced(self, cid: str, r: Reservation, refused: VmgridError) -> Reservation:
        """The reservation moved to another node that takes the VM now, journaled; its copy
        defined on the reserved node is removed first, so the VM is never defined (nor run)
        on two nodes. FailedPrecondition, naming the first refusal, when the reserved node is
        not connected (a copy there could not be removed), the copy cannot be removed (it
        runs: the start went through after all), or no other node can take the VM; the
        coordinator then commits again later."""
        name = r.vm.name or r.vm.vm_uuid
        state = self.manager.state
        if state.node_status(r.node_id) is not NodeStatus.CONNECTED:
            raise FailedPrecondition(
                f"{name} did not start on {r.node_id} ({refused}); node {r.node_id} is "
                f"{state.node_status(r.node_id).value}, so it is not placed elsewhere yet"
            )
        try:
            await self._require(r.node_id, am.UndefineCommand(f"{cid}/undefine", r.vm.vm_uuid))
        except VmgridError as exc:
            raise FailedPrecondition(
                f"{name} did not start on {r.node_id} ({refused}); its copy there could not be "
                f"removed ({exc}), so it is not placed elsewhere"
            ) from None
        held = [h for h in self._reserved() if h.reservation_id != r.reservation_id]
        # it arrives the way it was reserved: defined and started on a simulated node
        unlike = [v.node_id for v in state.views() if v.identity.simulated != r.simulated]
        try:
            node = await asyncio.to_thread(
                place, state.snapshot(), r.vm, r.reservation_id, held, (r.node_id, *unlike)
            )
            self.refuse_if_it_breaks(r.vm, node)
        except FailedPrecondition as exc:
            raise FailedPrecondition(
                f"{name} did not start on {r.node_id} ({refused}); no other node takes it "
                f"now: {exc}"
            ) from None
        moved = Reservation(r.reservation_id, r.vm, node, r.simulated, r.expires_unix_ns, r.state)
        self.journal.put_reservation(moved)
        log.warning(
            "grid arrival %s: %s did not start on %s (%s); starting it on %s",
            r.reservation_id,
            name,
            r.node_id,
            refused,
            node,
        )
        return moved

    async def remove_copy(self, cid: str, r: Reservation) -> None:
        """Before a simulated reservation is released: undefine the copy of its VM a failed
        start left on a node of this cluster. FailedPrecondition when the VM is not stopped
        there (the start went through: the reservation is kept, a commit finds the VM
        running) or its node is not connected (the copy cannot be removed now)."""
        try:
            node, vm = self.manager.state.find_vm(r.vm.vm_uuid)
        except NotFound:
            return
        name = r.vm.name or r.vm.vm_uuid
        if vm.state not in am.STOPPED_STATES:
            raise FailedPrecondition(
                f"{name} is {vm.state.value} on {node} in this cluster: reservation "
                f"{r.reservation_id!r} is kept (commit it)"
            )
        status = self.manager.state.node_status(node)
        if status is not NodeStatus.CONNECTED:
            raise FailedPrecondition(
                f"a copy of {name} is defined on {node}, which is {status.value}: it cannot be "
                f"removed now, so reservation {r.reservation_id!r} is kept"
            )
        await self._require(node, am.UndefineCommand(f"{cid}/undefine", r.vm.vm_uuid))

    def refuse_if_it_breaks(self, vm: gm.VmDemand, node: str) -> None:
        """FailedPrecondition naming the rule when the VM starting on `node` would break one,
        as the applier judges it. The placement posts only the rules over connected nodes; a
        gather whose other member sits on a lost node binds the VM to that node (its VMs come
        back with it), so no node can take it now: the move is refused while the VM is still
        at its source, rather than found out once it has left."""
        arriving = arriving_vm(vm)
        broken = self.arrivals.arrival_breaks(node, arriving)
        if broken:
            raise FailedPrecondition(
                f"{arrival_refusal_of(broken[0], arriving, node)} (judged as its start would "
                "be: the VMs of a lost node count where they were last seen)"
            )

    def _rules_it_breaks(self, r: Reservation) -> None:
        """The VM has left its source cluster: it starts here whatever happens. A rule its
        reserved node breaks, as the applier judges the start (one added since the
        reservation, or whose other VMs' node was lost since), is reported impossible rather
        than leave the VM running nowhere."""
        state = self.manager.state
        for rule in self.arrivals.arrival_breaks(r.node_id, arriving_vm(r.vm)):
            why = f"{r.vm.name or r.vm.vm_uuid} arrived on {r.node_id}, reserved before the rule"
            state.report_impossible(rule.rule_id, why)

    async def await_arrival(self, r: Reservation) -> None:
        deadline = asyncio.get_running_loop().time() + _ARRIVAL_WAIT_S
        while not self._running_here(r.vm.vm_uuid):
            if asyncio.get_running_loop().time() > deadline:
                raise FailedPrecondition(
                    f"VM {r.vm.name or r.vm.vm_uuid} was not reported on {r.node_id} within "
                    f"{_ARRIVAL_WAIT_S:.0f} s"
                )
            await asyncio.sleep(0.2)

    def _running_here(self, vm_uuid: str) -> bool:
        try:
            _, vm = self.manager.state.find_vm(vm_uuid)
        except NotFound:
            return False
        return vm.state in RUNNING
