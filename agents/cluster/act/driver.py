"""The executor's way into the cluster: plan actions become commands to the agents.

Preconditions are checked on the manager's live state (the last reports), with the resources
of actions already started counted against their destination. A migration between two real
hypervisors is one command to the source agent (libvirt live migration, peer to peer, to the
destination's announced peer URI, the memory stream to its data migration URI). Two
test-driver nodes cannot migrate in libvirt, so the manager simulates it: define the VM on the
target, wait for the time the copy would take (memory / bandwidth), destroy it on the source,
start it on the target. Each step has its own command id derived from the action's, so a
replay after a restart repeats none of them; results say `simulated`.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import (
    READY,
    Check,
    Observed,
    Outcome,
    ProgressCallback,
    Verdict,
)
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.rules.check import arrival_refusal, involving
from vmgrid.agents.cluster.state.solver_view import to_model, vm_demand
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus
from vmgrid.agents.errors import NotFound, VmgridError
from vmgrid.solver.model import VM, VMState
from vmgrid.solver.plan import Action, ActionKind

# A shutting-down copy is not "the running copy" of a VM nor a started one; a guest-suspended
# (PM_SUSPENDED) copy is not an active one: both narrower than the model's sets on purpose.
_RUNNING = m.RUNNING_STATES - {m.VmState.SHUTTING_DOWN}
_ACTIVE = _RUNNING | {m.VmState.PAUSED}
_STOPPED = m.STOPPED_STATES


def _net_bps(vm: m.VmUsage) -> int:
    return (vm.net_rx_bytes_per_second + vm.net_tx_bytes_per_second) * 8


def locate_vm(state: ClusterState, vm_uuid: str) -> tuple[str, m.VmUsage]:
    """(node, VM) of the VM's running copy, else its paused one, else of any definition;
    NotFound otherwise.

    After a live migration libvirt keeps the persistent definition (shut off) on the source,
    so a VM can be reported by two nodes: the node where it runs is the one that counts. During
    a live migration the destination's incoming copy is paused while the source's runs, so a
    running copy outranks a paused one (else the migration would look done before it is).
    """
    host, vm = state.find_vm(vm_uuid)
    if vm.state in _RUNNING:
        return host, vm
    best = (host, vm)
    for view in state.views():
        for other in view.vms:
            if other.uuid != vm_uuid:
                continue
            if other.state in _RUNNING:
                return view.node_id, other
            if other.state in _ACTIVE and best[1].state not in _ACTIVE:
                best = (view.node_id, other)
    return best


@dataclass(frozen=True, slots=True)
class DriverOptions:
    """How actions are carried out."""

    migration_bandwidth_bps: int = 1_000_000_000
    """Link speed assumed for a simulated migration's duration, and the default cap."""

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


class ManagerDriver:
    """ActionDriver over a ClusterManager's state and agent streams."""

    def __init__(self, manager: ClusterManager, options: DriverOptions | None = None) -> None:
        self._manager = manager
        self._options = options or DriverOptions()
        self._reserved: dict[str, tuple[int, int]] = {}  # command id -> (cpu, memory) on dst
        self._reserved_on: dict[str, str] = {}

    # ---- preconditions ----------------------------------------------------------------------

    def check(self, action: Action) -> Check:
        state = self._manager.state
        for node in (action.src, action.dst):
            if node is not None and node not in state.node_ids():
                return Check(Verdict.STALE, f"node {node} is no longer in the cluster")
            if node is not None and state.node_status(node) is NodeStatus.LOST:
                return Check(Verdict.STALE, f"node {node} is lost")
        if action.kind.on_node:
            return READY
        for node in (action.src, action.dst):
            if node is not None and state.node_status(node) is NodeStatus.POWERED_OFF:
                return Check(Verdict.STALE, f"node {node} is powered off")
        if action.kind is ActionKind.MIGRATE and self._interrupted_simulation(action):
            return READY  # a simulated migration cut short by a restart: finish it
        try:
            host, vm = locate_vm(state, action.subject)
        except NotFound:
            return Check(Verdict.STALE, f"VM {action.subject} is gone")
        leaving = (ActionKind.MIGRATE, ActionKind.SUSPEND, ActionKind.SHUTDOWN_VM)
        if action.kind in leaving and host != action.src:
            return Check(Verdict.STALE, f"VM {action.subject} is on {host}, not {action.src}")
        if action.kind is ActionKind.MIGRATE:
            if vm.state not in _ACTIVE:  # libvirt migrates paused domains too
                return Check(Verdict.STALE, f"VM {action.subject} is {vm.state.value}")
            assert action.dst is not None
            return self._arrival(action.dst, vm)
        if action.kind is ActionKind.BOOT_VM and action.dst is not None:
            elsewhere = self._active_elsewhere(action.subject, action.dst)
            if elsewhere:
                name = vm.name or action.subject
                return Check(Verdict.STALE, f"VM {name} already runs on {elsewhere}")
            if host == action.dst and vm.state in _ACTIVE:
                return READY  # already started: the start command is a no-op
            return self._arrival(action.dst, vm)
        return READY

    def _active_elsewhere(self, vm_uuid: str, node_id: str) -> str:
        """A connected node other than `node_id` where the VM runs or is paused ('' if none):
        starting it would run it twice. A lost node's last report does not count."""
        state = self._manager.state
        for view in state.views():
            if view.node_id == node_id or view.status is not NodeStatus.CONNECTED:
                continue
            if any(v.uuid == vm_uuid and v.state in _ACTIVE for v in view.vms):
                return view.node_id
        return ""

    def _arrival(self, destination: str, vm: m.VmUsage) -> Check:
        """`vm` may run on `destination` from now on: room on every resource, every rule."""
        room = self._room(destination, vm)
        return room if room.verdict is not Verdict.READY else self._rules(destination, vm)

    def _rules(self, destination: str, vm: m.VmUsage) -> Check:
        """STALE when the VM on `destination` would break a placement rule that holds now
        (rules reported impossible excepted)."""
        state = self._manager.state
        rules = involving(state.rules.kept(), [vm.uuid], [destination])
        if not rules:
            return READY
        model = to_model(state.snapshot(copy_history=False))
        arriving = model.vms.get(vm.uuid) or VM(
            vm.uuid, vm_demand(vm, (), 1), VMState.READY, None, {"name": vm.name}
        )
        refusal = arrival_refusal(rules, model, arriving, destination)
        return Check(Verdict.STALE, refusal) if refusal else READY

    def _interrupted_simulation(self, action: Action) -> bool:
        """True when a simulated migration stopped between its steps (the manager was killed
        after destroying the source copy and before starting the destination one): the VM
        runs nowhere and is defined on the destination. Its steps have their own command ids,
        so running the action again repeats none of those already done."""
        state = self._manager.state
        if action.src is None or action.dst is None:
            return False
        if not (
            state.view(action.src).identity.simulated and state.view(action.dst).identity.simulated
        ):
            return False
        copies = [
            (view.node_id, vm.state)
            for view in state.views()
            for vm in view.vms
            if vm.uuid == action.subject
        ]
        active = [node for node, vm_state in copies if vm_state in _ACTIVE]
        return not active and any(node == action.dst for node, _ in copies)

    def _room(self, node_id: str, vm: m.VmUsage) -> Check:
        """WAIT unless `node_id` has room for `vm` on memory, CPU and NIC bandwidth, counting
        what its running and paused VMs hold and what migrations already started towards it
        reserve (a migrating VM holds room on both of its nodes until it has left)."""
        view = self._manager.state.view(node_id)
        name = vm.name or vm.uuid
        here = [v for v in view.vms if v.state in _ACTIVE and v.uuid != vm.uuid]
        incoming = [
            self._reserved[cid] for cid, node in self._reserved_on.items() if node == node_id
        ]
        used_mem = sum(v.memory_allocated_bytes for v in here) + sum(mem for _, mem in incoming)
        if used_mem + vm.memory_allocated_bytes > view.capacity.memory_bytes:
            free_mib = (view.capacity.memory_bytes - used_mem) // 2**20
            return Check(
                Verdict.WAIT,
                f"{node_id} has {free_mib} MiB free, VM {name} needs "
                f"{vm.memory_allocated_bytes // 2**20} MiB",
            )
        cpu_cap = view.capacity.cpu_millicores
        used_cpu = sum(v.cpu_used_millicores for v in here) + sum(cpu for cpu, _ in incoming)
        if cpu_cap > 0 and used_cpu + vm.cpu_used_millicores > cpu_cap:
            return Check(
                Verdict.WAIT,
                f"{node_id} uses {used_cpu} of {cpu_cap} millicores, VM {name} uses "
                f"{vm.cpu_used_millicores}",
            )
        nic = view.capacity.nic_bandwidth_bps
        used_net = sum(_net_bps(v) for v in here)
        if nic > 0 and _net_bps(vm) > 0 and used_net + _net_bps(vm) > nic:
            return Check(
                Verdict.WAIT,
                f"{node_id}'s NIC carries {used_net // 1_000_000} of {nic // 1_000_000} Mbit/s, "
                f"VM {name} needs {_net_bps(vm) // 1_000_000} Mbit/s",
            )
        return READY

    # ---- execution --------------------------------------------------------------------------

    async def execute(self, action: Action, command_id: str, progress: ProgressCallback) -> Outcome:
        try:
            if action.kind is ActionKind.MIGRATE:
                return await self._migrate(action, command_id, progress)
            if action.kind.on_node:
                return await self._power(action)
            return await self._simple(action, command_id)
        except VmgridError as exc:
            return Outcome(False, str(exc))

    async def _simple(self, action: Action, cid: str) -> Outcome:
        vm = action.subject
        commands: dict[ActionKind, tuple[str | None, m.Command]] = {
            ActionKind.SUSPEND: (action.src, m.SuspendCommand(cid, vm)),
            ActionKind.RESUME: (action.dst or action.src, m.ResumeCommand(cid, vm)),
            ActionKind.SHUTDOWN_VM: (action.src, m.ShutdownCommand(cid, vm)),
            ActionKind.BOOT_VM: (action.dst, m.StartCommand(cid, vm)),
        }
        if action.kind not in commands:
            return Outcome(False, f"{action.kind.value} has no agent command (power manager)")
        node, command = commands[action.kind]
        if node is None:
            return Outcome(False, f"{action.kind.value} of {vm}: no node given")
        result = await self._send(node, command)
        return Outcome(result.state is m.CommandState.SUCCEEDED, result.message, result.simulated)

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
        if host == action.dst and vm.state in _ACTIVE:
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
                migration_uri=data_uri,
            )
            result = await self._send(action.src, command, forward)
            ok = result.state is m.CommandState.SUCCEEDED
            return Outcome(ok, result.message, result.simulated)
        finally:
            self._reserved.pop(cid, None)
            self._reserved_on.pop(cid, None)

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
        await self._require(action.dst, m.StartCommand(f"{cid}/start", vm.uuid))
        await self._require(action.src, m.UndefineCommand(f"{cid}/undefine", vm.uuid))
        return Outcome(
            True, f"simulated migration of {vm.name or vm.uuid} in {seconds:.1f} s", simulated=True
        )

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
            done = host == action.dst and vm.state in _ACTIVE
            return Observed.DONE if done else Observed.NOT_DONE
        if action.kind is ActionKind.SUSPEND:
            return Observed.DONE if vm.state is m.VmState.PAUSED else Observed.NOT_DONE
        if action.kind in (ActionKind.RESUME, ActionKind.BOOT_VM):
            return Observed.DONE if vm.state in _RUNNING else Observed.NOT_DONE
        if action.kind is ActionKind.SHUTDOWN_VM:
            return Observed.DONE if vm.state in _STOPPED else Observed.NOT_DONE
        return Observed.NOT_DONE


def simulated_migration_seconds(vm: m.VmUsage, options: DriverOptions) -> float:
    """Memory over bandwidth: what a pre-copy of an idle guest would take."""
    seconds = vm.memory_allocated_bytes * 8 / max(1, options.migration_bandwidth_bps)
    return max(0.05, seconds * options.simulated_time_scale)


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
