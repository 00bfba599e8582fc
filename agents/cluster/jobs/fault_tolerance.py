"""Jobs, checkpoints and failure handling of one cluster, started and stopped together.

`FaultTolerance(manager, executor, options)` builds the three parts on one SQLite file and registers
itself for the manager, so the ClusterService RPCs (SubmitJob, GetJob) find it with
`for_manager`. `start()` runs the checkpoint policy loop and the failure monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass, field

from vmgrid.agents.cluster.act.executor import ExecutionEvent, PlanExecutor
from vmgrid.agents.cluster.act.images import VmImages
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.jobs.checkpoints import Checkpoints
from vmgrid.agents.cluster.jobs.ha import HaConfig, HaMonitor
from vmgrid.agents.cluster.jobs.memory_checkpoints import MemoryCheckpoints, checkpoint_dir
from vmgrid.agents.cluster.jobs.submission import ClusterJobs, SubmissionConfig
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.common.supervise import supervise
from vmgrid.agents.errors import Unimplemented
from vmgrid.agents.jobmodel import SnapshotPolicy
from vmgrid.solver.plan import ActionKind

_BY_MANAGER: weakref.WeakKeyDictionary[ClusterManager, FaultTolerance] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FaultToleranceOptions:
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    ha: HaConfig = field(default_factory=HaConfig)
    checkpoint_period_s: float = 5.0
    """How often snapshot policies are checked."""
    restart_on_failure: bool = True
    """Off: lost nodes are only reported, never fenced nor restarted."""
    default_checkpoint_policy: SnapshotPolicy | None = None
    """Checkpoint policy of jobs whose document has no ``[snapshot]`` table; None: none."""
    checkpoint_dir: str = ""
    """Directory of the members' memory files, reached by every node (an NFS mount). Empty:
    ``<storage_dir>/checkpoints``; with no storage_dir either, checkpoints hold disks only."""


class FaultTolerance:
    def __init__(
        self,
        manager: ClusterManager,
        executor: PlanExecutor,
        options: FaultToleranceOptions | None,
        images: VmImages,
    ) -> None:
        """`images`: the table the executor's driver reads (`ManagerDriver.images`), where
        memory checkpoints set their boots from memory files and their saves."""
        self.options = options or FaultToleranceOptions()
        self.images = images
        self.jobs = ClusterJobs(manager, executor, self.options.submission)
        submission = self.options.submission
        shared = submission.storage_dir if submission.shared_storage else ""
        directory = checkpoint_dir(self.options.checkpoint_dir, shared)
        memory = MemoryCheckpoints(self.jobs, directory, images) if directory else None
        self.checkpoints = Checkpoints(
            self.jobs, default_policy=self.options.default_checkpoint_policy, memory=memory
        )
        self.ha = HaMonitor(self.jobs, self.checkpoints, self.options.ha)
        executor.add_listener(self._on_execution)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        _BY_MANAGER[manager] = self

    def _on_execution(self, event: ExecutionEvent) -> None:
        """A member migrated by any plan: its record follows it, so HA restarts the right VMs."""
        action = event.action
        migrated = event.state is ActionState.SUCCEEDED and action.kind is ActionKind.MIGRATE
        if migrated and action.dst is not None and self.jobs.members.is_member(action.subject):
            self.jobs.members.moved(action.subject, action.dst)

    def start(self) -> None:
        """Run the checkpoint loop and (unless disabled) the failure monitor. The boots from
        memory files kept in the store (a plan the last manager left running) are set again
        in the driver's table first, so that such a plan, resumed, restores them."""
        for vm_uuid, path in self.jobs.members.boot_images():
            self.images.set_boot_image(vm_uuid, path)
        period = self.options.checkpoint_period_s
        self._tasks.append(
            supervise(lambda: self.checkpoints.run(self._stop, period), "checkpoint loop")
        )
        if self.options.restart_on_failure:
            self._tasks.append(supervise(lambda: self.ha.run(self._stop), "failure monitor"))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.jobs.close()


def for_manager(manager: ClusterManager) -> FaultTolerance:
    """The instance serving `manager`; Unimplemented when jobs are not enabled there."""
    found = _BY_MANAGER.get(manager)
    if found is None:
        raise Unimplemented(
            f"cluster {manager.config.cluster_id!r} runs without job submission; start it"
            " with fault tolerance options (ClusterRuntime(..., fault_tolerance=...))"
        )
    return found
