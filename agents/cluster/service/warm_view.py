"""The standbys' warm view of the nodes: the leader streams its view, standbys follow it.

Agents stream to the leader only. A standby dials the leader (``ReplicaService.FollowView``)
and applies what it is sent to its own cluster state, as if from agents: every node with its
hello and last report, its maintenance flag, and whether the leader lost it or powered it off.
The leader sends its whole view first, then every ``view_period_s`` the nodes whose VMs, VM
states or flags changed (found from the rows metrics read, without building a VM's object;
every node again each ``REFRESH_ROUNDS`` periods, for the usage) and the ids of the other
nodes it hears from. The leader's report ingestion is not touched (the
view is read from its state at that low rate, and only while a standby follows), so a single
manager, or a leader with no standby, does exactly what it did.

A node known only from the leader's view has the connection id ``NO_STREAM``: no agent
stream. A standby never acts on its view (it starts no action and sends no command). Once it
leads, the view is what it decides from at once; a command to such a node waits for the
node's agent to connect (``ClusterManager.send_command``), and the agents' own reports replace
the view as they reconnect. Interrupted plans are resumed only from the agents' reports.

While the leader is gone (its stream broke), the standby keeps the nodes it was told alive
for ``HOLD_LEASES`` lease TTLs, the time an election takes: the new leader starts with every
node connected and a full heartbeat timeout for its agent to reach it. A node whose agent does
not is lost to the new leader as to any manager.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from vmgrid.agents.cluster.link.manager import NO_STREAM, ClusterManager
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.common.authz import peer_identity
from vmgrid.agents.common.node_codec import (
    decode_hello,
    decode_report,
    encode_hello,
    encode_report,
)
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.identity import Role
from vmgrid.agents.model import NodeHello, NodeReport, VmPressure
from vmgrid.agents.tls import server_role_options
from vmgrid.v1 import replica_pb2, replica_pb2_grpc

if TYPE_CHECKING:
    from vmgrid.agents.cluster.service.replica import Replica
    from vmgrid.agents.cluster.state.nodes import NodeLoad, NodeView
    from vmgrid.agents.cluster.state.state import ClusterState

log = logging.getLogger(__name__)

REFRESH_ROUNDS = 5
"""Every node is sent again this often (in periods), its usage with it; in between only the
nodes whose placement, VM states or flags changed are."""
HOLD_LEASES = 2
"""Lease TTLs a standby keeps its nodes alive after the leader's stream broke."""
RETRY_S = 0.5
"""Pause before a standby dials the leader again."""


def _fingerprint(state: ClusterState, load: NodeLoad) -> tuple[Any, ...]:
    """What makes a node worth sending again before its refresh round: its status, flag,
    capacity and its VMs' states (a VM that moves changes two nodes' lists), read without
    building its VMs' objects."""
    return (load.status, state.is_draining(load.node_id), load.capacity, load.vm_states)


def encode_node(view: NodeView) -> replica_pb2.WarmNode:
    hello = NodeHello(view.identity, view.capacity)
    node = replica_pb2.WarmNode(
        hello=encode_hello(hello),
        draining=view.draining,
        lost=view.status is NodeStatus.LOST,
        powered_off=view.status is NodeStatus.POWERED_OFF,
    )
    if view.usage is not None:
        pressure = tuple(VmPressure(uuid, p) for uuid, p in view.vm_pressure.items())
        report = NodeReport(view.last_seen_unix_ns, view.last_sequence, view.usage,
                            tuple(view.vms), pressure)  # fmt: skip
        node.report.CopyFrom(encode_report(report))
    return node


class ViewServicer(replica_pb2_grpc.ReplicaServiceServicer):
    """The leader's side: one stream per following standby (a standby's own server refuses
    the call, like every other, naming the leader)."""

    def __init__(self, manager: ClusterManager, period_s: float) -> None:
        self._manager = manager
        self._period_s = period_s

    def changes(
        self, sent: dict[str, tuple[Any, ...]], everything: bool
    ) -> replica_pb2.FollowViewResponse:
        """The nodes changed since `sent` (every node with `everything`), updating `sent`."""
        message = replica_pb2.FollowViewResponse(term=self._manager.term)
        state = self._manager.state
        loads = state.loads()
        for load in loads:
            mark = _fingerprint(state, load)
            if everything or sent.get(load.node_id) != mark:
                message.nodes.append(encode_node(state.view(load.node_id)))
                sent[load.node_id] = mark
            elif load.status is NodeStatus.CONNECTED:
                message.alive.append(load.node_id)
        for gone in sent.keys() - {load.node_id for load in loads}:
            del sent[gone]
        return message

    async def FollowView(
        self, request: replica_pb2.FollowViewRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[replica_pb2.FollowViewResponse]:
        holder = peer_identity(context)  # None on a plaintext server (loopback tests)
        cluster_id = self._manager.config.cluster_id
        if holder is not None and holder.name != cluster_id:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{holder.uri()} is not a manager of cluster {cluster_id!r}: it may not follow "
                "this cluster's view",
            )
        log.info("standby %s follows this leader's view of the nodes", request.replica_id)
        sent: dict[str, tuple[Any, ...]] = {}
        rounds = 0
        while self._manager.leading():
            yield self.changes(sent, rounds % REFRESH_ROUNDS == 0)
            rounds += 1
            await asyncio.sleep(self._period_s)


class ViewFollower:
    """A standby's side: ``await run()`` until cancelled (when this replica leads)."""

    def __init__(
        self,
        replica: Replica,
        manager: ClusterManager,
        credentials: grpc.ChannelCredentials | None,
        lease_ttl_s: float,
    ) -> None:
        self._replica = replica
        self._manager = manager
        self._credentials = credentials
        self._hold_s = HOLD_LEASES * lease_ttl_s
        self.alive: set[str] = set()
        """Nodes the leader last said it hears from."""
        self.messages = 0
        self.followed_at = 0.0
        """When the last message came (monotonic seconds; 0: none yet)."""

    async def run(self) -> None:
        replica = self._replica
        while True:
            leader = replica.leader_address
            if leader and leader != replica.address and not replica.etcd_silent_s():
                try:
                    await self._follow(leader)
                except grpc.aio.AioRpcError as exc:
                    log.debug("view of %s: %s", leader, exc.details())
                except MalformedMessage as exc:
                    log.warning("view of %s unreadable (%s); dialling again", leader, exc)
            await self._hold()

    async def _follow(self, leader: str) -> None:
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(leader)
        else:
            # The leader must present a cluster manager's certificate (as agents require).
            options = server_role_options(Role.CLUSTER)
            channel = grpc.aio.secure_channel(leader, self._credentials, options)
        async with channel:
            stub = replica_pb2_grpc.ReplicaServiceStub(channel)
            request = replica_pb2.FollowViewRequest(replica_id=self._replica.replica_id)
            async for message in stub.FollowView(request):
                self.apply(message)

    async def _hold(self) -> None:
        """Keep the nodes last said alive until the hold ends (the leader's stream is gone),
        then pause before dialling again."""
        deadline = self.followed_at + self._hold_s
        self.touch_alive(deadline)
        await asyncio.sleep(RETRY_S)

    def touch_alive(self, until: float = float("inf")) -> None:
        """Record life from the nodes the leader last heard from (before `until`)."""
        if time.monotonic() > until:
            return
        state = self._manager.state
        for node_id in self.alive:
            if state.is_current(node_id, NO_STREAM) and (
                state.node_status(node_id) is NodeStatus.CONNECTED
            ):
                state.touch(node_id)  # known from the view only, never an agent's node

    def apply(self, message: replica_pb2.FollowViewResponse) -> None:
        """Put the leader's view of each node sent into this replica's state."""
        state = self._manager.state
        known = set(state.node_ids())
        for node in message.nodes:
            hello = decode_hello(node.hello)
            node_id = hello.identity.node_id
            if self._manager.has_stream(node_id):
                continue  # its agent streams to this replica: the agent knows best
            if node.powered_off:
                self.alive.discard(node_id)
                if node_id in known:
                    state.mark_powered_off(node_id)
                else:
                    state.restore_powered_off(hello, node.draining)
                continue
            if node.lost:
                self.alive.discard(node_id)  # this replica's own watchdog loses it too
                continue
            if not node.HasField("report"):
                continue  # connected, no report yet
            state.node_connected(hello, NO_STREAM)
            state.apply_report(node_id, decode_report(node.report))
            if state.is_draining(node_id) != node.draining:
                state.set_draining(node_id, node.draining)
            self.alive.add(node_id)
        self.alive |= set(message.alive)
        self.followed_at = time.monotonic()
        self.messages += 1
        self.touch_alive()
