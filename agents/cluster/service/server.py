"""Assemble and run the cluster manager's grpc.aio server (services, health, reflection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
import grpc.aio
from grpc_health.v1.health import aio as health_aio
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.operator.operations import OperatorApi
from vmgrid.agents.cluster.service.access import CLUSTER_ACCESS
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.rpc import ClusterServicer, NodeLinkServicer
from vmgrid.agents.common.authz import interceptors
from vmgrid.agents.common.grpc_server import (
    EXCLUSIVE_PORT,
    add_health_and_reflection,
    bind,
    mark_serving,
)
from vmgrid.agents.common.supervise import supervise
from vmgrid.agents.tls import TlsFiles
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, node_pb2, node_pb2_grpc, replica_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    node_pb2.DESCRIPTOR.services_by_name["NodeLinkService"].full_name,
    cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"].full_name,
)


class ClusterServer:
    """A running manager: ``await start()``, then ``address``; ``await stop()`` to end."""

    def __init__(self, config: ClusterConfig, manager: ClusterManager | None = None) -> None:
        self.config = config
        self.manager = manager or ClusterManager(config)
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.health = health_aio.HealthServicer()
        self.interceptors: list[grpc.aio.ServerInterceptor] = []
        """Run after the role check (the standby replica's refusal); set before start()."""
        self.operator: OperatorApi | None = None
        """Operator actions; set by ClusterRuntime (a bare server answers them UNIMPLEMENTED)."""
        self.view: replica_pb2_grpc.ReplicaServiceServicer | None = None
        """The leader's view of the nodes for its standbys; set by a replicated ClusterRuntime."""

    async def start(self) -> str:
        """Bind, serve and start the heartbeat watchdog; returns the bound host:port."""
        server = grpc.aio.server(
            interceptors=[
                *interceptors(
                    CLUSTER_ACCESS, "cluster manager", self.config.insecure, self.config.tls_ca_file
                ),
                *self.interceptors,
            ],
            options=[
                ("grpc.keepalive_time_ms", 30000),
                ("grpc.max_concurrent_streams", 100000),
                EXCLUSIVE_PORT,
            ],
        )
        node_pb2_grpc.add_NodeLinkServiceServicer_to_server(NodeLinkServicer(self.manager), server)
        cluster_pb2_grpc.add_ClusterServiceServicer_to_server(
            ClusterServicer(self.manager, self.operator), server
        )
        if self.view is not None:
            replica_pb2_grpc.add_ReplicaServiceServicer_to_server(self.view, server)
        add_health_and_reflection(server, self.health, SERVICE_NAMES)
        config = self.config
        tls = TlsFiles(config.tls_ca_file, config.tls_cert_file, config.tls_key_file)
        address = bind(server, config.listen, config.insecure, tls)
        await server.start()
        self._server = server
        self.address = address
        await mark_serving(self.health, SERVICE_NAMES)
        self._watchdog = supervise(self.manager.watch_heartbeats, "heartbeat watchdog")
        if self.config.ready_file:
            Path(self.config.ready_file).write_text(self.address + "\n")
        log.info("cluster %s serving on %s", self.config.cluster_id, self.address)
        return self.address

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving (NOT_SERVING first, so health checkers see it)."""
        await self.health.enter_graceful_shutdown()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._server is not None:
            await self._server.stop(grace_s)

    async def wait(self) -> None:
        """Block until the server terminates."""
        if self._server is not None:
            await self._server.wait_for_termination()
