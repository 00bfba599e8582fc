"""A whole cluster manager: the gRPC server, the plan journal, the executor and the decision loop.

Start order matters after a crash: the server comes up first so agents reconnect and report,
then, once every node the journal's running plans touch has reported (or a grace period has
passed), those plans are reconciled and finished, and only then does the decision loop start.

With an ``[etcd]`` table the manager is one replica of its cluster (``replica.Replica``): it
serves at once but, as a standby, refuses every call with the leader's address; the leader
parts (HA, uplink, plan resumption, decision loop) start only once it leads. When its lease
may have lapsed the command gate is already closed, and the replica enters "no new decisions"
mode: it halts its executor (no action starts, nothing more is journaled: the running plans are
left to the next leader, which reconciles them), stops its leader parts, ends its agents'
streams (they look for the leader), says so in one log line, and waits for etcd to answer;
then ``deposed`` is set and the program stops, for its supervisor to start it again as a
candidate. Without the table the same path runs with no election (term 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmgrid.agents.cluster.act.driver import DriverOptions, ManagerDriver
from vmgrid.agents.cluster.act.executor import ExecutionLimits, PlanExecutor
from vmgrid.agents.cluster.act.images import VmImages
from vmgrid.agents.cluster.act.journal import Journal, PlanState
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.grid.commands import GridCommandHandler
from vmgrid.agents.cluster.grid.summary import cluster_hello, cluster_summary
from vmgrid.agents.cluster.grid.uplink import GridUplink
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance, FaultToleranceOptions
from vmgrid.agents.cluster.operator.operations import OperatorApi
from vmgrid.agents.cluster.operator.policy import restore as restore_policy
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.drains import persist_drains, restore_drains
from vmgrid.agents.cluster.service.powered_off import persist_power_changes, restore_powered_off
from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions, StandbyInterceptor
from vmgrid.agents.cluster.service.replica_store import EtcdMirror
from vmgrid.agents.cluster.service.retention import Pruner, Retention
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.service.standby import StateFollower
from vmgrid.agents.cluster.service.state_mirror import StateMirror, WriteThroughs
from vmgrid.agents.cluster.service.warm_view import ViewFollower, ViewServicer
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.common.etcd import EtcdUnavailable
from vmgrid.agents.common.supervise import supervise
from vmgrid.agents.tls import TlsFiles, channel_credentials

if TYPE_CHECKING:
    import grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeOptions:
    """What runs beside the server."""

    control: ControlConfig = field(default_factory=ControlConfig)
    driver: DriverOptions = field(default_factory=DriverOptions)
    limits: ExecutionLimits = field(default_factory=ExecutionLimits)
    journal_path: str = ":memory:"
    """SQLite file of the plan journal; ``:memory:`` forgets plans on restart."""
    decisions: bool = True
    """Run the decision loop (off: the manager only observes and executes operator plans)."""
    resume_grace_s: float = 15.0
    """Longest wait for the nodes of interrupted plans to report before resuming them."""
    coordinator: str = ""
    """host:port of the grid coordinator to report to; empty: this cluster stands alone."""
    coordinator_credentials: grpc.ChannelCredentials | None = None  # noqa: F821
    """mTLS credentials for the coordinator link; None means plaintext (loopback tests only)."""
    summary_period_s: float = 5.0
    """Period of summaries to the coordinator (the coordinator may ask for another)."""
    fault_tolerance: FaultToleranceOptions | None = None
    """Job submission, checkpoints and node-failure restarts; None: not offered."""
    replica: ReplicaOptions = field(default_factory=ReplicaOptions)
    """Replication on etcd (``[etcd]``); no endpoints: a single replica."""


def _control_as_driven(options: RuntimeOptions) -> RuntimeOptions:
    """The decision loop's settings that follow the driver's: wake_powered_off takes effect
    only with a power-on command to wake nodes with, and plans time real migrations over the
    link the driver migrates with."""
    control = dataclasses.replace(options.control, migration_link=options.driver.migration_link)
    if control.wake_powered_off and not options.driver.power_on_command:
        control = dataclasses.replace(control, wake_powered_off=False)
    return dataclasses.replace(options, control=control)


class ClusterRuntime:
    """``await start()``; ``await stop()``. Exposes server, manager, executor, loop."""

    def __init__(self, config: ClusterConfig, options: RuntimeOptions | None = None) -> None:
        self.options = _control_as_driven(options or RuntimeOptions())
        self.server = ClusterServer(config)
        self.manager = self.server.manager
        self.journal = Journal(self.options.journal_path)
        if self.options.journal_path != ":memory:":
            # The rules live in the journal's database (their own table), so a restarted
            # manager keeps every rule it had.
            self.manager.state.rules = RuleStore(self.options.journal_path)
        self.images = VmImages()
        """Boots from memory files and saves, set by memory checkpoints, read by the driver."""
        self.driver = ManagerDriver(self.manager, self.options.driver, self.images)
        self.executor = PlanExecutor(self.driver, self.journal, self.options.limits)
        self.driver.preconditions.held = lambda vm: self.executor.holder(vm) is not None
        self.loop = ControlLoop(self.manager, self.executor, self.options.control)
        restore_policy(self.journal, self.loop)
        self.operator = OperatorApi(self)
        self.server.operator = self.operator
        if not self.options.replica.endpoints:
            restore_powered_off(self.manager.state, self.journal)  # a replica: once it leads
            restore_drains(self.manager.state, self.journal)
        persist_power_changes(self.manager.state, self.journal)
        persist_drains(self.manager.state, self.journal)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.uplink: GridUplink | None = None
        self.fault_tolerance: FaultTolerance | None = None
        self.grid_commands: GridCommandHandler | None = None
        self.replica: Replica | None = None
        self.mirror: EtcdMirror | None = None
        self.deposed = asyncio.Event()
        """Set when this replica's leadership ended and etcd answers again: it must exit."""
        self._step_down: asyncio.Task[None] | None = None
        self._leader_parts_stopped = False
        if self.options.replica.endpoints:
            self.replica = Replica(self.options.replica, config.cluster_id)
            self.manager.leading = self.replica.leading
            self.standby_interceptor = StandbyInterceptor(self.replica, "the cluster's state")
            self.server.interceptors.append(self.standby_interceptor)
            self.server.view = ViewServicer(self.manager, self.options.replica.view_period_s)
            self._replica_credentials = (
                None
                if config.insecure
                else channel_credentials(
                    TlsFiles(config.tls_ca_file, config.tls_cert_file, config.tls_key_file)
                )
            )
        self.state_follower: StateFollower | None = None
        self.view_follower: ViewFollower | None = None

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> str:
        address = await self.server.start()
        if self.replica is None:
            self._start_leader_parts(address)
            self._task = supervise(self._background, "decision loop")
        else:
            self._task = asyncio.create_task(self._lead_then_run(address))
        return address

    async def _lead_then_run(self, address: str) -> None:
        """As a standby, follow etcd's replicated state and the leader's view of the nodes
        (warm: nothing to load at takeover); once leading, catch up and run."""
        assert self.replica is not None
        self.mirror = EtcdMirror(self.replica, self.journal, self.manager.state.rules)
        tables = self._state_mirror()
        self.state_follower = StateFollower(self.replica, self.mirror, tables)
        self.view_follower = ViewFollower(
            self.replica, self.manager, self._replica_credentials, self.options.replica.lease_ttl_s
        )
        following = [
            asyncio.create_task(self.state_follower.run()),
            asyncio.create_task(self.view_follower.run()),
        ]
        try:
            self.manager.term = await self.replica.lead(address)
        finally:
            for task in following:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.view_follower.touch_alive()  # their agents get a full heartbeat timeout to come
        self._step_down = asyncio.create_task(self._step_down_when_deposed())
        follower = self.state_follower
        reread = await self.replica.read_until_answered(follower.catch_up, "the journal")
        log.info(
            "took over with %s from etcd (%s; %d earlier read(s) as a standby) and a warm "
            "view of %d node(s)",
            "the state read again" if reread else "the state already read",
            ", ".join(f"{k} {n}" for k, n in follower.counts.items()),
            follower.loads - int(reread),
            len(self.manager.state.node_ids()),
        )
        restore_powered_off(self.manager.state, self.journal)
        restore_policy(self.journal, self.loop)
        restore_drains(self.manager.state, self.journal)
        self.mirror.attach()
        durable = WriteThroughs(self.mirror, tables)
        self.manager.before_command = durable.flush
        self.standby_interceptor.write_through = durable
        self.standby_interceptor.caught_up = True
        mirroring = [asyncio.create_task(self.mirror.run()), asyncio.create_task(tables.run())]
        mirroring.append(
            asyncio.create_task(self._pruner(tables).run(self.options.replica.prune_period_s))
        )
        try:
            self._start_leader_parts(address)
            await supervise(self._background, "decision loop")
        finally:
            for task in mirroring:
                task.cancel()

    def _pruner(self, tables: StateMirror) -> Pruner:
        """Finished plans and failed jobs pruned from etcd, its history compacted."""
        assert self.replica is not None and self.mirror is not None
        options = self.options.replica
        retention = Retention(options.keep_finished, options.keep_finished_hours * 3600,
                              options.compact_revisions)  # fmt: skip
        jobs = f"{tables.prefix}jobs/" if self.options.fault_tolerance is not None else None
        return Pruner(self.replica, self.journal, self.mirror.plans_prefix, jobs, retention)

    def _state_mirror(self) -> StateMirror:
        """The journal's settings (operator policy, nodes in maintenance) and, with jobs
        enabled, the job store and HA's member store (members, checkpoints, stale copies):
        followed from etcd while a standby, mirrored while this replica leads (flushed before
        every command, like the journal)."""
        assert self.replica is not None
        tables = {"settings": self.journal.connection}
        if self.options.fault_tolerance is not None:
            self.fault_tolerance = FaultTolerance(
                self.manager, self.executor, self.options.fault_tolerance, self.images
            )
            jobs = self.fault_tolerance.jobs
            members = jobs.members.connection
            tables |= {"jobs": jobs.store.connection, "members": members,
                       "checkpoints": members, "stale": members,
                       "checkpoint_parts": members, "boot_images": members}  # fmt: skip
        widths = {"checkpoints": 2, "stale": 2, "checkpoint_parts": 3}
        return StateMirror(self.replica, tables, widths)

    @property
    def no_new_decisions(self) -> bool:
        """True from the moment this replica's lease was lost until the process stops."""
        return self.replica is not None and bool(self.replica.deposed_at)

    async def _step_down_when_deposed(self) -> None:
        """No new decisions from the moment the lease may have lapsed; exit once etcd
        answers again (the successor, or this process started again, leads then)."""
        assert self.replica is not None
        replica = self.replica
        await replica.deposed.wait()
        replica.deposed_at = time.monotonic()
        self.executor.halt()
        self._stop.set()
        log.error(
            "replica %s lost its etcd lease (term %d): no new decisions: no action starts, "
            "%d running plan(s) left to the next leader, %d agent stream(s) ended; waiting "
            "for etcd to answer",
            replica.replica_id,
            self.manager.term,
            len(self.executor.in_flight),
            self.manager.end_sessions(),
        )
        await self._stop_leader_parts()
        await replica.wait_for_etcd()
        log.warning(
            "replica %s: etcd answers again; stopping, to start again as a candidate",
            replica.replica_id,
        )
        self.deposed.set()

    async def _stop_leader_parts(self) -> None:
        """What only a leader runs: the decision loop and plan resumption, the uplink (and
        its grid commands), HA. Once: a deposed replica stops them before it stops."""
        if self._leader_parts_stopped:
            return
        self._leader_parts_stopped = True
        if self.uplink is not None:
            await self.uplink.stop()
        if self.grid_commands is not None:
            self.grid_commands.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.fault_tolerance is not None:
            await self.fault_tolerance.stop()

    def _start_leader_parts(self, address: str) -> None:
        """HA and the uplink: what only the leader (or the single replica) runs."""
        if self.options.fault_tolerance is not None:
            if self.fault_tolerance is None:  # a replica made it already, to restore it
                self.fault_tolerance = FaultTolerance(
                    self.manager, self.executor, self.options.fault_tolerance, self.images
                )
            self.fault_tolerance.start()
            self.operator.insight.members = self.fault_tolerance.jobs.members.members
        if self.options.coordinator:
            state = self.manager.state
            self.uplink = GridUplink(
                self.options.coordinator,
                self.options.coordinator_credentials,
                cluster_hello(state.snapshot(), address),
                lambda: cluster_summary(
                    state.snapshot(), self.loop.config.operator_policy.cpu_high, state.traffic
                ),
                self.options.summary_period_s,
            )
            self.grid_commands = GridCommandHandler(
                self.manager,
                self.executor,
                self.driver.preconditions,
                self.options.journal_path,
                self.options.driver,
            )
            self.uplink.command_handler = self.grid_commands.handle
            self.uplink.start()

    async def _background(self) -> None:
        await self._resume_interrupted_plans()
        if self.options.decisions:
            await self.loop.run(self._stop)

    async def _resume_interrupted_plans(self) -> None:
        interrupted = self.journal.plans([PlanState.RUNNING])
        if not interrupted:
            return
        nodes = {
            n
            for plan in interrupted
            for record in plan.actions
            for n in (record.action.src, record.action.dst)
            if n is not None
        }
        deadline = asyncio.get_running_loop().time() + self.options.resume_grace_s
        while asyncio.get_running_loop().time() < deadline and not self._reported(nodes):
            await asyncio.sleep(0.2)
        log.info("resuming %d interrupted plan(s) from the journal", len(interrupted))
        for report in await self.executor.resume_unfinished():
            log.info("plan %s resumed and ended %s", report.plan_id, report.state.value)

    def _reported(self, nodes: set[str]) -> bool:
        """Every node of `nodes` reported over its own agent stream (a warm view from the
        old leader is not enough to reconcile a plan's actions with: it may be a leader
        behind, e.g. showing a VM still on the host an earlier plan moved it from).

        A node's usage may come from the warm view, so a report on the current stream is
        known by its sequence: a hello resets it to 0 and an agent numbers a stream's reports
        from 1. A node whose reports carry no sequence is waited for until the grace ends."""
        state = self.manager.state
        known = set(state.node_ids())
        return all(
            n in known
            and self.manager.has_stream(n)
            and state.node_status(n) is NodeStatus.CONNECTED
            and (view := state.view(n)).usage is not None
            and view.last_sequence > 0
            for n in nodes
        )

    async def stop(self, grace_s: float = 1.0) -> None:
        self._stop.set()
        if self._step_down is not None:
            self._step_down.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._step_down
        await self._stop_leader_parts()
        await self.server.stop(grace_s)
        if self.replica is not None:
            if self.mirror is not None and self.replica.leading():
                with contextlib.suppress(EtcdUnavailable, TimeoutError):
                    async with asyncio.timeout(2):
                        await self.mirror.flush()
            await self.replica.close()
        self.manager.state.rules.close()
        self.journal.close()
