"""A job submitted to this cluster: admit, place, prepare disks, define and start every member.

pending -> placing (HA admission + CP-SAT on a fresh snapshot, `place_in_cluster`) -> starting
(per member: a qcow2 overlay on the image and a cloud-init seed ISO in the shared storage
directory, the domain defined and started by the member's agent) -> running. All-or-nothing:
any failure destroys and undefines every member already defined and the job goes to failed with
the reason. A bad document raises `InvalidArgument` before anything is stored or started.

Disks live in `storage_dir`. With `shared_storage` (the default) it is shared by every node (NFS,
or one machine in the lab): the manager creates them, and a member restarted on another node
after a failure boots the same overlay (see `ha.py`). Without it, `storage_dir` is a directory
local to each node (same path on all): the manager builds the seed ISO and sends its bytes in a
`PrepareDisksCommand`, and the member's agent runs qemu-img and writes the ISO there, so no
filesystem is shared (a member restarted elsewhere then has no disk on its new node).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.oneshot import one_action, run_or_raise
from vmgrid.agents.cluster.decide.reasons import node_figures
from vmgrid.agents.cluster.jobs.members import Member, MemberStore
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.errors import CommandFailed, InvalidArgument, NotFound, VmgridError
from vmgrid.agents.jobmodel import (
    JobRecord,
    JobSpec,
    JobSpecError,
    JobState,
    JobStateError,
    JobStore,
)
from vmgrid.agents.jobmodel.codec import describe_placement, member_uuid
from vmgrid.agents.jobmodel.placement import Rejection, group_constraints, place_in_cluster
from vmgrid.agents.jobmodel.seed import (
    domain_xml,
    seed_iso_bytes,
    write_seed_iso,
)
from vmgrid.agents.jobmodel.spec import SpecContext, parse_job
from vmgrid.agents.model import (
    Command,
    CommandResult,
    CommandState,
    DefineCommand,
    DestroyCommand,
    PrepareDisksCommand,
    UndefineCommand,
)
from vmgrid.agents.node.disks import overlay_command
from vmgrid.solver.constraints import Constraint
from vmgrid.solver.model import Model
from vmgrid.solver.plan import ActionKind

log = logging.getLogger(__name__)

DOMAIN_TYPES = ("auto", "kvm", "qemu", "test")
OnChange = Callable[[JobRecord], None]


@dataclass(frozen=True)
class SubmissionConfig:
    """How this cluster runs jobs."""

    storage_dir: str = ""
    """Directory of overlays and seed ISOs (see `shared_storage`); empty: disks are not created
    (test-driver nodes need none)."""
    shared_storage: bool = True
    """True: `storage_dir` is shared by every node and the manager writes the disks there;
    False: it is local to each node (same absolute path) and each member's agent creates them."""
    images: Mapping[str, str] = field(default_factory=dict)
    """Image catalogue: name -> absolute qcow2 backing file."""
    failures_to_tolerate: int = 0
    """HA admission: a job is refused unless every VM could restart after this many node
    failures."""
    domain_type: str = "auto"
    """Domain type of members: auto (test on simulated nodes, else kvm), kvm, qemu or test."""
    network: str = ""
    """libvirt network each member joins; empty: none."""
    command_timeout_s: float = 60.0
    db_path: str = ":memory:"
    """SQLite file of jobs, members, checkpoints and stale copies."""


async def run_command(
    manager: ClusterManager, node_id: str, command: Command, timeout_s: float
) -> CommandResult:
    """Send a command and raise `CommandFailed` with the node's message when it fails."""
    result = await manager.send_command(node_id, command, timeout_s)
    if result.state is not CommandState.SUCCEEDED:
        raise CommandFailed(f"{type(command).__name__} on {node_id}: {result.message}")
    return result


class ClusterJobs:
    """Jobs of one cluster; the RPC layer calls `submit`, `get`, `list`."""

    def __init__(
        self,
        manager: ClusterManager,
        executor: PlanExecutor,
        config: SubmissionConfig | None = None,
    ) -> None:
        self.manager = manager
        self.executor = executor
        """The cluster's plan executor: members start through it, re-checked like any plan."""
        self.config = config or SubmissionConfig()
        if self.config.domain_type not in DOMAIN_TYPES:
            raise InvalidArgument(
                f"domain_type {self.config.domain_type!r}; accepted: {', '.join(DOMAIN_TYPES)}"
            )
        self.store = JobStore(self.config.db_path)
        self.members = MemberStore(self.config.db_path)
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.store.close()
        self.members.close()

    def parse(self, document: object) -> JobSpec:
        try:
            return parse_job(document, SpecContext(images=self.config.images))
        except JobSpecError as exc:
            raise InvalidArgument(str(exc)) from None

    def get(self, job_id: str) -> JobRecord:
        try:
            return self.store.get(job_id)
        except JobStateError as exc:
            raise NotFound(str(exc)) from None

    def records(self) -> list[JobRecord]:
        return self.store.list()

    async def submit(
        self, document: object, job_id: str = "", on_change: OnChange | None = None
    ) -> JobRecord:
        """Run a job here; returns its final record (running or failed with the reason).

        With a `job_id` already stored (the grid resent its command) the job is not run again:
        a final record is returned as it is, one left mid-way by a restart is failed.
        """
        spec = self.parse(document)
        if job_id:
            with contextlib.suppress(JobStateError):
                return self._existing(self.store.get(job_id))
        record = self.store.create(spec, job_id or None)
        async with self._lock:  # one placement at a time: each sees the previous one's VMs
            return await self._place_and_start(record.job_id, spec, on_change)

    def _existing(self, record: JobRecord) -> JobRecord:
        if record.state.final:
            return record
        reason = f"interrupted while {record.state.value} (manager restarted); submit it again"
        return self.store.transition(record.job_id, JobState.FAILED, message=reason)

    async def _place_and_start(
        self, job_id: str, spec: JobSpec, on_change: OnChange | None = None
    ) -> JobRecord:
        cluster_id = self.manager.config.cluster_id
        self.store.transition(job_id, JobState.PLACING)
        snapshot = self.manager.state.snapshot()
        model = to_model(snapshot)
        outcome = await asyncio.to_thread(
            place_in_cluster,
            spec,
            cluster_id,
            model,
            tolerate_failures=self.config.failures_to_tolerate,
            cluster_rules=[r.constraint for r in snapshot.rules],
        )
        if isinstance(outcome, Rejection):
            return self.store.transition(job_id, JobState.FAILED, message=outcome.reason)
        hosts = dict(outcome.hosts)
        origin = f"job:{job_id}"
        for rule_id, constraint in job_rules(job_id, spec, model):
            self.manager.state.rules.add(rule_id, constraint, origin)
        starting = self.store.transition(
            job_id, JobState.STARTING, cluster_id=cluster_id, placement=hosts, message="starting"
        )
        if on_change is not None:
            on_change(starting)
        defined: list[Member] = []
        try:
            for name in spec.members:
                defined.append(await self._define(job_id, spec, name, hosts[name]))
            await asyncio.gather(*(self._start(m) for m in defined))
        except (VmgridError, OSError, subprocess.CalledProcessError) as exc:
            await self._roll_back(defined)
            self.members.remove_job(job_id)
            self.manager.state.rules.delete_origin(origin)
            reason = f"start failed, {len(defined)} member(s) rolled back: {exc}"
            return self.store.transition(job_id, JobState.FAILED, message=reason)
        return self.store.transition(
            job_id, JobState.RUNNING, message=f"running: {describe_placement(hosts)}"
        )

    def _domain_type(self, node_id: str) -> str:
        if self.config.domain_type != "auto":
            return self.config.domain_type
        simulated = self.manager.state.view(node_id).identity.simulated
        return "test" if simulated else "kvm"

    async def _define(self, job_id: str, spec: JobSpec, name: str, node_id: str) -> Member:
        vm_uuid = member_uuid(job_id, name)
        overlay, seed = await self._disks(job_id, spec, name, node_id)
        xml = domain_xml(
            spec,
            name,
            overlay_path=overlay,
            seed_path=seed,
            domain_type=self._domain_type(node_id),
            uuid=vm_uuid,
            network=self.config.network,
            job_id=job_id,
        )
        member = Member(
            vm_uuid,
            job_id,
            name,
            node_id,
            xml,
            str(overlay) if self.config.storage_dir and self.config.shared_storage else "",
            spec.ha_priority,
            spec.cpu_millicores,
            spec.memory_mib,
            spec.bandwidth_mbps,
        )
        self.members.add(member)
        command = DefineCommand(f"job-{job_id}-{name}-define", xml)
        await run_command(self.manager, node_id, command, self.config.command_timeout_s)
        return member

    async def _start(self, member: Member) -> None:
        before = node_figures(self.manager.state.view(member.node_id))
        reason = (
            f"start of {member.name} ({member.cpu_millicores / 1000:.1f} cores, "
            f"{member.memory_mib} MiB), member of job {member.job_id}, on {member.node_id} as "
            f"the job's placement chose ({member.node_id} before it: {before})"
        )
        start = one_action(ActionKind.BOOT_VM, member.vm_uuid, reason, dst=member.node_id)
        plan_id = f"job-{member.job_id}-{member.name}-start"
        await run_or_raise(self.executor, plan_id, [start], origin="submission")

    async def _disks(
        self, job_id: str, spec: JobSpec, name: str, node_id: str
    ) -> tuple[Path, Path]:
        """Overlay + seed ISO of a member: by the manager on shared storage, else by its agent."""
        if not self.config.storage_dir:
            base = Path("/nonexistent/vmgrid") / job_id
            return base / f"{name}.qcow2", base / f"{name}-seed.iso"
        if self.config.shared_storage:
            return await asyncio.to_thread(self._prepare_disks, job_id, spec, name)
        directory = Path(self.config.storage_dir) / f"job-{job_id}"
        overlay, seed = directory / f"{name}.qcow2", directory / f"{name}.iso"
        iso = await asyncio.to_thread(seed_iso_bytes, spec, name, member_uuid(job_id, name))
        command = PrepareDisksCommand(
            f"job-{job_id}-{name}-disks", str(overlay), spec.backing_file, str(seed), iso
        )
        await run_command(self.manager, node_id, command, self.config.command_timeout_s)
        return overlay, seed

    def _prepare_disks(self, job_id: str, spec: JobSpec, name: str) -> tuple[Path, Path]:
        """Overlay + seed ISO written by the manager in the shared directory."""
        directory = Path(self.config.storage_dir) / f"job-{job_id}"
        directory.mkdir(parents=True, exist_ok=True)
        overlay = directory / f"{name}.qcow2"
        seed = write_seed_iso(spec, name, member_uuid(job_id, name), directory / f"{name}.iso")
        if not overlay.exists():
            subprocess.run(overlay_command(spec.backing_file, overlay), check=True, timeout=60)
        _own_like_parent(directory, Path(self.config.storage_dir))
        for path in (overlay, seed):
            _own_like_parent(path, Path(self.config.storage_dir))
        return overlay, seed

    async def _roll_back(self, members: list[Member]) -> None:
        """Destroy and undefine what was defined; errors are logged, never raised."""
        timeout = self.config.command_timeout_s
        for m in members:
            for command in (
                DestroyCommand(f"job-{m.job_id}-{m.name}-rollback-destroy", m.vm_uuid),
                UndefineCommand(f"job-{m.job_id}-{m.name}-rollback-undefine", m.vm_uuid),
            ):
                try:
                    await run_command(self.manager, m.node_id, command, timeout)
                except VmgridError as exc:
                    log.warning("rollback of %s on %s: %s", m.name, m.node_id, exc)


def job_rules(job_id: str, spec: JobSpec, model: Model) -> list[tuple[str, Constraint]]:
    """The placement rules a job brings (spread, gather, ban, fence over its members' uuids),
    each with its rule id in the cluster's rule store."""
    uuids = {name: member_uuid(job_id, name) for name in spec.members}
    out: list[tuple[str, Constraint]] = []
    for constraint in group_constraints(spec, model):
        if constraint.kind == "running":
            continue
        members = tuple(uuids[v] for v in constraint.vms_in_scope())
        out.append(
            (f"job-{job_id}-{constraint.kind}", dataclasses.replace(constraint, vms=members))  # type: ignore[type-var]
        )
    return out


def _own_like_parent(path: Path, root: Path) -> None:
    """As root, give files the shared directory's owner (QEMU runs as that user in the lab)."""
    if os.geteuid() != 0:
        return
    st = root.stat()
    os.chown(path, st.st_uid, st.st_gid)
