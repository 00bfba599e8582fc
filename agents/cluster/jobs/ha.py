"""Node failure: fence, then restart the node's VMs elsewhere; never run a VM twice.

A node is declared FAILED only when both hold: the manager lost its heartbeat (state LOST) and
it is fenced, i.e. a configured fence command exited 0, or (without one) its libvirt URI does
not answer ``libvirt.open`` within the fence timeout. A silent node whose libvirt still answers
is partitioned, not dead: nothing is restarted, so no VM can run twice.

Once failed, the commands still awaiting its answer fail at once (`ClusterManager.fail_pending`:
a plan that was moving one of its VMs ends and lets go of it), and every job member that no
connected node holds in memory and that was last seen holding memory on it (`_stranded`: its
own last report, or where HA last saw the member run, since a migration in flight can take the
uuid from a silent node's record) restarts on the connected nodes in HA order (priority, then
size; `vmgrid.solver.admission.restart_order`), each on the node with most room that keeps every
placement rule (a group's spread, say) when there is one; when none is, the member restarts all
the same and the rules it breaks are reported impossible. The start is a one-action plan run by
the plan executor, which re-checks it on fresh state like any other; a restart that cannot be
done yet (the VM still held by a plan, no room) is tried again each pass while the node stays
failed, and its reason logged once. When the member's job has a complete checkpoint with
memory (memory_checkpoints.py), the whole job goes back to the latest one: the stranded members
restore their memory on their new nodes and the survivors are rolled back to the same
checkpoint in place, so that the group continues from one instant (a survivor left running
would be ahead of its restarted peers). Otherwise the restart holds the disk only, and says
so in the log: the member's overlay on shared storage is rolled back to the latest checkpoint
(``qemu-img snapshot -a``) when there is one, then it cold-boots. Each relocation is journaled (`MemberStore.relocate`):
when the failed node's agent reconnects, its stale copies are destroyed and undefined, and
those commands are put on its stream before any other command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
import time
from dataclasses import dataclass

from vmgrid.agents.cluster.act.oneshot import one_action, run_or_raise
from vmgrid.agents.cluster.jobs.checkpoints import Checkpoints
from vmgrid.agents.cluster.jobs.fencing import HaConfig, fence
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.memory_checkpoints import roll_back_disk
from vmgrid.agents.cluster.jobs.restart_placement import as_vm, restart_reason, restart_target
from vmgrid.agents.cluster.jobs.submission import ClusterJobs, run_command
from vmgrid.agents.cluster.link.manager import NodeSession
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import VmgridError
from vmgrid.agents.model import (
    HOLDS_MEMORY_STATES,
    DefineCommand,
    DestroyCommand,
    UndefineCommand,
    VmUsage,
)
from vmgrid.solver.admission import restart_order
from vmgrid.solver.model import Model
from vmgrid.solver.plan import ActionKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Restart:
    """One member restarted elsewhere (checkpoint empty: cold boot from its disk)."""

    vm_name: str
    vm_uuid: str
    from_node: str
    to_node: str
    checkpoint: str
    with_memory: bool = False
    """Restored from the checkpoint's memory (else a cold boot from the disk)."""


class HaMonitor:
    """Watches lost nodes, restarts fenced nodes' members, cleans stale copies on return."""

    def __init__(self, jobs: ClusterJobs, checkpoints: Checkpoints, config: HaConfig) -> None:
        self.jobs = jobs
        self.checkpoints = checkpoints
        self.config = config
        self.failed: dict[str, str] = {}
        """node id -> how it was fenced."""
        self.restarts: list[Restart] = []
        self._refused: set[str] = set()
        self._cleaners: set[asyncio.Task[None]] = set()
        self._cleaning: set[str] = set()
        self._reasons: dict[str, str] = {}
        """vm uuid -> the reason of its restart, from the placement just chosen."""
        self._seen: dict[str, str] = {}
        """member uuid -> the connected node last seen holding it in memory."""
        self._told: dict[str, str] = {}
        """member uuid -> the last reason logged for not restarting it."""
        jobs.manager.session_hooks.append(self._on_session)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except VmgridError as exc:
                log.warning("failure handling: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.period_s)

    async def check(self) -> list[Restart]:
        """One pass: note where members run, fence newly lost nodes, then restart every member
        of a failed node that runs on no connected node. A member whose restart could not be
        done (its VM still held by a plan that was moving it, no room yet) is tried again on
        the next pass, for as long as its node stays failed. Returns the restarts done."""
        state = self.jobs.manager.state
        members = self.jobs.members.members()
        self._note_where(members)
        for view in state.views():
            node = view.node_id
            if view.status is NodeStatus.CONNECTED:
                self.failed.pop(node, None)
                self._refused.discard(node)
                self._clean_returned(node)
                continue
            if node in self.failed:
                continue
            verdict = await fence(view, self.config)
            if not verdict.fenced:
                if node not in self._refused:
                    log.warning("node %s lost, not fenced (%s): no restart", node, verdict.how)
                self._refused.add(node)
                continue
            log.warning("node %s failed (%s): restarting its VMs", node, verdict.how)
            self.failed[node] = verdict.how
            dropped = self.jobs.manager.fail_pending(node, f"the node failed ({verdict.how})")
            if dropped:
                log.warning("node %s failed: %d command(s) to it will never run", node, dropped)
        if not self.failed:
            return []
        return await self._restart(self._stranded(members))

    def _note_where(self, members: list[Member]) -> None:
        """Remember, for each member, the connected node last seen holding it in memory: a
        node that fails may have lost its own record of a member since (another node's copy
        being prepared by a migration takes the VM's uuid from a silent node)."""
        state = self.jobs.manager.state
        seen = {}
        for member in members:
            last = self._seen.get(member.vm_uuid, member.node_id)
            for node, vm in state.copies(member.vm_uuid):
                if (
                    vm.state in HOLDS_MEMORY_STATES
                    and state.node_status(node) is NodeStatus.CONNECTED
                ):
                    last = node
            seen[member.vm_uuid] = last
        self._seen = seen

    def _stranded(self, members: list[Member]) -> list[Member]:
        """Members to restart: held in memory by no connected node, and last seen holding
        memory on a failed node (or shown so by its last report). A member stopped on purpose
        (shut off where it ran) and one a lost but unfenced node may still run stay as they
        are. Each comes back with its failed node as `node_id`."""
        state = self.jobs.manager.state
        found = []
        for member in members:
            copies = state.copies(member.vm_uuid)
            holding = [n for n, vm in copies if vm.state in HOLDS_MEMORY_STATES]
            if any(state.node_status(n) is NodeStatus.CONNECTED for n in holding):
                continue
            failed = [n for n in holding if n in self.failed]
            last = self._seen.get(member.vm_uuid, member.node_id)
            if not failed and last in self.failed and not _stopped_on(copies, last):
                failed = [last]
            if failed and not any(n not in self.failed for n in holding):
                found.append(dataclasses.replace(member, node_id=failed[0]))
        return found

    async def _restart(self, stranded: list[Member]) -> list[Restart]:
        model = to_model(self.jobs.manager.state.snapshot())
        by_uuid = {m.vm_uuid: m for m in stranded}
        done: list[Restart] = []
        restored: set[str] = set()
        for vm in restart_order(as_vm(m) for m in stranded):
            member = by_uuid[vm.name]
            if member.job_id in restored:
                continue
            checkpoint = self.checkpoints.latest_with_memory(member.job_id)
            if checkpoint:
                restored.add(member.job_id)
                group = [m for m in stranded if m.job_id == member.job_id]
                model, restarts = await self._restore_job(model, group, checkpoint)
                done.extend(restarts)
                continue
            target = self._target(model, member)
            if target is None:
                self._tell(member, f"no node has room to restart {member.name} (from "
                           f"{member.node_id}); trying again each pass")  # fmt: skip
                continue
            try:
                restart = await self._restart_on(member, target)
            except (VmgridError, OSError, subprocess.SubprocessError) as exc:
                self._tell(member, f"restart of {member.name} on {target} failed: {exc}; "
                           "trying again next pass")  # fmt: skip
                continue
            self._told.pop(member.vm_uuid, None)
            model = model.with_vms([as_vm(member).on(target)])
            done.append(restart)
        self.restarts.extend(done)
        return done

    async def _restore_job(
        self, model: Model, stranded: list[Member], checkpoint: str
    ) -> tuple[Model, list[Restart]]:
        """The whole job back to `checkpoint` with its memory: the stranded members on new
        nodes, the others rolled back where they run. Nothing is done (and it is tried again
        next pass) unless every stranded member has a node."""
        job_id = stranded[0].job_id
        targets: dict[str, str] = {}
        placed = model
        for member in stranded:
            target = self._target(placed, member)
            if target is None:
                self._tell(member, f"no node has room to restart {member.name} (from "
                           f"{member.node_id}); trying again each pass")  # fmt: skip
                return model, []
            targets[member.vm_uuid] = target
            placed = placed.with_vms([as_vm(member).on(target)])
        by_uuid = {m.vm_uuid: m for m in stranded}
        members = [by_uuid.get(m.vm_uuid, m) for m in self.jobs.members.members(job_id)]
        memory = self.checkpoints.memory
        assert memory is not None
        try:
            await memory.restore(job_id, checkpoint, members, targets)
        except (VmgridError, OSError, subprocess.SubprocessError) as exc:
            for member in stranded:
                self._tell(member, f"restore of job {job_id} from {checkpoint} failed: {exc}; "
                           "trying again next pass")  # fmt: skip
            return model, []
        for member in stranded:
            self._told.pop(member.vm_uuid, None)
            self._reasons.pop(member.vm_uuid, None)
        survivors = [m for m in members if m.vm_uuid not in targets]
        for m in stranded:
            self._announce(m, f"restarted on {targets[m.vm_uuid]} from checkpoint {checkpoint}"
                           f" with its memory ({m.node_id} failed)")  # fmt: skip
        for m in survivors:
            self._announce(m, f"rolled back on {m.node_id} to checkpoint {checkpoint} with its "
                           "memory, with the group's restarted members")  # fmt: skip
        restarts = [
            Restart(m.name, m.vm_uuid, m.node_id, targets[m.vm_uuid], checkpoint, True)
            for m in stranded
        ]
        return placed, restarts

    def _announce(self, member: Member, what: str) -> None:
        """An HA restart in the log and on the cluster's event stream."""
        message = f"{member.name} (job {member.job_id}) {what}"
        log.warning("%s", message)
        self.jobs.manager.bus.publish(
            EventKind.VM_LIFECYCLE, node_id=member.node_id, vm_uuid=member.vm_uuid,
            message=message,
        )  # fmt: skip

    def _tell(self, member: Member, message: str) -> None:
        """Log why a member is not running yet, once per reason (a pass runs every second)."""
        if self._told.get(member.vm_uuid) != message:
            self._told[member.vm_uuid] = message
            log.error("%s", message)

    def _target(self, model: Model, member: Member) -> str | None:
        """Where the member restarts (`restart_target`); the rules that choice breaks are
        reported impossible (a running VM beats a kept rule, and the operator is told)."""
        state = self.jobs.manager.state
        placement = restart_target(model, state.rules.kept(), member)
        if placement.node is None:
            return None
        for rule in placement.broken:
            state.report_impossible(
                rule.rule_id,
                f"no node with room keeps it for {member.name} restarted after a node failure",
            )
        self._reasons[member.vm_uuid] = restart_reason(model, member, placement)
        return placement.node

    async def _restart_on(self, member: Member, target: str) -> Restart:
        """Roll the disk back, define on `target`, boot through the applier: all under one
        hold, so a member that another plan holds is refused (FailedPrecondition naming that
        plan, tried again next pass) before its disk or any node is touched."""
        checkpoint = self.checkpoints.latest(member.job_id) or ""
        tag = f"ha-{member.vm_uuid}-{target}-{int(time.time() * 1000)}"
        with self.jobs.executor.holding(tag, [member.vm_uuid]):
            disk = f"rolled back to {checkpoint}" if checkpoint else "as it was"
            self._announce(member, f"restarts on {target} from its disk only ({disk}): its job "
                           "has no checkpoint with memory")  # fmt: skip
            if checkpoint and member.overlay_path:
                await asyncio.to_thread(roll_back_disk, member.overlay_path, checkpoint)
            timeout = self.config.command_timeout_s
            manager = self.jobs.manager
            await run_command(
                manager, target, DefineCommand(f"{tag}-define", member.domain_xml), timeout
            )
            self.jobs.members.relocate(member.vm_uuid, member.node_id, target)
            reason = self._reasons.pop(member.vm_uuid, "") or (
                f"HA restart of {member.name} after {member.node_id} failed"
            )
            start = one_action(ActionKind.BOOT_VM, member.vm_uuid, reason, dst=target)
            await run_or_raise(self.jobs.executor, tag, [start], origin="ha", within=tag)
        log.info("restarted %s on %s (checkpoint %s)", member.name, target, checkpoint or "none")
        return Restart(member.name, member.vm_uuid, member.node_id, target, checkpoint)

    def _on_session(self, session: NodeSession) -> None:
        """A node's agent is back: its stale copies are destroyed first, then undefined."""
        stale = self.jobs.members.stale(session.node_id)
        if not stale:
            return
        tag = f"stale-{session.connection_id}"
        for vm_uuid in stale:
            session.outbox.put_nowait(DestroyCommand(f"{tag}-{vm_uuid}-destroy", vm_uuid))
        task = asyncio.get_running_loop().create_task(self._clean(session.node_id, stale, tag))
        self._cleaners.add(task)
        task.add_done_callback(self._cleaners.discard)

    def _clean_returned(self, node: str) -> None:
        """Fallback for an agent that resumed its old stream (no new session to hook)."""
        if node in self._cleaning or not self.jobs.members.stale(node):
            return
        stale = self.jobs.members.stale(node)
        task = asyncio.get_running_loop().create_task(self._clean(node, stale, "stale-resumed"))
        self._cleaners.add(task)
        task.add_done_callback(self._cleaners.discard)

    async def _clean(self, node: str, stale: list[str], tag: str) -> None:
        """Destroy (may fail: the copy can be gone already), then undefine (must succeed)."""
        self._cleaning.add(node)
        try:
            await self._clean_each(node, stale, tag)
        finally:
            self._cleaning.discard(node)

    async def _clean_each(self, node: str, stale: list[str], tag: str) -> None:
        manager, timeout = self.jobs.manager, self.config.command_timeout_s
        for vm_uuid in stale:
            destroy = DestroyCommand(f"{tag}-{vm_uuid}-destroy", vm_uuid)
            undefine = UndefineCommand(f"{tag}-{vm_uuid}-undefine", vm_uuid)
            try:
                await manager.send_command(node, destroy, timeout)
                await run_command(manager, node, undefine, timeout)
            except VmgridError as exc:
                log.error("stale copy of %s on %s not removed: %s", vm_uuid, node, exc)
                continue
            self.jobs.members.cleaned(node, vm_uuid)
            log.info("removed the stale copy of %s on returning node %s", vm_uuid, node)


def _stopped_on(copies: list[tuple[str, VmUsage]], node: str) -> bool:
    """Whether `node`'s last report shows the VM stopped (shut off there before it failed)."""
    return any(n == node and vm.state not in HOLDS_MEMORY_STATES for n, vm in copies)
