"""Group checkpoints with memory, and the restore of a whole group from one.

Format: each member's memory in a save file (`virDomainSave`) in `checkpoint_dir`, a directory
every node reaches (an NFS mount; the lab's NFS export), plus an internal qcow2 snapshot of its
shared overlay taken while it is saved (libvirt snapshots an inactive domain's disk with
``qemu-img snapshot -c``). Why not libvirt snapshots with memory: libvirt 9.0 (Debian 12)
takes external memory+disk snapshots but can neither revert nor delete them (revert came in
9.9), and an internal snapshot's memory sits in the qcow2 while its metadata stays on the node
that took it, which is the node that failed. A save file is restored by any node's libvirt
(`virDomainRestore`), and a domain paused before its save comes back paused.

Take, all or nothing: pause every member (one plan through the applier), save each (a
SHUTDOWN_VM plan whose stop mode in the driver's `VmImages` table is a save to the member's
file: its domain stops), snapshot each disk (a direct command: it changes no placement nor
run state), boot each from its file (one plan: the members come back paused, as saved),
resume every member (one plan). The applier holds every member from the first plan to the
last (`PlanExecutor.holding`): between two plans a member may be saved and off, and no other
plan may act on it then. A member's part is recorded once its file and disk snapshot are
written; the checkpoint is listed only when every part is. On any failure every member is
brought back running and the parts written are removed; a partial checkpoint is never
restored, and parts left by a manager that died mid-checkpoint are removed at start
(`clean_partial`).

Restore (HA after a node failure, or an operator's revert), under the same hold: every member
still held by a connected node (the survivors) is paused (one plan) and powered off (one
SHUTDOWN_VM plan, stop mode: destroy), its memory about to be replaced; each overlay is rolled
back to the checkpoint (``qemu-img snapshot -a``); members of the failed node are defined on
their new nodes; then every member boots from its file (one plan) and all resume together
(one plan), so the group continues from one instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from vmgrid.agents.cluster.act.images import SHUTDOWN, StopHow, StopMode, VmImages
from vmgrid.agents.cluster.act.oneshot import run_or_raise
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.submission import ClusterJobs, run_command
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import ConfigError, FailedPrecondition, VmgridError
from vmgrid.agents.model import (
    HOLDS_MEMORY_STATES,
    Command,
    CreateSnapshotCommand,
    DefineCommand,
)
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)

CHECKPOINT_SUBDIR = "checkpoints"


def checkpoint_dir(configured: str, storage_dir: str) -> Path | None:
    """The directory of memory files: `configured`, else ``<storage_dir>/checkpoints`` (made
    when missing), else None (no shared storage: checkpoints hold the disk only). Raises
    ConfigError naming the path when it is missing or not writable."""
    if configured:
        path = Path(configured)
        if not path.is_absolute() or not path.is_dir():
            raise ConfigError(
                f"checkpoint_dir {configured!r} is not an existing directory; accepted: an "
                "absolute path every node reaches (an NFS mount), writable by libvirt"
            )
    elif storage_dir:
        path = Path(storage_dir) / CHECKPOINT_SUBDIR
        try:
            path.mkdir(exist_ok=True)
            _own_like_parent(path)
        except OSError as exc:
            raise ConfigError(f"checkpoint_dir {str(path)!r} cannot be created: {exc}") from None
    else:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"checkpoint_dir {str(path)!r} is not writable")
    return path


class MemoryCheckpoints:
    """Takes, restores and removes the memory parts of a job's checkpoints."""

    def __init__(
        self, jobs: ClusterJobs, directory: Path, images: VmImages, timeout_s: float = 120.0
    ) -> None:
        self.jobs = jobs
        self.images = images
        """The driver's table: the boots from memory files and the saves and power-offs."""
        self.directory = directory
        self.timeout_s = timeout_s

    def files(self, job_id: str, name: str) -> Path:
        return self.directory / f"job-{job_id}" / name

    def complete(self, job_id: str, name: str, members: Sequence[Member]) -> bool:
        """Every member has its part of checkpoint `name`."""
        parts = self.jobs.members.parts(job_id, name)
        return bool(members) and all(m.vm_uuid in parts for m in members)

    async def take(self, job_id: str, name: str, members: Sequence[Member]) -> None:
        """Write every member's part of checkpoint `name`, or none (see the module doc)."""
        folder = self.files(job_id, name)
        with self._hold(job_id, name, members) as hold:
            await asyncio.to_thread(_make_dir, folder)
            saved: list[Member] = []
            try:
                await self._plan(hold, members, ActionKind.SUSPEND, "pause")
                for member in members:  # one at a time: each writes its whole memory to storage
                    path = folder / f"{member.name}.save"
                    await self._stop(hold, [member], StopMode(StopHow.SAVE, str(path)),
                                     f"save-{member.name}")  # fmt: skip
                    saved.append(member)
                    await self._send(member, CreateSnapshotCommand(
                        _id(member, name, "disk"), member.vm_uuid, name, f"vmgrid job {job_id}"))  # fmt: skip
                    self.jobs.members.add_part(job_id, name, member.vm_uuid, str(path))
                await self._boot_saved(hold, saved)
                await self._plan(hold, members, ActionKind.RESUME, "resume")
            except (VmgridError, OSError) as exc:
                log.error("memory checkpoint %s of job %s failed, removed: %s", name, job_id, exc)
                await self._recover(hold, members, saved)
                await self.discard(job_id, name)
                raise

    async def restore(
        self, job_id: str, name: str, members: Sequence[Member], targets: Mapping[str, str]
    ) -> None:
        """Every member back to checkpoint `name`, memory included. `targets` maps the uuid of
        each member to restart elsewhere (its node failed) to its new node; the others run
        where they are (`node_id`) and are rolled back in place."""
        parts = self.jobs.members.parts(job_id, name)
        missing = [m.name for m in members if m.vm_uuid not in parts]
        if missing:
            raise FailedPrecondition(
                f"checkpoint {name!r} of job {job_id!r} has no memory of {', '.join(missing)}"
            )
        survivors = [m for m in members if m.vm_uuid not in targets]
        running = {m.vm_uuid: self._running_on(m.vm_uuid) for m in survivors}
        active = [_on(m, running[m.vm_uuid]) for m in survivors if running[m.vm_uuid]]
        tag = f"{name}-restore-{int(time.time() * 1000)}"
        with self._hold(job_id, tag, members) as hold:
            if active:
                await self._plan(hold, active, ActionKind.SUSPEND, "pause survivors")
                await self._stop(hold, active, StopMode(StopHow.DESTROY), "stop survivors")
            # A member stopped already (on purpose, or by an earlier attempt) restarts where
            # it is defined: the whole group goes back to the checkpoint.
            members = [_on(m, running.get(m.vm_uuid) or m.node_id) for m in members]
            await asyncio.gather(*(
                asyncio.to_thread(roll_back_disk, m.overlay_path, name)
                for m in members if m.overlay_path
            ))  # fmt: skip
            placed = []
            for member in members:
                node = targets.get(member.vm_uuid, member.node_id)
                if node != member.node_id:
                    define = DefineCommand(_id(member, tag, f"define-{node}"), member.domain_xml)
                    await run_command(self.jobs.manager, node, define, self.timeout_s)
                    self.jobs.members.relocate(member.vm_uuid, member.node_id, node)
                placed.append(_on(member, node))
            await self._boot(hold, placed, parts, f"restore checkpoint {name}")
            await self._plan(hold, placed, ActionKind.RESUME, "resume")

    def _running_on(self, vm_uuid: str) -> str:
        """The connected node holding the VM in memory (running or paused), '' if none."""
        state = self.jobs.manager.state
        for node, vm in state.copies(vm_uuid):
            connected = state.node_status(node) is NodeStatus.CONNECTED
            if connected and vm.state in HOLDS_MEMORY_STATES:
                return node
        return ""

    async def discard(self, job_id: str, name: str) -> None:
        """Remove the memory files and part records of checkpoint `name`."""
        await asyncio.to_thread(shutil.rmtree, self.files(job_id, name), True)
        self.jobs.members.remove_parts(job_id, name)

    async def clean_partial(self) -> list[tuple[str, str]]:
        """Remove the parts of checkpoints never completed (a manager that stopped midway)."""
        partial = self.jobs.members.partial()
        for job_id, name in partial:
            log.warning("removing partial memory checkpoint %s of job %s", name, job_id)
            await self.discard(job_id, name)
        return partial

    @contextlib.contextmanager
    def _hold(self, job_id: str, tag: str, members: Sequence[Member]) -> Iterator[_Hold]:
        """Every member held by the applier from the first plan to the last: no decider, HA
        pass or operator acts on one while it is paused, saved and off, or rolled back."""
        hold = _Hold(f"{tag}-{job_id}", job_id, tag)
        with self.jobs.executor.holding(hold.hold_id, [m.vm_uuid for m in members]):
            yield hold

    async def _boot_saved(self, hold: _Hold, saved: Sequence[Member]) -> None:
        folder = self.files(hold.job_id, hold.tag)
        paths = {m.vm_uuid: str(folder / f"{m.name}.save") for m in saved}
        await self._boot(hold, saved, paths, f"checkpoint {hold.tag}: back from memory")

    async def _boot(
        self, hold: _Hold, members: Sequence[Member], paths: Mapping[str, str], why: str
    ) -> None:
        """Boot `members` from their memory files, one plan through the applier (the files
        are also kept in the members' store, for a plan resumed by the next manager)."""
        store, images = self.jobs.members, self.images
        for member in members:
            store.set_boot_image(member.vm_uuid, paths[member.vm_uuid])
            images.set_boot_image(member.vm_uuid, paths[member.vm_uuid])
        try:
            await self._plan(hold, members, ActionKind.BOOT_VM, "boot", why)
        finally:
            for member in members:
                store.set_boot_image(member.vm_uuid, "")
                images.set_boot_image(member.vm_uuid, "")

    async def _stop(
        self, hold: _Hold, members: Sequence[Member], mode: StopMode, step: str
    ) -> None:
        """Stop `members` as `mode` says (saved to its file, powered off), one SHUTDOWN_VM plan
        through the applier."""
        for member in members:
            self.images.set_stop_mode(member.vm_uuid, mode)
        try:
            await self._plan(hold, members, ActionKind.SHUTDOWN_VM, step)
        finally:
            for member in members:
                self.images.set_stop_mode(member.vm_uuid, SHUTDOWN)

    async def _recover(
        self, hold: _Hold, members: Sequence[Member], saved: Sequence[Member]
    ) -> None:
        """After a failed take: every member running again (from its file if it was saved)."""
        try:
            if saved:
                await self._boot_saved(hold, saved)
            await self._plan(hold, members, ActionKind.RESUME, "resume")
        except VmgridError as exc:
            log.error("job %s after failed checkpoint %s: %s", hold.job_id, hold.tag, exc)

    async def _plan(
        self, hold: _Hold, members: Sequence[Member], kind: ActionKind, step: str, why: str = ""
    ) -> None:
        """One action per member, as one plan through the applier, within the hold."""
        reason = why or f"memory checkpoint {hold.tag} of job {hold.job_id}: {step}"
        src = kind is not ActionKind.BOOT_VM
        actions = [
            Action(i, kind, m.vm_uuid, m.node_id if src else None, m.node_id, 0, 1, reason)
            for i, m in enumerate(members)
        ]
        plan_id = f"{hold.hold_id}-{step.replace(' ', '-')}"
        await run_or_raise(self.jobs.executor, plan_id, actions, "checkpoint", hold.hold_id)

    async def _send(self, member: Member, command: Command) -> None:
        await run_command(self.jobs.manager, member.node_id, command, self.timeout_s)


@dataclasses.dataclass(frozen=True, slots=True)
class _Hold:
    hold_id: str
    job_id: str
    tag: str
    """The checkpoint's name (a take) or the restore's tag."""


def roll_back_disk(overlay: str, checkpoint: str) -> None:
    """Apply the checkpoint's disk state to the (shared, now unused) overlay."""
    subprocess.run(["qemu-img", "snapshot", "-a", checkpoint, overlay], check=True, timeout=120)


def _on(member: Member, node: str) -> Member:
    return dataclasses.replace(member, node_id=node)


def _make_dir(path: Path) -> None:
    for part in (path.parent, path):
        part.mkdir(exist_ok=True)
        _own_like_parent(part)


def _own_like_parent(path: Path) -> None:
    """The hypervisor's user writes the files: a directory made by root takes its parent's
    owner (the lab's user, or libvirt's on an NFS mount)."""
    parent = path.parent.stat()
    if os.geteuid() == 0 and path.stat().st_uid != parent.st_uid:
        os.chown(path, parent.st_uid, parent.st_gid)
    path.chmod(0o775)


def _id(member: Member, name: str, step: str) -> str:
    return f"{name}-{member.job_id}-{member.name}-{step}"
