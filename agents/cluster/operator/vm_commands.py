"""The operator's direct actions: suspend, resume, snapshots, and node maintenance.

Suspend and resume change a VM's state, so each is a one-action plan run by the plan executor
(journaled, re-checked on fresh state, refused while another plan holds the VM). Snapshots leave
the VM as it is: they are single agent commands awaited to their final result. The VM's state is
checked first so that a request that cannot work is refused with a reason instead of reaching
libvirt. Drain and undrain go through the decision loop (maintenance mode), which moves the VMs
away and later brings them back.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.oneshot import one_action, plan_id_for, run_or_raise
from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.state.state import NodeView
from vmgrid.agents.errors import CommandFailed, FailedPrecondition, InvalidArgument, NotFound
from vmgrid.solver.plan import ActionKind

COMMAND_TIMEOUT_S = 120.0
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class VmCommands:
    """Agent commands on behalf of an operator (call from the runtime's event loop)."""

    def __init__(self, runtime: ClusterParts, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self._runtime = runtime
        self._timeout_s = timeout_s

    def _find(self, vm_uuid: str) -> tuple[str, m.VmUsage]:
        if not vm_uuid:
            raise InvalidArgument("vm_uuid is empty; give the uuid of a VM (see vmgridctl vms)")
        return self._runtime.manager.state.find_vm(vm_uuid)

    async def _send(
        self, vm_uuid: str, verb: str, make: Callable[[str], m.Command], command_id: str
    ) -> m.CommandResult:
        node, vm = self._find(vm_uuid)
        executor = self._runtime.executor
        changes_vm = verb != "list snapshots"
        holder = executor.holder(vm_uuid)
        if holder is not None and changes_vm:
            raise FailedPrecondition(
                f"VM {vm.name or vm_uuid} is held by plan {holder}; {verb} it once that plan ends"
            )
        cid = command_id or f"op-{verb}-{uuid.uuid4().hex[:12]}"
        # Held by the applier while the node works: no plan moves, stops or restarts the VM
        # under a snapshot or a revert (a revert may also change its run state).
        hold = executor.holding(cid, [vm_uuid]) if changes_vm else contextlib.nullcontext()
        with hold:
            result = await self._runtime.manager.send_command(node, make(cid), self._timeout_s)
        if result.state is not m.CommandState.SUCCEEDED:
            raise FailedPrecondition(
                f"{verb} of VM {vm.name or vm_uuid} on {node} failed: {result.message}"
            )
        return result

    async def suspend(self, vm_uuid: str, command_id: str = "") -> m.CommandResult:
        _, vm = self._find(vm_uuid)
        if vm.state not in m.MOVABLE_STATES:
            raise FailedPrecondition(
                f"VM {vm.name or vm_uuid} is {vm.state.value}; only a running VM can be suspended"
            )
        return await self._planned(ActionKind.SUSPEND, vm_uuid, "suspend", command_id)

    async def resume(self, vm_uuid: str, command_id: str = "") -> m.CommandResult:
        _, vm = self._find(vm_uuid)
        if vm.state is not m.VmState.PAUSED:
            raise FailedPrecondition(
                f"VM {vm.name or vm_uuid} is {vm.state.value}; only a paused VM can be resumed"
            )
        return await self._planned(ActionKind.RESUME, vm_uuid, "resume", command_id)

    async def _planned(
        self, kind: ActionKind, vm_uuid: str, verb: str, command_id: str
    ) -> m.CommandResult:
        """Run `kind` on the VM as a one-action plan; its result as a command result."""
        node, vm = self._find(vm_uuid)
        plan_id = plan_id_for(f"op-{verb}", command_id)
        action = one_action(kind, vm_uuid, f"operator request: {verb}", src=node, dst=node)
        executor = self._runtime.executor
        try:
            await run_or_raise(executor, plan_id, [action], origin="operator")
        except CommandFailed as exc:
            raise FailedPrecondition(
                f"{verb} of VM {vm.name or vm_uuid} on {node}: {exc}"
            ) from None
        record = executor.journal.plan(plan_id)
        done = record.actions[0] if record is not None else None
        return m.CommandResult(
            command_id or plan_id,
            m.CommandState.SUCCEEDED,
            1.0,
            done.message if done else "",
            done.simulated if done else False,
            vm_uuid=vm_uuid,
        )

    async def list_snapshots(self, vm_uuid: str) -> tuple[str, ...]:
        result = await self._send(
            vm_uuid, "list snapshots", lambda c: m.ListSnapshotsCommand(c, vm_uuid), ""
        )
        return result.snapshot_names

    async def create_snapshot(
        self, vm_uuid: str, name: str, description: str = "", command_id: str = ""
    ) -> m.CommandResult:
        _check_name(name)
        _, vm = self._find(vm_uuid)
        if name in await self.list_snapshots(vm_uuid):
            raise FailedPrecondition(
                f"VM {vm.name or vm_uuid} already has a snapshot {name!r}; pick another name"
            )
        return await self._send(
            vm_uuid,
            "snapshot",
            lambda c: m.CreateSnapshotCommand(c, vm_uuid, name, description),
            command_id,
        )

    async def revert_snapshot(
        self, vm_uuid: str, name: str, command_id: str = ""
    ) -> m.CommandResult:
        await self._require_snapshot(vm_uuid, name)
        return await self._send(
            vm_uuid, "revert", lambda c: m.RevertSnapshotCommand(c, vm_uuid, name), command_id
        )

    async def delete_snapshot(
        self, vm_uuid: str, name: str, command_id: str = ""
    ) -> m.CommandResult:
        await self._require_snapshot(vm_uuid, name)
        return await self._send(
            vm_uuid, "delete", lambda c: m.DeleteSnapshotCommand(c, vm_uuid, name), command_id
        )

    async def _require_snapshot(self, vm_uuid: str, name: str) -> None:
        _check_name(name)
        _, vm = self._find(vm_uuid)
        names = await self.list_snapshots(vm_uuid)
        if name not in names:
            raise NotFound(
                f"VM {vm.name or vm_uuid} has no snapshot {name!r} "
                f"(has: {', '.join(names) or 'none'})"
            )

    def drain(self, node_id: str) -> NodeView:
        """Put a node in maintenance; the decision loop moves its VMs away."""
        self._node(node_id)
        self._runtime.loop.drain(node_id)
        return self._node(node_id)

    def undrain(self, node_id: str) -> NodeView:
        """Take a node out of maintenance; the VMs drained from it come back."""
        self._node(node_id)
        self._runtime.loop.undrain(node_id)
        return self._node(node_id)

    def forget(self, node_id: str) -> str:
        """Remove a node from the state, its history and the journal; FailedPrecondition
        while its agent is connected or it holds VMs."""
        self._node(node_id)
        self._runtime.loop.forget_node(node_id)
        return node_id

    def _node(self, node_id: str) -> NodeView:
        if not node_id:
            raise InvalidArgument("node_id is empty; give a node id (see vmgridctl nodes)")
        state = self._runtime.manager.state
        if node_id not in state.node_ids():
            raise NotFound(f"node {node_id!r} is not in the cluster (known: {state.node_ids()})")
        return state.view(node_id)


def _check_name(name: str) -> None:
    if not _SNAPSHOT_NAME.match(name):
        raise InvalidArgument(
            f"snapshot name {name!r} is not accepted; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
