"""Executes cross-cluster moves: ApplyGridPlan, MigrateVmToCluster, cancel, resume.

Each move runs reserve (destination) -> migrate to the reserved node (source) -> commit
(destination), journaling its phase before every step (`MoveJournal`). A plan's moves start at
their scheduled time, and never before every earlier move that shares a link and was planned
to end by then has ended: the overlaps on each link are then those the planner checked, so no
link carries more than it planned even when moves run late.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import networkx as nx
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound
from vmgrid.coordinator.homing import Homing
from vmgrid.coordinator.moves import Move, MoveJournal, Phase, PlanStatus, plan_status
from vmgrid.coordinator.service import Coordinator

log = logging.getLogger(__name__)
MIB = 2**20


@dataclass(frozen=True, slots=True)
class MoverOptions:
    """Timing of cross-cluster moves."""

    reservation_ttl_s: float = 600.0
    """How long a destination holds room for a VM that has not arrived."""
    reserve_timeout_s: float = 60.0
    """Longest wait for a reservation; the move is then abandoned (and released)."""
    time_scale: float = 1.0
    """Multiplier on the plan's start times (tests and demos run schedules faster)."""
    return_after_s: float = 60.0
    """How long a simulated move's commit may keep failing (its VM running nowhere: no node
    of the destination takes it) before the VM is sent back to its source (`homing.py`)."""


class GridMover:
    """Owns the move journal and the tasks running moves; use from the event loop."""

    def __init__(
        self,
        coordinator: Coordinator,
        journal: MoveJournal,
        options: MoverOptions | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.journal = journal
        self.options = options or MoverOptions()
        ttl_ms = round(self.options.reservation_ttl_s * 1000)
        self._homing = Homing(coordinator.send_grid_command, self._record, ttl_ms)
        self._plans: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()

    # ---- entry points -----------------------------------------------------------------------

    def apply(self, plan_id: str, copy_storage: bool = False) -> str:
        """Start a dry-run plan by id; applying a plan already applied just reports it."""
        if self.journal.moves(plan_id):
            self._start(plan_id)
            return plan_id
        dry_run = self.coordinator.dry_runs.get(plan_id)
        if dry_run is None:
            known = ", ".join(sorted(self.coordinator.dry_runs)) or "(none; run vmgridctl plan)"
            raise NotFound(f"grid plan {plan_id!r} is unknown; dry-run plans: {known}")
        if not dry_run.plan.moves:
            raise FailedPrecondition(f"grid plan {plan_id!r} has no moves")
        for i, mv in enumerate(dry_run.plan.moves):
            self.journal.put(
                Move(
                    move_id=f"{plan_id}-m{i}",
                    plan_id=plan_id,
                    vm=self._demand(mv.vm, mv.src),
                    src=mv.src,
                    dst=mv.dst,
                    path=tuple(mv.path),
                    start_s=mv.start_s,
                    end_s=mv.end_s,
                    reason=f"{mv.kind.value}: {mv.reason}",
                    bandwidth_cap_bps=mv.rate_mbps * 1_000_000,
                    copy_storage=copy_storage,
                )
            )
        self._publish(plan_id, f"applying {len(dry_run.plan.moves)} moves")
        self._start(plan_id)
        return plan_id

    def migrate_vm(
        self,
        vm_uuid: str,
        destination: str,
        bandwidth_cap_bps: int = 0,
        command_id: str = "",
        copy_storage: bool = False,
    ) -> str:
        """Move one VM to another cluster; ``command_id`` makes a retried request idempotent."""
        plan_id = f"move-{command_id or uuid.uuid4().hex[:12]}"
        if self.journal.moves(plan_id):
            return plan_id
        src = self._cluster_of(vm_uuid)
        if destination == src:
            raise InvalidArgument(f"VM {vm_uuid} is already in cluster {destination!r}")
        self.coordinator.registry.get(destination)
        move = Move(
            move_id=f"{plan_id}-m0",
            plan_id=plan_id,
            vm=self._demand(vm_uuid, src),
            src=src,
            dst=destination,
            path=self._path(src, destination),
            reason="operator request",
            bandwidth_cap_bps=bandwidth_cap_bps,
            copy_storage=copy_storage,
        )
        self.journal.put(move)
        self._publish(plan_id, f"moving {move.vm.name or vm_uuid} {src} -> {destination}")
        self._start(plan_id)
        return plan_id

    def cancel(self, plan_id: str) -> None:
        """Skip the moves not started; a move already reserved is released unless its VM left."""
        self.require(plan_id)
        self._cancelled.add(plan_id)
        for move in self.journal.moves(plan_id):
            if move.phase is Phase.PENDING:
                self._save(replace(move, phase=Phase.CANCELLED, message="cancelled"))
        self._publish(plan_id, "cancel requested")

    def forget_cluster(self, cluster_id: str) -> list[str]:
        """Forget a cluster (Coordinator.forget_cluster): moves to or from it that have not
        finished fail with the reason; returns their ids."""
        self.coordinator.check_forgettable(cluster_id)
        reason = f"cluster {cluster_id!r} was forgotten by an operator"
        touched = [mv for mv in self.journal.unfinished() if cluster_id in (mv.src, mv.dst)]
        for move in touched:
            if move.phase is Phase.PENDING:
                failed = replace(move, phase=Phase.RELEASED, failed=True, message=reason)
                self._publish(move.plan_id, f"failed: {reason}", self._save(failed))
        self.coordinator.forget_cluster(cluster_id, reason)
        return [mv.move_id for mv in touched]

    def resume(self) -> list[str]:
        """Restart every plan with unfinished moves (after a coordinator restart)."""
        plans = sorted({mv.plan_id for mv in self.journal.unfinished()})
        for plan_id in plans:
            log.info("resuming grid plan %s from the journal", plan_id)
            self._start(plan_id)
        return plans

    def require(self, plan_id: str) -> None:
        if not self.journal.moves(plan_id):
            raise NotFound(f"grid plan {plan_id!r} was never applied")

    def moves(self, plan_id: str) -> list[Move]:
        return self.journal.moves(plan_id)

    def state(self, plan_id: str) -> PlanStatus:
        return plan_status(self.journal.moves(plan_id), plan_id in self._cancelled)

    async def wait(self, plan_id: str) -> PlanStatus:
        """Until the plan's task ends (tests, CLI)."""
        task = self._plans.get(plan_id)
        if task is not None:
            await asyncio.shield(task)
        return self.state(plan_id)

    async def close(self) -> None:
        for task in self._plans.values():
            task.cancel()
        await asyncio.gather(*self._plans.values(), return_exceptions=True)
        self.journal.close()

    # ---- helpers ------------------------------------------------------------------------------

    def _cluster_of(self, vm_uuid: str) -> str:
        for record in self.coordinator.registry.records():
            if record.summary and any(v.vm_uuid == vm_uuid for v in record.summary.movable_vms):
                return record.cluster_id
        raise NotFound(f"VM {vm_uuid!r} is not a running VM of any cluster's last summary")

    def _demand(self, vm_uuid: str, cluster_id: str) -> m.VmDemand:
        record = self.coordinator.registry.find(cluster_id)
        for vm in record.summary.movable_vms if record and record.summary else ():
            if vm.vm_uuid == vm_uuid:
                return vm
        raise NotFound(f"VM {vm_uuid!r} is not in cluster {cluster_id!r}'s last summary")

    def _path(self, src: str, dst: str) -> tuple[str, ...]:
        topology = self.coordinator.topology
        if topology is None or src not in topology.graph or dst not in topology.graph:
            return (src, dst)
        try:
            path = nx.shortest_path(topology.graph, src, dst, weight="latency_ms")
        except nx.NetworkXNoPath:
            raise FailedPrecondition(f"no path from {src!r} to {dst!r} in the topology") from None
        return tuple(str(c) for c in path)

    def _start(self, plan_id: str) -> None:
        task = self._plans.get(plan_id)
        if task is None or task.done():
            self._plans[plan_id] = asyncio.ensure_future(self._run_plan(plan_id))

    def _save(self, move: Move) -> Move:
        self.journal.put(move)
        return move

    def _record(self, move: Move, message: str, publish: bool) -> Move:
        self._save(move)
        if publish:
            self._publish(move.plan_id, message, move)
        return move

    def _publish(self, plan_id: str, message: str, move: Move | None = None) -> None:
        if move is None:
            self.coordinator.bus.publish(m.GridEventKind.PLAN_CHANGED, "", message, plan_id)
            return
        self.coordinator.bus.publish(
            m.GridEventKind.MOVE_CHANGED,
            move.dst,
            message,
            plan_id,
            move.vm.vm_uuid,
            move.simulated,
        )

    # ---- running a plan -----------------------------------------------------------------------

    async def _run_plan(self, plan_id: str) -> None:
        moves = self.journal.moves(plan_id)
        tasks: dict[str, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for move in moves:
            if move.phase.final:
                continue
            if plan_id in self._cancelled and move.phase is Phase.PENDING:
                continue
            before = [
                tasks[o.move_id]
                for o in moves
                if o.move_id in tasks and o.end_s <= move.start_s and o.links() & move.links()
            ]
            tasks[move.move_id] = asyncio.ensure_future(self._scheduled(move, t0, before))
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        state = self.state(plan_id)
        self._publish(plan_id, f"plan {state.value}")

    async def _scheduled(self, move: Move, t0: float, before: list[asyncio.Task[None]]) -> None:
        if move.phase is Phase.PENDING:
            delay = t0 + move.start_s * self.options.time_scale - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            await asyncio.gather(*before, return_exceptions=True)
            current = self.journal.get(move.move_id)
            if current is None or current.phase is not Phase.PENDING:
                return
            if move.plan_id in self._cancelled:
                self._save(replace(move, phase=Phase.CANCELLED, message="cancelled"))
                return
        try:
            await self._run_move(move)
        except Exception:
            log.exception("move %s stopped", move.move_id)
            raise

    async def _run_move(self, move: Move) -> None:
        if move.phase is Phase.PENDING:
            move = await self._reserve(move)
        if move.phase is Phase.RESERVED and move.plan_id in self._cancelled:
            move = await self._release(move, "cancelled before the VM left")
        if move.phase is Phase.RESERVED:
            move = await self._migrate(move)
        attempt = 0
        failing_since = None
        loop = asyncio.get_running_loop()
        while move.phase is Phase.MIGRATED:
            if self.coordinator.registry.find(move.dst) is None:
                why = f"cluster {move.dst!r} was forgotten before the move was committed"
                if move.simulated:  # the VM runs nowhere: it goes back to its source
                    move = self._homing.send_back(move, f"{why}; sending it back to {move.src}")
                    break
                failed = replace(move, phase=Phase.RELEASED, failed=True, message=why)
                self._publish(move.plan_id, f"failed: {why}", self._save(failed))
                return
            move = await self._commit(move, attempt)
            attempt += 1
            if move.phase is not Phase.MIGRATED or not move.simulated:
                continue  # a live-migrated VM runs at its destination: its commit only waits
            failing_since = failing_since or loop.time()
            if loop.time() - failing_since >= self.options.return_after_s:
                move = await self._homing.give_up_destination(move)
                failing_since = None
        while move.phase is Phase.RETURNING:
            known = [c for c in (move.src, move.dst) if self.coordinator.registry.find(c)]
            if not known:
                why = f"clusters {move.src!r} and {move.dst!r} were forgotten: no home for the VM"
                failed = replace(move, phase=Phase.RELEASED, failed=True, message=why)
                self._record(failed, f"failed: {why}", True)
                return
            move = await self._homing.round(move, known)

    def _progress(self, move: Move, step: str) -> Callable[[m.GridCommandResult], None]:
        def on_progress(result: m.GridCommandResult) -> None:
            if not result.is_final:
                current = self.journal.get(move.move_id) or move
                text = f"{step} {result.progress_fraction:.0%}"
                self._save(replace(current, progress_fraction=result.progress_fraction))
                self._publish(move.plan_id, text, current)

        return on_progress

    async def _reserve(self, move: Move) -> Move:
        command = m.ReserveCapacity(
            move.command_id("reserve"),
            move.reservation_id,
            move.vm,
            round(self.options.reservation_ttl_s * 1000),
        )
        try:
            result = await asyncio.wait_for(
                self.coordinator.send_grid_command(move.dst, command),
                self.options.reserve_timeout_s,
            )
        except TimeoutError:
            return await self._release(move, f"no reservation from {move.dst} in time")
        if result.state is not m.GridCommandState.SUCCEEDED:
            return await self._release(move, f"reservation refused: {result.message}")
        moved = replace(
            move,
            phase=Phase.RESERVED,
            node_id=result.node_id,
            destination_uri=result.destination_uri,
            migration_uri=result.migration_uri,
            simulated=result.simulated,
            message=f"reserved on {result.node_id}",
        )
        self._publish(move.plan_id, moved.message, self._save(moved))
        return moved

    async def _migrate(self, move: Move) -> Move:
        command = m.MigrateToUri(
            move.command_id("migrate"),
            move.vm.vm_uuid,
            move.reservation_id,
            move.destination_uri,
            move.migration_uri,
            move.bandwidth_cap_bps,
            live=True,
            copy_storage=move.copy_storage,
            simulated_destination=move.simulated,
            destination_node_id=move.node_id,
            memory_bytes=move.vm.memory_bytes,
        )
        result = await self.coordinator.send_grid_command(
            move.src, command, self._progress(move, "migrating")
        )
        if result.state is not m.GridCommandState.SUCCEEDED:
            return await self._release(move, f"migration failed: {result.message}")
        moved = replace(move, phase=Phase.MIGRATED, progress_fraction=1.0, message=result.message)
        self._publish(move.plan_id, moved.message, self._save(moved))
        return moved

    async def _commit(self, move: Move, attempt: int) -> Move:
        command = m.CommitReservation(move.command_id(f"commit{attempt}"), move.reservation_id)
        result = await self.coordinator.send_grid_command(move.dst, command)
        if result.state is not m.GridCommandState.SUCCEEDED:
            log.warning("commit of %s failed, retrying: %s", move.move_id, result.message)
            why = f"commit failed, retrying: {result.message}"
            if why != move.message:  # the move says why it waits; an event when that changes
                move = self._record(replace(move, message=why), why, True)
            await asyncio.sleep(2.0)
            return move  # the VM left its source: roll forward only (a new attempt)
        done = replace(move, phase=Phase.DONE, message=result.message)
        self._publish(move.plan_id, f"done: {result.message}", self._save(done))
        return done

    async def _release(self, move: Move, why: str) -> Move:
        command = m.ReleaseReservation(move.command_id("release"), move.reservation_id)
        result = await self.coordinator.send_grid_command(move.dst, command)
        if result.state is not m.GridCommandState.SUCCEEDED:
            log.warning("release of %s: %s", move.reservation_id, result.message)
        released = replace(move, phase=Phase.RELEASED, failed=True, message=why)
        self._publish(move.plan_id, f"released: {why}", self._save(released))
        return released
