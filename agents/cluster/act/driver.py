"""The executor's way into the cluster: plan actions become commands to the agents.

Preconditions are checked on the manager's live state by `preconditions.Preconditions`, with
the resources of migrations already started counted against their destination. A migration between two real
hypervisors is one command to the source agent (libvirt live migration, peer to peer, to the
destination's announced peer URI, the memory stream to its data migration URI). Two
test-driver nodes cannot migrate in libvirt, so the manager simulates it: define the VM on the
target, wait for the time the copy would take (memory / bandwidth), destroy it on the source,
start it on the target. Each step has its own command id derived from the action's, so a
replay after a restart repeats none of them; results say `simulated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import (
    Check,
    Observed,
    Outcome,
    ProgressCallback,
)
from vmgrid.agents.cluster.act.images import StopHow, VmImages
from vmgrid.agents.cluster.act.preconditions import ACTIVE, RUNNING, Preconditions, locate_vm
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.state.migration_estimate import (
    REAL_MIGRATION_FIXED_S,
    MigrationLink,
    precopy_seconds,
)
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import NotFound, Unavailable, VmgridError
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)
_STOPPED = m.STOPPED_STATES


@dataclass(frozen=True, slots=True)
class DriverOptions:
    """How actions are carried out."""

    migration_bandwidth_bps: int = 1_000_000_000
    """Link speed assumed for a simulated migration's duration, and the default cap."""

    migration_auto_converge: bool = False
    """Ask libvirt for auto-converge: QEMU throttles the vCPUs of a guest whose pre-copy does
    not converge, rather than copying until the migration is aborted."""

    migration_max_downtime_ms: int = 0
    """QEMU's downtime limit for live migrations (0: QEMU's default, 300 ms)."""

    command_timeout_s: float = 600.0
    """Longest wait for one command's final result."""

    simulated_time_scale: float = 1.0
    """Multiplier on simulated durations (0.1 makes demos ten times faster)."""

    power_off_command: str = ""
    """Command that powers a node off, ``{node}`` replaced by its id (e.g. an ipmitool call)."""

    power_on_command: str = ""
    """Command that powers a node on (IPMI, wake-on-LAN), ``{node}`` replaced by its id."""

    power_timeout_s: float = 120.0
    """Longest wait for a power command."""

    boot_timeout_s: float = 300.0
    """After a power-on command, longest wait for the node's agent to connect and report."""

    @property
    def migration_link(self) -> MigrationLink:
        """What real migrations run with, for their estimate (`migration_estimate`)."""
        return MigrationLink(self.migration_bandwidth_bps, self.migration_max_downtime_ms)


class ManagerDriver:
    """ActionDriver over a ClusterManager's state and agent streams."""

    def __init__(
        self,
        manager: ClusterManager,
        options: DriverOptions | None = None,
        images: VmImages | None = None,
    ) -> None:
        self._manager = manager
        self._options = options or DriverOptions()
        self.images = images or VmImages()
        """How particular VMs boot (from a memory file) and stop (saved, powered off)."""
        self._reserved: dict[str, tuple[int, int]] = {}  # command id -> (cpu, memory) on dst
        self._reserved_on: dict[str, str] = {}
        self._moving: dict[str, tuple[str, str]] = {}  # command id -> (VM, its destination)
        self.preconditions = Preconditions(manager.state, self._incoming, self._in_flight)
        """The applier's re-check; its ``held`` is the executor's (set where both are built)."""

    # ---- preconditions ----------------------------------------------------------------------

    def check(self, action: Action) -> Check:
        return self.preconditions.check(action)

    def _in_flight(self) -> list[tuple[str, str]]:
        """(VM, destination) of every migration started and not ended."""
        return list(self._moving.values())

    def _incoming(self, node_id: str) -> list[tuple[int, int]]:
        """(CPU, memory) that migrations already started towards `node_id` will bring."""
        return [self._reserved[cid] for cid, node in self._reserved_on.items() if node == node_id]

    def estimated_seconds(self, action: Action) -> float:
        """How long a migration should take: the wait of a simulated one, else the pre-copy
        estimate of a real one from the VM's reported resident memory and dirty rate, the
        bandwidth cap and the fixed cost learned from the migrations before."""
        state = self._manager.state
        _, vm = locate_vm(state, action.subject)
        ends = [state.view(n).identity.simulated for n in (action.src, action.dst) if n]
        if ends and all(ends):
            return simulated_migration_seconds(vm, self._options)
        return real_migration_seconds(vm, self._options, fixed_s=state.migration_fixed.seconds())

    # ---- execution --------------------------------------------------------------------------

    def execute(
        self, action: Action, command_id: str, progress: ProgressCallback
    ) -> Awaitable[Outcome]:
        """The action's run. A migration counts as in flight from this call on, before its
        first step runs: the executor may check the plan's next action in the same pass, and
        that check must see this one heading for its destination."""
        if action.kind is ActionKind.MIGRATE and action.dst is not None:
            self._moving[command_id] = (action.subject, action.dst)
        return self._execute(action, command_id, progress)

    async def _execute(
        self, action: Action, command_id: str, progress: ProgressCallback
    ) -> Outcome:
        try:
            if action.kind is ActionKind.MIGRATE:
                return await self._migrate(action, command_id, progress)
            if action.kind.on_node:
                return await self._power(action)
            return await self._simple(action, command_id)
        except VmgridError as exc:
            return Outcome(False, str(exc))
        finally:
            self._moving.pop(command_id, None)

    async def _simple(self, action: Action, cid: str) -> Outcome:
        vm = action.subject
        commands: dict[ActionKind, tuple[str | None, m.Command]] = {
            ActionKind.SUSPEND: (action.src, m.SuspendCommand(cid, vm)),
            ActionKind.RESUME: (action.dst or action.src, m.ResumeCommand(cid, vm)),
            ActionKind.SHUTDOWN_VM: (action.src, self._stop(cid, vm)),
            ActionKind.BOOT_VM: (action.dst, self._boot(cid, vm)),
        }
        if action.kind not in commands:
            return Outcome(False, f"{action.kind.value} has no agent command (power manager)")
        node, command = commands[action.kind]
        if node is None:
            return Outcome(False, f"{action.kind.value} of {vm}: no node given")
        result = await self._send(node, command)
        return Outcome(result.state is m.CommandState.SUCCEEDED, result.message, result.simulated)

    def _boot(self, cid: str, vm: str) -> m.Command:
        """A cold start, or the restore of the VM's memory file when one is set for it."""
        image = self.images.boot_image(vm)
        return m.RestoreCommand(cid, image) if image else m.StartCommand(cid, vm)

    def _stop(self, cid: str, vm: str) -> m.Command:
        """A guest shutdown, or the stop set for the VM: saved to a file, or powered off."""
        mode = self.images.stop_mode(vm)
        if mode.how is StopHow.SAVE:
            return m.SaveCommand(cid, vm, mode.path)
        if mode.how is StopHow.DESTROY:
            return m.DestroyCommand(cid, vm)
        return m.ShutdownCommand(cid, vm)

    async def _power(self, action: Action) -> Outcome:
        off = action.kind is ActionKind.SHUTDOWN_NODE
        template = self._options.power_off_command if off else self._options.power_on_command
        verb = "power off" if off else "power on"
        if not template:
            return Outcome(False, f"{verb} {action.subject}: no power command configured")
        argv = shlex.split(template.format(node=action.subject))
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), self._options.power_timeout_s)
        except TimeoutError:
            process.kill()
            return Outcome(False, f"{verb} {action.subject}: {argv[0]} timed out")
        if process.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            return Outcome(False, f"{verb} {action.subject}: exit {process.returncode} {detail[0]}")
        if off:
            self._manager.state.mark_powered_off(action.subject)
            return Outcome(True, f"{verb} {action.subject}")
        return await self._booted(action.subject)

    async def _booted(self, node: str) -> Outcome:
        """Power-on is done when the node's agent has connected and reported, not when the
        command returns: migrations to the node wait for this."""
        state = self._manager.state
        deadline = asyncio.get_running_loop().time() + self._options.boot_timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if state.node_status(node) is NodeStatus.CONNECTED and state.view(node).usage:
                return Outcome(True, f"power on {node}: agent connected")
            await asyncio.sleep(0.2)
        return Outcome(
            False,
            f"power on {node}: no agent report within {self._options.boot_timeout_s:g} s "
            "(control.boot_timeout_s)",
        )

    async def _send(
        self,
        node: str,
        command: m.Command,
        on_progress: Callable[[m.CommandResult], None] | None = None,
    ) -> m.CommandResult:
        return await self._manager.send_command(
            node, command, self._options.command_timeout_s, on_progress
        )

    async def _migrate(self, action: Action, cid: str, progress: ProgressCallback) -> Outcome:
        assert action.src is not None and action.dst is not None
        state = self._manager.state
        src, dst = state.view(action.src), state.view(action.dst)
        host, vm = locate_vm(state, action.subject)
        if host == action.dst and vm.state in ACTIVE:
            return Outcome(True, f"{vm.name or vm.uuid} already on {action.dst}")
        self._reserved[cid] = (vm.cpu_used_millicores, vm.memory_allocated_bytes)
        self._reserved_on[cid] = action.dst
        try:
            if src.identity.simulated and dst.identity.simulated:
                return await self._simulated_migration(action, vm, cid, progress)

            def forward(result: m.CommandResult) -> None:
                progress(action, result.progress_fraction)

            peer_uri, data_uri = dst.identity.migration_target
            command = m.MigrateCommand(
                cid,
                vm.uuid,
                peer_uri,
                bandwidth_cap_bps=self._options.migration_bandwidth_bps,
                auto_converge=self._options.migration_auto_converge,
                migration_uri=data_uri,
                max_downtime_ms=self._options.migration_max_downtime_ms,
            )
            result = await self._send(action.src, command, forward)
            ok = result.state is m.CommandState.SUCCEEDED
            if ok and result.migration_job is not None:
                self._learn(vm.name or vm.uuid, result.migration_job)
            return Outcome(ok, result.message, result.simulated)
        finally:
            self._reserved.pop(cid, None)
            self._reserved_on.pop(cid, None)

    def _learn(self, name: str, job: m.MigrationJob) -> None:
        """Count a real migration's fixed cost in the estimate of the next ones."""
        fixed = self._manager.state.migration_fixed
        learned = fixed.learn(job, self._options.migration_link)
        if learned is not None:
            log.info(
                "migration of %s: libvirt's job %.2f s, %.1f MiB sent, fixed cost %.2f s; "
                "plans now count %.2f s",
                name, job.elapsed_ms / 1000, job.memory_processed_bytes / (1 << 20), learned,
                fixed.seconds(),
            )  # fmt: skip

    async def _simulated_migration(
        self, action: Action, vm: m.VmUsage, cid: str, progress: ProgressCallback
    ) -> Outcome:
        assert action.src is not None and action.dst is not None
        xml = simulated_domain_xml(vm)
        steps = [
            (action.dst, m.DefineCommand(f"{cid}/define", xml)),
        ]
        for node, command in steps:
            await self._require(node, command)
        seconds = simulated_migration_seconds(vm, self._options)
        ticks = max(1, int(seconds / 0.5))
        for i in range(ticks):
            await asyncio.sleep(seconds / ticks)
            progress(action, (i + 1) / ticks)
        await self._require(action.src, m.DestroyCommand(f"{cid}/destroy", vm.uuid))
        if not await self._started_at_destination(action, vm.uuid, cid):
            # The destination died between the handover's two steps: as a live migration
            # that fails leaves its VM running at the source, the VM starts there again.
            await self._require(action.src, m.StartCommand(f"{cid}/start-source", vm.uuid))
            name = vm.name or vm.uuid
            return Outcome(False, f"{action.dst} was lost during the handover; {name} runs on "
                           f"at {action.src}", simulated=True)  # fmt: skip
        await self._require(action.src, m.UndefineCommand(f"{cid}/undefine", vm.uuid))
        return Outcome(
            True, f"simulated migration of {vm.name or vm.uuid} in {seconds:.1f} s", simulated=True
        )

    async def _started_at_destination(self, action: Action, vm_uuid: str, cid: str) -> bool:
        """Start the VM on the destination; False when the destination was lost first (its
        stream gone, or declared lost while the start waited: the start is then forgotten, so
        a node that comes back never runs it)."""
        assert action.dst is not None
        start = m.StartCommand(f"{cid}/start", vm_uuid)
        state = self._manager.state
        task = asyncio.ensure_future(self._require(action.dst, start))
        while not task.done():
            await asyncio.wait([task], timeout=0.2)
            if not task.done() and state.node_status(action.dst) is NodeStatus.LOST:
                task.cancel()
                self._manager.forget(start.command_id)
                with contextlib.suppress(asyncio.CancelledError, VmgridError):
                    await task
                return False
        error = task.exception()
        if error is None:
            return True
        if isinstance(error, Unavailable) or state.node_status(action.dst) is NodeStatus.LOST:
            return False  # never sent: no copy was started there
        raise error

    async def _require(self, node: str, command: m.Command) -> None:
        result = await self._send(node, command)
        if result.state is not m.CommandState.SUCCEEDED:
            raise VmgridError(f"{type(command).__name__} on {node} failed: {result.message}")

    async def abort(self, action: Action, command_id: str) -> None:
        if action.kind is not ActionKind.MIGRATE or action.src is None:
            return
        src = self._manager.state.view(action.src)
        if src.identity.simulated:
            return  # a simulated migration ends at its next step
        await self._send(action.src, m.AbortMigrationCommand(f"{command_id}/abort", action.subject))

    # ---- restart reconciliation ---------------------------------------------------------------

    def observe(self, action: Action) -> Observed:
        if action.kind.on_node:
            return Observed.NOT_DONE
        try:
            host, vm = locate_vm(self._manager.state, action.subject)
        except NotFound:
            return Observed.GONE
        if action.kind is ActionKind.MIGRATE:
            done = host == action.dst and vm.state in ACTIVE
            return Observed.DONE if done else Observed.NOT_DONE
        if action.kind is ActionKind.SUSPEND:
            return Observed.DONE if vm.state is m.VmState.PAUSED else Observed.NOT_DONE
        if action.kind in (ActionKind.RESUME, ActionKind.BOOT_VM):
            return Observed.DONE if vm.state in RUNNING else Observed.NOT_DONE
        if action.kind is ActionKind.SHUTDOWN_VM:
            return Observed.DONE if vm.state in _STOPPED else Observed.NOT_DONE
        return Observed.NOT_DONE


def simulated_migration_seconds(vm: m.VmUsage, options: DriverOptions) -> float:
    """Memory over bandwidth: what a pre-copy of an idle guest would take."""
    seconds = vm.memory_allocated_bytes * 8 / max(1, options.migration_bandwidth_bps)
    return max(0.05, seconds * options.simulated_time_scale)


def real_migration_seconds(
    vm: m.VmUsage,
    options: DriverOptions,
    dirty_mib_s: float | None = None,
    fixed_s: float = REAL_MIGRATION_FIXED_S,
) -> float:
    """The pre-copy estimate (`migration_estimate.precopy_seconds`) over the driver's link."""
    return precopy_seconds(vm, options.migration_link, dirty_mib_s, fixed_s)


def simulated_domain_xml(vm: m.VmUsage) -> str:
    """A test-driver domain with the VM's identity and size."""
    kib = max(1024, vm.memory_allocated_bytes // 1024)
    return (
        "<domain type='test'>"
        f"<name>{vm.name or vm.uuid}</name><uuid>{vm.uuid}</uuid>"
        f"<memory unit='KiB'>{kib}</memory><currentMemory unit='KiB'>{kib}</currentMemory>"
        f"<vcpu>{max(1, vm.vcpus)}</vcpu><os><type>hvm</type></os>"
        "</domain>"
    )
