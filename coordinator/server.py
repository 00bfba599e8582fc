"""Assemble and run the coordinator's grpc.aio server (services, health, reflection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
import grpc.aio
from grpc_health.v1.health import aio as health_aio
from vmgrid.agents.cluster.service.replica import Replica, StandbyInterceptor
from vmgrid.agents.cluster.service.retention import Retention
from vmgrid.agents.cluster.service.standby import StateFollower
from vmgrid.agents.cluster.service.state_mirror import StateMirror
from vmgrid.agents.common.authz import interceptors
from vmgrid.agents.common.etcd import EtcdUnavailable
from vmgrid.agents.common.grpc_server import (
    EXCLUSIVE_PORT,
    add_health_and_reflection,
    bind,
    mark_serving,
)
from vmgrid.agents.common.supervise import supervise
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.jobmodel import JobStore
from vmgrid.agents.tls import TlsFiles
from vmgrid.coordinator.access import COORDINATOR_ACCESS
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.grid_jobs import GridJobs
from vmgrid.coordinator.mover import GridMover
from vmgrid.coordinator.moves import MoveJournal
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.replica import coordinator_replica
from vmgrid.coordinator.retention import GridPruner
from vmgrid.coordinator.rpc import CoordinatorServicer, GridLinkServicer
from vmgrid.coordinator.service import Coordinator
from vmgrid.solver.grid import GridError, Topology, load_topology
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc, grid_pb2, grid_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    grid_pb2.DESCRIPTOR.services_by_name["GridLinkService"].full_name,
    coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].full_name,
)


def load_configured_topology(config: CoordinatorConfig) -> Topology | None:
    """The GraphML topology, validated; ConfigError names the file and the problem."""
    if not config.topology_file:
        log.warning("no topology_file: clusters are registered but the grid is not planned")
        return None
    try:
        return load_topology(config.topology_file)
    except GridError as exc:
        raise ConfigError(f"topology_file: {exc}") from None


class CoordinatorServer:
    """A running coordinator: ``await start()``, then ``address``; ``await stop()`` to end."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.registry = Registry(config.state_db)
        self.coordinator = Coordinator(config, self.registry, load_configured_topology(config))
        self.mover = GridMover(self.coordinator, MoveJournal(config.state_db))
        self.jobs = GridJobs(self.coordinator, JobStore(config.state_db))
        self.address = ""
        self.health = health_aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.replica: Replica | None = None
        """This coordinator's part in its grid's election (``[etcd]``); None: the only one."""
        self.mirror: StateMirror | None = None
        self.gate: StandbyInterceptor | None = None
        self.deposed = asyncio.Event()
        """Set when this replica's leadership ended: it has stopped acting and must exit."""
        self._leading: asyncio.Task[None] | None = None
        self._relay: asyncio.Task[None] | None = None
        if config.replica.endpoints:
            self.replica = coordinator_replica(config.replica, config.grid_id)
            self.gate = StandbyInterceptor(self.replica, "the grid's state")

    async def start(self) -> str:
        """Bind, serve and start the liveness watchdog; returns the bound host:port."""
        server = grpc.aio.server(
            interceptors=[
                *interceptors(
                    COORDINATOR_ACCESS, "coordinator", self.config.insecure, self.config.tls_ca_file
                ),
                *([self.gate] if self.gate is not None else []),
            ],
            options=[("grpc.keepalive_time_ms", 30000), EXCLUSIVE_PORT],
        )
        grid_pb2_grpc.add_GridLinkServiceServicer_to_server(
            GridLinkServicer(self.coordinator), server
        )
        coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(
            CoordinatorServicer(self.coordinator, self.mover, self.jobs), server
        )
        add_health_and_reflection(server, self.health, SERVICE_NAMES)
        config = self.config
        tls = TlsFiles(config.tls_ca_file, config.tls_cert_file, config.tls_key_file)
        address = bind(server, config.listen, config.insecure, tls)
        await server.start()
        self._server = server
        self.address = address
        await mark_serving(self.health, SERVICE_NAMES)
        if self.replica is None:
            self._start_leader_parts()
        else:
            self._leading = asyncio.create_task(self._lead_then_run())
        if self.config.ready_file:
            Path(self.config.ready_file).write_text(self.address + "\n")
        log.info("coordinator %s serving on %s", self.config.grid_id, self.address)
        return self.address

    def deposed_stops(self, stop: asyncio.Event) -> None:
        """Set `stop` once this replica is deposed (the process then exits)."""

        async def relay() -> None:
            await self.deposed.wait()
            stop.set()

        self._relay = asyncio.create_task(relay())

    def _start_leader_parts(self) -> None:
        """The liveness watchdog, the moves and the jobs in flight: what only the leader runs."""
        self._watchdog = supervise(self.coordinator.watch_timeouts, "liveness watchdog")
        self.mover.resume()
        self.jobs.resume(self.config.cluster_timeout_s)

    async def _lead_then_run(self) -> None:
        """Campaign; once leading, read the grid's state from etcd, resume, and mirror every
        change until the lease is lost (then ``deposed`` is set and nothing more is sent)."""
        assert self.replica is not None and self.gate is not None
        mirror = StateMirror(
            self.replica,
            {
                "clusters": self.registry.connection,
                "grid_moves": self.mover.journal.connection,
                "jobs": self.jobs.store.connection,
            },
        )
        follower = StateFollower(self.replica, None, mirror)
        following = asyncio.create_task(follower.run())  # a standby keeps the state loaded
        try:
            term = await self.replica.lead(self.address)
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        self.coordinator.term = term
        reread = await self.replica.read_until_answered(follower.catch_up, "the grid's state")
        self.registry.reload()
        self.coordinator.restart_liveness()
        log.info(
            "term %d: %s from etcd (%s; %d earlier read(s) as a standby)",
            term,
            "the grid's state read again" if reread else "the grid's state already read",
            ", ".join(f"{k} {n}" for k, n in follower.counts.items()),
            follower.loads - int(reread),
        )
        self.mirror = mirror
        self.coordinator.before_command = mirror.durable
        self.gate.write_through = mirror
        self.gate.caught_up = True
        mirroring = asyncio.create_task(mirror.run())
        options = self.config.replica
        retention = Retention(options.keep_finished, options.keep_finished_hours * 3600,
                              options.compact_revisions)  # fmt: skip
        pruner = GridPruner(self.replica, self.mover.journal, mirror.prefix, retention)
        pruning = asyncio.create_task(pruner.run(options.prune_period_s))
        try:
            self._start_leader_parts()
            await self.replica.deposed.wait()
            log.error(
                "coordinator replica %s lost its etcd lease (term %d): no new grid command "
                "starts; stopping",
                self.replica.replica_id,
                term,
            )
            self.deposed.set()
        finally:
            mirroring.cancel()
            pruning.cancel()

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving (NOT_SERVING first, so health checkers see it), then close the db."""
        await self.health.enter_graceful_shutdown()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._leading is not None:
            self._leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        for session in list(self.coordinator.sessions.values()):
            session.outbox.put_nowait(None)
        if self._server is not None:
            await self._server.stop(grace_s)
        if self.mirror is not None and self.replica is not None and self.replica.leading():
            with contextlib.suppress(EtcdUnavailable):
                await self.mirror.flush()
        await self.mover.close()
        await self.jobs.close()
        if self.replica is not None:
            await self.replica.close()
        self.jobs.store.close()
        self.registry.close()
