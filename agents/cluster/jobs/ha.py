"""Node failure: fence, then restart the node's VMs elsewhere; never run a VM twice.

A node is declared FAILED only when both hold: the manager lost its heartbeat (state LOST) and
it is fenced, i.e. a configured fence command exited 0, or (without one) its libvirt URI does
not answer ``libvirt.open`` within the fence timeout. A silent node whose libvirt still answers
is partitioned, not dead: nothing is restarted, so no VM can run twice.

Once failed, its job members restart on the connected nodes in HA order (priority, then
size; `vmgrid.solver.admission.restart_order`), each on the node with most room that keeps every
placement rule (a group's spread, say) when there is one; when none is, the member restarts all
the same and the rules it breaks are reported impossible. The start is a one-action plan run by
the plan executor, which re-checks it on fresh state like any other. A member's disk is the overlay on shared storage;
with a checkpoint it is first rolled back to the latest one (``qemu-img snapshot -a``), else
it cold-boots from the disk as it was. Each relocation is journaled (`MemberStore.relocate`):
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from vmgrid.agents.cluster.act.oneshot import one_action, run_or_raise
from vmgrid.agents.cluster.jobs.checkpoints import Checkpoints
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.submission import ClusterJobs, run_command
from vmgrid.agents.cluster.link.manager import NodeSession
from vmgrid.agents.cluster.rules.check import involving, refusing_rules
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import NodeStatus, NodeView
from vmgrid.agents.errors import VmgridError
from vmgrid.agents.model import (
    HOLDS_MEMORY_STATES,
    DefineCommand,
    DestroyCommand,
    UndefineCommand,
)
from vmgrid.solver.admission import restart_order
from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, VMState
from vmgrid.solver.plan import ActionKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HaConfig:
    """How failures are confirmed and handled."""

    fence_command: tuple[str, ...] = ()
    """argv run to fence a node ({node} and {uri} are substituted); exit 0 means fenced.
    Empty: a node is fenced when its libvirt URI does not answer."""
    fence_timeout_s: float = 5.0
    libvirt_uris: Mapping[str, str] = field(default_factory=dict)
    """node id -> libvirt URI to probe; default: the node's peer_uri (or migration_uri)."""
    period_s: float = 1.0
    """How often lost nodes are examined."""
    command_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class FenceResult:
    fenced: bool
    how: str


@dataclass(frozen=True, slots=True)
class Restart:
    """One member restarted elsewhere (checkpoint empty: cold boot from its disk)."""

    vm_name: str
    vm_uuid: str
    from_node: str
    to_node: str
    checkpoint: str


def libvirt_answers(uri: str) -> bool:
    """True when libvirt at `uri` accepts a connection (blocking; run in a thread)."""
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return False
    try:
        conn.getVersion()
        return True
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()


async def fence(view: NodeView, config: HaConfig) -> FenceResult:
    """Confirm a silent node is really down (see the module docstring)."""
    node = view.node_id
    uri = config.libvirt_uris.get(node) or view.identity.peer_uri or view.identity.migration_uri
    if config.fence_command:
        argv = [a.replace("{node}", node).replace("{uri}", uri) for a in config.fence_command]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            code = await asyncio.wait_for(proc.wait(), config.fence_timeout_s)
        except (OSError, TimeoutError) as exc:
            return FenceResult(False, f"fence command {argv[0]} failed: {exc}")
        return FenceResult(code == 0, f"fence command {argv[0]} exited {code}")
    if not uri or uri.startswith("test:"):
        return FenceResult(False, "no libvirt URI to probe and no fence command configured")
    try:
        answers = await asyncio.wait_for(
            asyncio.to_thread(libvirt_answers, uri), config.fence_timeout_s
        )
    except TimeoutError:
        answers = False
    return FenceResult(not answers, f"libvirt {uri} {'answers' if answers else 'unreachable'}")


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
        """One pass: fence newly lost nodes, restart their members; returns the restarts."""
        done: list[Restart] = []
        state = self.jobs.manager.state
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
            done.extend(await self.restart_from(node))
        return done

    async def restart_from(self, node: str) -> list[Restart]:
        members = self._members_on(node)
        model = to_model(self.jobs.manager.state.snapshot())
        order = restart_order(as_vm(m) for m in members.values())
        done = []
        for vm in order:
            member = members[vm.name]
            target = self._target(model, member)
            if target is None:
                log.error("no node has room to restart %s (from %s)", member.name, node)
                continue
            try:
                restart = await self._restart(member, target)
            except (VmgridError, OSError, subprocess.SubprocessError) as exc:
                log.error("restart of %s on %s failed: %s", member.name, target, exc)
                continue
            model = model.with_vms([as_vm(member).on(target)])
            done.append(restart)
        self.restarts.extend(done)
        return done

    def _members_on(self, node: str) -> dict[str, Member]:
        """The members the failed node held when it last reported (its record may be older:
        a migration moved a member there, or away from it). Records are set right first."""
        view = self.jobs.manager.state.view(node)
        there = {vm.uuid for vm in view.vms if vm.state in HOLDS_MEMORY_STATES}
        found = {}
        for member in self.jobs.members.members():
            if member.vm_uuid not in there:
                continue
            if member.node_id != node:
                self.jobs.members.moved(member.vm_uuid, node)
                member = dataclasses.replace(member, node_id=node)
            found[member.vm_uuid] = member
        return found

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

    async def _restart(self, member: Member, target: str) -> Restart:
        checkpoint = self.checkpoints.latest(member.job_id) or ""
        if checkpoint and member.overlay_path:
            await asyncio.to_thread(_roll_back_disk, member.overlay_path, checkpoint)
        tag = f"ha-{member.vm_uuid}-{target}-{int(time.time() * 1000)}"
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
        await run_or_raise(self.jobs.executor, tag, [start], origin="ha")
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


@dataclass(frozen=True)
class RestartPlacement:
    """Where a member would restart after its node fails, and the rules that breaks."""

    node: str | None
    """None: no other connected node has memory for it."""
    broken: tuple[Rule, ...] = ()
    cpu_short: bool = False
    """The chosen node lacks room for its CPU or network (restarted all the same)."""


Slack = Callable[[str, str], int]
"""(node, resource) -> room left; the model's own by default."""


def restart_target(
    model: Model,
    rules: Iterable[Rule],
    member: Member,
    slack: Slack | None = None,
    rules_model: Callable[[], Model] | None = None,
) -> RestartPlacement:
    """Where `member` restarts: a node with memory for it that keeps every placement rule if
    there is one (most room first), else one with memory all the same. Pure: the HA monitor
    acts on it, and the N+1 check (capacity.py) asks it for every node in turn, with its own
    running `slack` and the model rules are checked on built only when a rule is involved
    (`rules_model`)."""
    room = slack or model.slack
    fits = _fitting(model, member, room)
    if not fits:
        return RestartPlacement(None)
    need = {CPU: member.cpu_millicores, NET: member.bandwidth_mbps}

    def short(n: str) -> bool:
        return any(room(n, r) < q for r, q in need.items())

    def rank(n: str) -> tuple[bool, int, str]:
        return (short(n), -room(n, MEMORY), n)

    involved = involving(rules, [member.vm_uuid], fits)
    if not involved:
        best = min(fits, key=rank)
        return RestartPlacement(best, (), short(best))
    placed = rules_model() if rules_model is not None else model
    arriving = as_vm(member)
    best = min(fits, key=rank)
    broken = refusing_rules(involved, placed, arriving, best)
    if not broken:
        return RestartPlacement(best, (), short(best))
    for node in sorted(fits, key=rank)[1:]:  # the best node that keeps every rule...
        if not refusing_rules(involved, placed, arriving, node):
            return RestartPlacement(node, (), short(node))
    return RestartPlacement(best, tuple(broken), short(best))  # ...else the best, naming them


def restart_reason(model: Model, member: Member, placement: RestartPlacement) -> str:
    """The HA restart in words and figures: what failed, where the member goes and what that
    node's memory and CPU go from and to, and any rule the choice breaks."""
    node = placement.node or "-"
    cap_mem, cap_cpu = model.nodes[node].cap(MEMORY), model.nodes[node].cap(CPU)
    mem, cpu = model.load(node, MEMORY), model.load(node, CPU)

    def pct(used: int, cap: int) -> int:
        return round(100 * used / max(1, cap))

    among = "the node with most free memory" + (
        " (no node with room keeps every rule)" if placement.broken else " that keeps the rules"
    )
    text = (
        f"{member.node_id} failed (fenced): restart {member.name} "
        f"({member.cpu_millicores / 1000:.1f} cores, {member.memory_mib} MiB, HA priority "
        f"{member.ha_priority}) on {node}, {among} "
        f"(memory {pct(mem, cap_mem)}% -> {pct(mem + member.memory_mib, cap_mem)}%, "
        f"cpu {pct(cpu, cap_cpu)}% -> {pct(cpu + member.cpu_millicores, cap_cpu)}%)"
    )
    if placement.broken:
        text += "; no node with room keeps " + ", ".join(r.rule_id for r in placement.broken)
    if placement.cpu_short:
        text += "; short of CPU there (restarted all the same)"
    return text


def as_vm(member: Member) -> VM:
    """The member as the solver's model sees it (demand in solver units, READY)."""
    demand = {CPU: member.cpu_millicores, MEMORY: member.memory_mib, NET: member.bandwidth_mbps}
    return VM(member.vm_uuid, demand, VMState.READY, None, {"ha_priority": member.ha_priority})


def _fitting(model: Model, member: Member, room: Slack) -> list[str]:
    """Connected nodes other than the member's failed one with memory for it. CPU and network
    are compressible: a restart is never refused for them, only steered (the ranking)."""
    return [
        n
        for n in model.online_nodes()
        if n != member.node_id and room(n, MEMORY) >= member.memory_mib
    ]


def _roll_back_disk(overlay: str, checkpoint: str) -> None:
    """Apply the checkpoint's disk state to the (shared, now unused) overlay."""
    subprocess.run(["qemu-img", "snapshot", "-a", checkpoint, overlay], check=True, timeout=120)
