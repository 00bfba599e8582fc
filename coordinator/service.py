"""The coordinator's core: cluster link sessions, the registry, liveness and grid planning.

No grpc here: the rpc module decodes wire messages and calls these methods, so the logic is
tested directly. Call from the event loop thread only (planning runs in a worker thread on an
immutable snapshot).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, MalformedMessage
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.events import EventBus
from vmgrid.coordinator.planning import measured_topology, planner_input
from vmgrid.coordinator.registry import Registry
from vmgrid.solver import grid

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LinkSession:
    """One open cluster stream; ``outbox`` feeds the stream writer (None ends the stream)."""

    cluster_id: str
    outbox: asyncio.Queue[m.HelloAck | m.StreamError | m.GridCommand | None] = field(
        default_factory=asyncio.Queue
    )
    last_sequence: int = 0
    rejected: int = 0


@dataclass(eq=False)
class _PendingCommand:
    cluster_id: str
    command: m.GridCommand
    future: asyncio.Future[m.GridCommandResult]
    on_progress: Callable[[m.GridCommandResult], None] | None


@dataclass(frozen=True)
class DryRun:
    """A computed grid plan with its id and the clusters left out of it."""

    plan_id: str
    plan: grid.GridPlan
    created_unix_ns: int
    notes: tuple[str, ...]


class Coordinator:
    """Registry + sessions + events of one grid."""

    def __init__(
        self,
        config: CoordinatorConfig,
        registry: Registry,
        topology: grid.Topology | None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.registry = registry
        self.topology = topology
        self.bus = EventBus(clock_ns)
        self.sessions: dict[str, LinkSession] = {}
        self._clock_ns = clock_ns
        self._started_ns = clock_ns()
        self.summary_listeners: list[Callable[[str, m.ClusterSummary], None]] = []
        """Called with (cluster id, summary) for each summary stored (metrics)."""
        self.plan_listeners: list[Callable[[DryRun], None]] = []
        """Called with each computed grid plan (metrics)."""
        self.dry_runs: dict[str, DryRun] = {}
        """Computed plans by id, for ApplyGridPlan (kept in memory only)."""
        self._commands: dict[str, _PendingCommand] = {}
        self.term = 0
        """Leadership term stamped on hello acks and grid commands (0: a single coordinator);
        clusters refuse a lower term than they have seen."""
        self.before_command: Callable[[], Awaitable[None]] | None = None
        """Awaited before a grid command is first sent (a replicated coordinator stores its
        state in etcd then, so no step reaches a cluster before the move's phase is stored)."""
        for cluster_id in self.unknown_clusters():
            log.warning("registered cluster %r is not in the topology", cluster_id)

    def unknown_clusters(self) -> list[str]:
        """Registered clusters the topology does not name (they are not planned)."""
        if self.topology is None:
            return []
        known = set(self.topology.clusters())
        return [r.cluster_id for r in self.registry.records() if r.cluster_id not in known]

    def open_session(self, hello: m.ClusterHello) -> LinkSession:
        """Register (or refresh) a cluster; a newer stream replaces an older one."""
        now = self._clock_ns()
        previous = self.registry.find(hello.cluster_id)
        old = self.sessions.pop(hello.cluster_id, None)
        if old is not None:
            old.outbox.put_nowait(None)
        session = LinkSession(hello.cluster_id)
        self.sessions[hello.cluster_id] = session
        summary = previous.summary if previous else None
        self.registry.put(m.ClusterRecord(hello, m.ClusterState.CONNECTED, now, summary))
        known = self.topology is None or hello.cluster_id in self.topology.clusters()
        if not known:
            log.warning(
                "cluster %r is not in the topology; it is registered but not planned; "
                "unknown clusters: %s",
                hello.cluster_id,
                ", ".join(self.unknown_clusters()),
            )
        if previous is None:
            self.bus.publish(m.GridEventKind.CLUSTER_JOINED, hello.cluster_id, "cluster joined")
        elif previous.state is m.ClusterState.LOST:
            self.bus.publish(m.GridEventKind.CLUSTER_RETURNED, hello.cluster_id, "reconnected")
        session.outbox.put_nowait(
            m.HelloAck(
                self.config.grid_id,
                round(self.config.summary_period_s * 1000),
                round(self.config.cluster_timeout_s * 1000),
                known,
                self.term,
            )
        )
        for pending in self._commands.values():
            if pending.cluster_id == hello.cluster_id:
                session.outbox.put_nowait(pending.command)
        return session

    def is_current(self, session: LinkSession) -> bool:
        return self.sessions.get(session.cluster_id) is session

    def handle_summary(self, session: LinkSession, summary: m.ClusterSummary) -> None:
        """Store a summary; a stale sequence is rejected without touching the registry."""
        if summary.sequence <= session.last_sequence:
            raise MalformedMessage(
                "summary.sequence",
                f"{summary.sequence} is not after {session.last_sequence}; sequences must grow",
            )
        session.last_sequence = summary.sequence
        record = self.registry.get(session.cluster_id)
        was_lost = record.state is m.ClusterState.LOST
        self.registry.put(
            replace(
                record,
                state=m.ClusterState.CONNECTED,
                last_seen_unix_ns=self._clock_ns(),
                summary=summary,
            )
        )
        if was_lost:
            self.bus.publish(
                m.GridEventKind.CLUSTER_RETURNED, session.cluster_id, "reporting again"
            )
        for listener in self.summary_listeners:
            listener(session.cluster_id, summary)

    def reject(self, session: LinkSession, error: MalformedMessage) -> None:
        """Answer a malformed message on its stream; the registry is left as it was."""
        session.rejected += 1
        log.warning("cluster %s: rejected message: %s", session.cluster_id, error)
        session.outbox.put_nowait(m.StreamError(str(error), error.field))

    def close_session(self, session: LinkSession) -> None:
        """Forget a finished stream; the cluster stays connected until its timeout."""
        if self.is_current(session):
            del self.sessions[session.cluster_id]

    def restart_liveness(self) -> None:
        """Give every cluster a full timeout from now to be heard from (a coordinator that
        just took over the grid has heard no one yet)."""
        self._started_ns = self._clock_ns()

    def check_timeouts(self) -> list[str]:
        """Declare lost every connected cluster silent for longer than the timeout."""
        now = self._clock_ns()
        limit_ns = round(self.config.cluster_timeout_s * 1e9)
        lost = []
        for record in self.registry.records():
            if record.state is not m.ClusterState.CONNECTED:
                continue
            silent_ns = now - max(record.last_seen_unix_ns, self._started_ns)
            if silent_ns > limit_ns:
                self.registry.put(replace(record, state=m.ClusterState.LOST))
                message = f"no summary for {silent_ns / 1e9:.1f} s"
                self.bus.publish(m.GridEventKind.CLUSTER_LOST, record.cluster_id, message)
                log.warning("cluster %s lost: %s", record.cluster_id, message)
                lost.append(record.cluster_id)
        return lost

    async def watch_timeouts(self) -> None:
        """Check liveness a few times per timeout until cancelled."""
        period = min(self.config.summary_period_s, self.config.cluster_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            self.check_timeouts()

    def current_topology(self) -> grid.Topology:
        """The configured topology with measured link usage; FailedPrecondition without one."""
        if self.topology is None:
            raise FailedPrecondition(
                "no topology configured; start vmgrid-coordinator with --topology-file GRAPHML"
            )
        return measured_topology(self.topology, self.registry.records())

    async def plan(self, config: grid.PlannerConfig | None = None) -> DryRun:
        """A dry-run inter-cluster plan over the latest summaries (nothing is executed)."""
        topology = self.current_topology()
        inputs = planner_input(self.registry.records(), topology)
        if not inputs.summaries:
            plan = grid.GridPlan(stats=grid.PlanStats(notes=("no cluster summary to plan",)))
            return DryRun(f"grid-{uuid.uuid4().hex[:12]}", plan, self._clock_ns(), inputs.notes)
        try:
            plan = await asyncio.to_thread(
                grid.plan_grid, topology, list(inputs.summaries), config or grid.PlannerConfig()
            )
        except grid.GridError as exc:
            raise InvalidArgument(f"grid plan: {exc}") from None
        dry_run = DryRun(f"grid-{uuid.uuid4().hex[:12]}", plan, self._clock_ns(), inputs.notes)
        self.dry_runs[dry_run.plan_id] = dry_run
        for listener in self.plan_listeners:
            listener(dry_run)
        self.bus.publish(
            m.GridEventKind.PLAN_CHANGED,
            message=f"dry-run plan with {len(plan.moves)} moves",
            plan_id=dry_run.plan_id,
        )
        return dry_run

    # ---- grid commands ----------------------------------------------------------------------

    def check_forgettable(self, cluster_id: str) -> None:
        """NotFound for an unknown cluster; FailedPrecondition while it is connected or its
        last summary shows VMs (its manager should drain them, or come back and be asked)."""
        record = self.registry.get(cluster_id)
        if cluster_id in self.sessions or record.state is m.ClusterState.CONNECTED:
            raise FailedPrecondition(f"cluster {cluster_id!r} is connected; stop its manager first")
        summary = record.summary
        if summary is not None and (
            summary.movable_vms or summary.usage.cpu_millicores or summary.usage.memory_bytes
        ):
            vms = len(summary.movable_vms)
            raise FailedPrecondition(
                f"cluster {cluster_id!r} held VMs at its last summary ({vms} movable, "
                f"{summary.usage.memory_bytes // 2**20} MiB in use); move them first"
            )

    def forget_cluster(self, cluster_id: str, reason: str) -> None:
        """Remove a cluster (check_forgettable first) from the registry and its database; the
        commands still waiting for it fail with ``reason``."""
        self.check_forgettable(cluster_id)
        self.registry.delete(cluster_id)
        for command_id, pending in list(self._commands.items()):
            if pending.cluster_id == cluster_id:
                del self._commands[command_id]
                if not pending.future.done():
                    failed = m.GridCommandResult(
                        command_id, m.GridCommandState.FAILED, message=reason
                    )
                    pending.future.set_result(failed)
        self.bus.publish(m.GridEventKind.CLUSTER_FORGOTTEN, cluster_id, reason)
        log.info("cluster %s forgotten", cluster_id)

    async def send_grid_command(
        self,
        cluster_id: str,
        command: m.GridCommand,
        on_progress: Callable[[m.GridCommandResult], None] | None = None,
    ) -> m.GridCommandResult:
        """Send a command to a cluster and wait for its final result, however long it takes.

        Idempotent by command id: an id in flight is awaited, not sent twice. A cluster that is
        not connected gets the command when it reconnects (the cluster dedupes by id).
        """
        pending = self._commands.get(command.command_id)
        if pending is None and self.registry.find(cluster_id) is None:
            message = f"cluster {cluster_id!r} is not registered (forgotten?)"
            return m.GridCommandResult(
                command.command_id, m.GridCommandState.FAILED, message=message
            )
        if pending is None and self.before_command is not None:
            await self.before_command()
            pending = self._commands.get(command.command_id)
        if pending is None:
            future: asyncio.Future[m.GridCommandResult] = asyncio.get_running_loop().create_future()
            pending = _PendingCommand(cluster_id, command, future, on_progress)
            self._commands[command.command_id] = pending
            session = self.sessions.get(cluster_id)
            if session is not None:
                session.outbox.put_nowait(command)
        return await asyncio.shield(pending.future)

    def handle_result(self, session: LinkSession, result: m.GridCommandResult) -> None:
        """Progress or outcome of a grid command from a cluster."""
        pending = self._commands.get(result.command_id)
        if pending is None or pending.cluster_id != session.cluster_id:
            log.info("cluster %s: result of unknown command %s", session.cluster_id, result)
            return
        if pending.on_progress is not None:
            pending.on_progress(result)
        if result.is_final:
            del self._commands[result.command_id]
            if not pending.future.done():
                pending.future.set_result(result)
