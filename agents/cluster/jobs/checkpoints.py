"""Checkpoints of jobs, coordinated per group: memory and disk, or the disk alone.

With a checkpoint directory (`memory`, see memory_checkpoints.py) every checkpoint holds each
member's memory in a save file there and its disk in an internal snapshot, all or nothing, and
`revert` and HA restore the memory too. Without one (no shared storage), a group (a parallel application) is checkpointed consistently: every member is paused, then
every member is snapshotted, then every member resumed (always, even when a snapshot failed),
so the members' states belong to the same instant. A single VM is snapshotted while it runs
(libvirt's internal qcow2 snapshot; the guest is not stopped). A policy per job (interval,
retention) comes from the job's ``[snapshot]`` table or `set_policy`; `run` takes checkpoints
when due and deletes those beyond retention. Checkpoint names sort by time (``ckpt-<ms>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from vmgrid.agents.cluster.act.oneshot import run_or_raise
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.memory_checkpoints import MemoryCheckpoints
from vmgrid.agents.cluster.jobs.submission import ClusterJobs, run_command
from vmgrid.agents.errors import FailedPrecondition, NotFound, VmgridError
from vmgrid.agents.jobmodel import JobState, SnapshotPolicy
from vmgrid.agents.model import (
    Command,
    CreateSnapshotCommand,
    DeleteSnapshotCommand,
    RevertSnapshotCommand,
)
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)


class Checkpoints:
    """Take, list, revert, delete and prune checkpoints of the jobs in `jobs`."""

    def __init__(
        self,
        jobs: ClusterJobs,
        timeout_s: float = 120.0,
        clock: Callable[[], float] = time.time,
        default_policy: SnapshotPolicy | None = None,
        memory: MemoryCheckpoints | None = None,
    ) -> None:
        self.jobs = jobs
        self.memory = memory
        """None: checkpoints hold the disk only (no shared checkpoint directory)."""
        self.default_policy = default_policy
        self.timeout_s = timeout_s
        self._clock = clock
        self._policies: dict[str, SnapshotPolicy] = {}

    def set_policy(self, job_id: str, policy: SnapshotPolicy) -> None:
        """Override the job's own snapshot policy (kept in memory)."""
        self.jobs.get(job_id)
        self._policies[job_id] = policy

    def policy(self, job_id: str) -> SnapshotPolicy | None:
        own = self._policies.get(job_id) or self.jobs.get(job_id).spec.snapshot
        return own or self.default_policy

    def taken(self, job_id: str) -> list[tuple[str, float]]:
        """(name, taken_at unix s), oldest first."""
        self.jobs.get(job_id)
        return self.jobs.members.checkpoints(job_id)

    def latest(self, job_id: str) -> str | None:
        taken = self.jobs.members.checkpoints(job_id)
        return taken[-1][0] if taken else None

    def latest_with_memory(self, job_id: str) -> str | None:
        """The newest complete checkpoint holding every member's memory, if any."""
        if self.memory is None:
            return None
        members = self.jobs.members.members(job_id)
        for name, _ in reversed(self.jobs.members.checkpoints(job_id)):
            if self.memory.complete(job_id, name, members):
                return name
        return None

    async def take(self, job_id: str) -> str:
        """A coordinated checkpoint of every member; returns its name."""
        members = self._members(job_id)
        now = self._clock()
        name = f"ckpt-{int(now * 1000)}"
        if self.memory is not None:
            await self.memory.take(job_id, name, members)
        else:
            await self._take_disk(job_id, name, members)
        self.jobs.members.add_checkpoint(job_id, name, now)
        policy = self.policy(job_id)
        if policy is not None:
            await self.prune(job_id, policy.retention)
        return name

    async def _take_disk(self, job_id: str, name: str, members: list[Member]) -> None:
        """Internal snapshots (a running single VM's holds its memory, only on its node)."""
        group = len(members) > 1
        if not group:
            await self._snapshot(job_id, name, members)
            return
        # Held by the applier from the pause to the resume: no other plan acts on a member
        # while it is paused between the two plans.
        with self.jobs.executor.holding(f"{name}-{job_id}", [m.vm_uuid for m in members]):
            await self._all(job_id, members, ActionKind.SUSPEND, name, "pause")
            try:
                await self._snapshot(job_id, name, members)
            finally:
                await self._all(job_id, members, ActionKind.RESUME, name, "resume")

    async def _snapshot(self, job_id: str, name: str, members: list[Member]) -> None:
        await self._each(
            members,
            lambda m: CreateSnapshotCommand(
                _id(m, name, "snap"), m.vm_uuid, name, f"vmgrid job {job_id}"
            ),
        )

    async def revert(self, job_id: str, name: str) -> None:
        """Every member back to checkpoint `name`: from its memory when the checkpoint holds
        it (see memory_checkpoints.py), else libvirt's revert on each member's node."""
        self._known(job_id, name)
        members = self._members(job_id)
        if self.memory is not None and self.memory.complete(job_id, name, members):
            await self.memory.restore(job_id, name, members, {})
            return
        await self._revert_disk(job_id, name, members)

    async def _revert_disk(self, job_id: str, name: str, members: list[Member]) -> None:
        """libvirt's revert on each member's node, with the members held by the applier
        throughout. A group's snapshots hold paused members (see `_take_disk`), so a group is
        paused, reverted and resumed through the applier as it was taken; a single VM comes
        back in the state its snapshot holds."""
        tag = f"{name}-revert-{int(self._clock() * 1000)}"

        async def revert() -> None:
            await self._each(
                members, lambda m: RevertSnapshotCommand(_id(m, tag, "revert"), m.vm_uuid, name)
            )

        with self.jobs.executor.holding(f"{tag}-{job_id}", [m.vm_uuid for m in members]):
            if len(members) == 1:
                await revert()
                return
            await self._all(job_id, members, ActionKind.SUSPEND, tag, "pause")
            try:
                await revert()
            finally:
                await self._all(job_id, members, ActionKind.RESUME, tag, "resume")

    async def delete(self, job_id: str, name: str) -> None:
        self._known(job_id, name)
        members = self._members(job_id)
        await self._each(
            members, lambda m: DeleteSnapshotCommand(_id(m, name, "delete"), m.vm_uuid, name)
        )
        self.jobs.members.remove_checkpoint(job_id, name)
        if self.memory is not None:
            await self.memory.discard(job_id, name)

    async def prune(self, job_id: str, retention: int) -> list[str]:
        """Delete the oldest checkpoints beyond `retention`; returns their names."""
        taken = [n for n, _ in self.jobs.members.checkpoints(job_id)]
        old = taken[: max(0, len(taken) - retention)]
        for name in old:
            await self.delete(job_id, name)
        return old

    async def due(self) -> list[str]:
        """Take the checkpoints whose interval has passed; returns the jobs checkpointed."""
        done = []
        for record in self.jobs.store.list([JobState.RUNNING]):
            policy = self.policy(record.job_id)
            if policy is None:
                continue
            taken = self.jobs.members.checkpoints(record.job_id)
            last = taken[-1][1] if taken else record.updated_at
            if self._clock() - last >= policy.interval_s:
                try:
                    await self.take(record.job_id)
                    done.append(record.job_id)
                except VmgridError as exc:
                    log.warning("checkpoint of job %s failed: %s", record.job_id, exc)
        return done

    async def run(self, stop: asyncio.Event, period_s: float = 5.0) -> None:
        """Check policies every `period_s` until `stop` is set (first removing the parts of
        memory checkpoints a previous run left incomplete)."""
        if self.memory is not None:
            await self.memory.clean_partial()
        while not stop.is_set():
            await self.due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period_s)

    def _members(self, job_id: str) -> list[Member]:
        members = self.jobs.members.members(job_id)
        if not members:
            raise FailedPrecondition(f"job {job_id!r} has no running members to checkpoint")
        return members

    def _known(self, job_id: str, name: str) -> None:
        names = [n for n, _ in self.taken(job_id)]
        if name not in names:
            raise NotFound(f"checkpoint {name!r} of job {job_id!r}; known: {names or 'none'}")

    async def _all(
        self, job_id: str, members: Sequence[Member], kind: ActionKind, name: str, step: str
    ) -> None:
        """Pause or resume every member at once, as one plan through the applier."""
        reason = f"coordinated checkpoint {name} of job {job_id}: {step}"
        actions = [
            Action(i, kind, m.vm_uuid, m.node_id, m.node_id, 0, 1, reason)
            for i, m in enumerate(members)
        ]
        plan_id, hold = f"{name}-{job_id}-{step}", f"{name}-{job_id}"
        await run_or_raise(self.jobs.executor, plan_id, actions, "checkpoint", hold)

    async def _each(self, members: Sequence[Member], make: Callable[[Member], Command]) -> None:
        """Run one command per member concurrently; raise the first failure after all ended."""
        results = await asyncio.gather(
            *(run_command(self.jobs.manager, m.node_id, make(m), self.timeout_s) for m in members),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


def _id(member: Member, name: str, step: str) -> str:
    return f"{name}-{member.job_id}-{member.name}-{step}"
