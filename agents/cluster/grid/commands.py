"""The cluster's half of a cross-cluster move: grid commands from the coordinator, carried out.

reserve -> (the source cluster) migrate to the reserved node -> commit, or release. Every
command is journaled by id (`GridJournal`): a resent id is answered with its journaled result
or joins the run in progress, so nothing is done twice. Steps sent to agents take ids derived
from the grid command's, so the agents dedupe them as well after a manager restart.

Simulated nodes (libvirt test driver) cannot migrate: the source stops and undefines its copy
after the time the transfer would take, and the destination defines and starts the VM when
the reservation is committed (`arrivals.py`: on another of its nodes when the reserved one
refuses it by then). The coordinator keeps the VM's identity in its own journal between the
two, so the VM is never lost, and never runs in both clusters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from vmgrid.agents import grid_model as gm
from vmgrid.agents import model as am
from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.oneshot import one_action, run_or_raise
from vmgrid.agents.cluster.act.preconditions import Preconditions
from vmgrid.agents.cluster.grid.arrivals import RUNNING, ArrivalStarter
from vmgrid.agents.cluster.grid.journal import GridJournal, Reservation, ReservationState
from vmgrid.agents.cluster.grid.reservations import place
from vmgrid.agents.cluster.jobs.fault_tolerance import for_manager
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.rules.check import departure_refusal, involving
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound, VmgridError
from vmgrid.agents.jobmodel import JobRecord, JobState
from vmgrid.solver.plan import ActionKind

log = logging.getLogger(__name__)

Sink = Callable[[gm.GridCommandResult], None]


class GridCommandHandler:
    """Install with ``uplink.command_handler = handler.handle``; ``close()`` at shutdown."""

    def __init__(
        self,
        manager: ClusterManager,
        executor: PlanExecutor,
        arrivals: Preconditions,
        journal_path: str,
        options: DriverOptions | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.manager = manager
        self.executor = executor
        """Arrivals start and simulated departures stop through the cluster's applier."""
        self.arrivals = arrivals
        """The applier's own re-check (the executor's driver's): a reservation and an arrival
        are judged against the rules exactly as the start that follows will be."""
        self.journal = GridJournal(journal_path)
        self._options = options or DriverOptions()
        self.starter = ArrivalStarter(
            manager, executor, arrivals, self.journal, self._require, self.reserved
        )
        self._clock_ns = clock_ns
        self._running: dict[str, asyncio.Task[None]] = {}
        self._sinks: dict[str, Sink] = {}

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        self.journal.close()

    def reserved(self) -> list[Reservation]:
        """Reservations that count against their node now."""
        now = self._clock_ns()
        return [r for r in self.journal.reservations(ReservationState.HELD) if r.holds(now)]

    def handle(self, command: gm.GridCommand, sink: Sink) -> None:
        """Answer from the journal, join a run in progress, or start the command."""
        cached = self.journal.result(command.command_id)
        if cached is not None:
            sink(cached)
            return
        self._sinks[command.command_id] = sink
        if command.command_id in self._running:
            return
        task = asyncio.ensure_future(self._run(command))
        self._running[command.command_id] = task
        task.add_done_callback(lambda _: self._running.pop(command.command_id, None))

    async def _run(self, command: gm.GridCommand) -> None:
        cid = command.command_id
        resumed = self.journal.started(cid)
        self.journal.start(cid, self._clock_ns())
        self._emit(gm.GridCommandResult(cid, gm.GridCommandState.ACCEPTED))
        try:
            if isinstance(command, gm.ReserveCapacity):
                result = await self._reserve(command)
            elif isinstance(command, gm.MigrateToUri):
                result = await self._migrate(command, resumed)
            elif isinstance(command, gm.CommitReservation):
                result = await self._commit(command)
            elif isinstance(command, gm.SubmitJobToCluster):
                result = await self._submit_job(command)
            else:
                result = await self._release(command)
        except VmgridError as exc:
            result = gm.GridCommandResult(cid, gm.GridCommandState.FAILED, message=str(exc))
        except Exception as exc:  # a command must always end with a result
            log.exception("grid command %s failed", cid)
            result = gm.GridCommandResult(cid, gm.GridCommandState.FAILED, message=repr(exc))
        self.journal.finish(result)
        self._emit(result)

    def _emit(self, result: gm.GridCommandResult) -> None:
        sink = self._sinks.get(result.command_id)
        if sink is not None:
            sink(result)
        if result.is_final:
            self._sinks.pop(result.command_id, None)

    def _done(self, cid: str, message: str, **extra: object) -> gm.GridCommandResult:
        return gm.GridCommandResult(
            cid,
            gm.GridCommandState.SUCCEEDED,
            1.0,
            message,
            **extra,  # type: ignore[arg-type]
        )

    # ---- job submission (the grid chose this cluster) ---------------------------------------

    async def _submit_job(self, cmd: gm.SubmitJobToCluster) -> gm.GridCommandResult:
        """Run the job here; RUNNING progress says it is placed, the result carries its end."""

        def placed(record: JobRecord) -> None:
            self._emit(
                gm.GridCommandResult(
                    cmd.command_id, gm.GridCommandState.RUNNING, 0.5, record.message
                )
            )

        jobs = for_manager(self.manager).jobs
        try:
            document = json.loads(cmd.document_json)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"job {cmd.job_id}: document_json is not JSON ({exc})") from None
        record = await jobs.submit(document, cmd.job_id, placed)
        state = (
            gm.GridCommandState.SUCCEEDED
            if record.state is JobState.RUNNING
            else gm.GridCommandState.FAILED
        )
        return gm.GridCommandResult(cmd.command_id, state, 1.0, record.message)

    # ---- reserve ---------------------------------------------------------------------------

    async def _reserve(self, cmd: gm.ReserveCapacity) -> gm.GridCommandResult:
        existing = self.journal.reservation(cmd.reservation_id)
        if existing is None or existing.state is ReservationState.RELEASED:
            snapshot = self.manager.state.snapshot()
            node = await asyncio.to_thread(
                place, snapshot, cmd.vm, cmd.reservation_id, self.reserved()
            )
            self.starter.refuse_if_it_breaks(cmd.vm, node)
            simulated = self.manager.state.view(node).identity.simulated
            existing = Reservation(
                cmd.reservation_id,
                cmd.vm,
                node,
                simulated,
                self._clock_ns() + cmd.ttl_ms * 1_000_000,
            )
            self.journal.put_reservation(existing)
        identity = self.manager.state.view(existing.node_id).identity
        peer_uri, data_uri = identity.migration_target
        return self._done(
            cmd.command_id,
            f"reserved on {existing.node_id}",
            simulated=existing.simulated,
            reservation_id=existing.reservation_id,
            node_id=existing.node_id,
            destination_uri=peer_uri,
            migration_uri=data_uri,
        )

    # ---- migrate (source side) -------------------------------------------------------------

    async def _migrate(self, cmd: gm.MigrateToUri, resumed: bool) -> gm.GridCommandResult:
        cid = cmd.command_id
        try:
            node, vm = self.manager.state.find_vm(cmd.vm_uuid)
        except NotFound:
            if resumed:
                return self._done(cid, f"VM {cmd.vm_uuid} already left this cluster")
            raise NotFound(
                f"VM {cmd.vm_uuid} is not in cluster {self.manager.config.cluster_id}"
            ) from None
        if not resumed:
            self._may_leave(vm)
        source = self.manager.state.view(node).identity
        if cmd.simulated_destination:
            return await self._simulated_departure(cmd, node, vm)
        if source.simulated:
            raise FailedPrecondition(
                f"VM {vm.name or vm.uuid} is on simulated node {node}; it can only move to a "
                f"simulated node, not to {cmd.destination_uri!r}"
            )
        if vm.state not in RUNNING:
            raise FailedPrecondition(f"VM {vm.name or vm.uuid} is {vm.state.value}, not running")

        def forward(result: am.CommandResult) -> None:
            self._emit(
                gm.GridCommandResult(
                    cid, gm.GridCommandState.RUNNING, result.progress_fraction, result.message
                )
            )

        command = am.MigrateCommand(
            f"{cid}/migrate",
            vm.uuid,
            cmd.destination_uri,
            bandwidth_cap_bps=cmd.bandwidth_cap_bps,
            live=cmd.live,
            copy_storage=cmd.copy_storage,
            migration_uri=cmd.migration_uri,
        )
        result = await self.manager.send_command(
            node, command, self._options.command_timeout_s, forward
        )
        if result.state is not am.CommandState.SUCCEEDED:
            raise VmgridError(f"live migration of {vm.name or vm.uuid} failed: {result.message}")
        return self._done(cid, f"live-migrated {vm.name or vm.uuid} from {node}")

    def _may_leave(self, vm: am.VmUsage) -> None:
        """FailedPrecondition when another plan holds the VM, or its leaving would break a
        placement rule of this cluster; the coordinator's move then fails and releases."""
        holder = self.executor.holder(vm.uuid)
        if holder is not None:
            raise FailedPrecondition(f"VM {vm.name or vm.uuid} is held by plan {holder}")
        state = self.manager.state
        rules = involving(state.rules.kept(), [vm.uuid], [])
        if rules:
            refusal = departure_refusal(rules, to_model(state.snapshot()), vm.uuid)
            if refusal:
                raise FailedPrecondition(refusal)

    async def _simulated_departure(
        self, cmd: gm.MigrateToUri, node: str, vm: am.VmUsage
    ) -> gm.GridCommandResult:
        cid = cmd.command_id
        memory = cmd.memory_bytes or vm.memory_allocated_bytes
        bandwidth = cmd.bandwidth_cap_bps or self._options.migration_bandwidth_bps
        seconds = max(0.05, memory * 8 / max(1, bandwidth) * self._options.simulated_time_scale)
        ticks = max(1, int(seconds / 0.5))
        for i in range(ticks):
            await asyncio.sleep(seconds / ticks)
            self._emit(
                gm.GridCommandResult(
                    cid, gm.GridCommandState.RUNNING, (i + 1) / ticks, "copying", simulated=True
                )
            )
        reason = f"leaves for another cluster (grid command {cid})"
        stop = one_action(ActionKind.SHUTDOWN_VM, vm.uuid, reason, src=node)
        await run_or_raise(self.executor, f"grid-{cid}-stop", [stop], origin="grid")
        await self._require(node, am.DestroyCommand(f"{cid}/destroy", vm.uuid))
        await self._require(node, am.UndefineCommand(f"{cid}/undefine", vm.uuid))
        return self._done(
            cid,
            f"simulated transfer of {vm.name or vm.uuid} from {node} in {seconds:.1f} s",
            simulated=True,
        )

    async def _require(self, node: str, command: am.Command) -> None:
        result = await self.manager.send_command(node, command, self._options.command_timeout_s)
        if result.state is not am.CommandState.SUCCEEDED:
            raise VmgridError(f"{type(command).__name__} on {node} failed: {result.message}")

    # ---- commit / release (destination side) -----------------------------------------------

    async def _commit(self, cmd: gm.CommitReservation) -> gm.GridCommandResult:
        r = self.journal.reservation(cmd.reservation_id)
        if r is None:
            raise NotFound(f"reservation {cmd.reservation_id!r} is unknown in this cluster")
        if r.state is ReservationState.RELEASED:
            raise FailedPrecondition(f"reservation {cmd.reservation_id!r} was released")
        name = r.vm.name or r.vm.vm_uuid
        if r.state is ReservationState.HELD:
            if r.simulated:
                r = await self.starter.arrive_simulated(cmd.command_id, r)
            else:
                await self.starter.await_arrival(r)
            self.journal.put_reservation(_with_state(r, ReservationState.COMMITTED))
        return self._done(
            cmd.command_id,
            f"{name} running on {r.node_id}",
            simulated=r.simulated,
            node_id=r.node_id,
        )

    async def _release(self, cmd: gm.ReleaseReservation) -> gm.GridCommandResult:
        r = self.journal.reservation(cmd.reservation_id)
        if r is None:
            return self._done(cmd.command_id, f"reservation {cmd.reservation_id} not held")
        if r.state is ReservationState.COMMITTED:
            raise FailedPrecondition(
                f"reservation {cmd.reservation_id!r} is committed: the VM is here"
            )
        if r.state is ReservationState.HELD and r.simulated:
            # a commit whose start failed may have left a copy defined here; the VM may be
            # sent to another cluster next, so it must not stay defined in this one
            await self.starter.remove_copy(cmd.command_id, r)
        self.journal.put_reservation(_with_state(r, ReservationState.RELEASED))
        return self._done(cmd.command_id, f"released the room on {r.node_id}")


def _with_state(r: Reservation, state: ReservationState) -> Reservation:
    return Reservation(r.reservation_id, r.vm, r.node_id, r.simulated, r.expires_unix_ns, state)
