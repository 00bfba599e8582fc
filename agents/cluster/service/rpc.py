"""gRPC servicers of the cluster manager: NodeLinkService and ClusterService.

The only cluster module that touches generated code besides the codec. Every agent message is
validated by the codec; a bad one is answered with a StreamError on the stream and counted,
and the manager's state is left untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import grpc.aio
from vmgrid.agents.cluster.jobs.checkpoint_rpc import CheckpointRpcMixin
from vmgrid.agents.cluster.jobs.fault_tolerance import for_manager
from vmgrid.agents.cluster.link.manager import ClusterManager, NodeSession
from vmgrid.agents.cluster.operator import codec as view_codec
from vmgrid.agents.cluster.operator.operations import OperatorApi
from vmgrid.agents.cluster.operator.rpc import OperatorRpcMixin
from vmgrid.agents.cluster.state.events import ClusterEvent
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.authz import refuse_unless_self
from vmgrid.agents.common.link_stream import accept_hello, refuse_beyond, relay_outbox
from vmgrid.agents.errors import InvalidArgument, MalformedMessage, VmgridError
from vmgrid.agents.identity import Role
from vmgrid.agents.jobmodel import JobError
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.model import HelloAck, StreamError
from vmgrid.agents.rpc_status import abort_with
from vmgrid.agents.wire_limits import MAX_NODES
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, node_pb2, node_pb2_grpc

log = logging.getLogger(__name__)

_AgentMessage = node_pb2.NodeLinkServiceConnectRequest
_ManagerMessage = node_pb2.NodeLinkServiceConnectResponse


class NodeLinkServicer(node_pb2_grpc.NodeLinkServiceServicer):
    """Accepts agent streams: hello first, then reports, heartbeats, events and results."""

    def __init__(self, manager: ClusterManager) -> None:
        self._manager = manager

    async def Connect(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[_AgentMessage], context: grpc.aio.ServicerContext
    ) -> None:
        hello = await accept_hello(context, codec.decode_hello, _encode_hello_error)
        if hello is None:
            return
        await refuse_unless_self(context, Role.NODE, hello.identity.node_id, "node link")
        known = self._manager.state.known_ids()
        await refuse_beyond(context, known, hello.identity.node_id, MAX_NODES, "node")
        session = self._manager.open_session(hello)
        try:
            await relay_outbox(context, session.outbox, self._read(session, context), self._encode)
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            self._manager.close_session(session)

    def _encode(self, item: object) -> _ManagerMessage:
        if isinstance(item, HelloAck):
            return codec.encode_hello_ack(item)
        if isinstance(item, StreamError):
            return codec.encode_stream_error(item)
        return codec.encode_command_message(item, self._manager.term)  # type: ignore[arg-type]

    async def _read(self, session: NodeSession, context: grpc.aio.ServicerContext) -> None:
        manager = self._manager
        decode_report = codec.ReportDecoder().decode  # the stream's own: it keeps its VM list
        try:
            while (msg := await context.read()) is not grpc.aio.EOF:
                kind = msg.WhichOneof("payload")
                try:
                    if kind == "report":
                        manager.handle_report(session, decode_report(msg.report))
                    elif kind == "heartbeat":
                        manager.handle_heartbeat(session, codec.decode_heartbeat(msg.heartbeat))
                    elif kind == "lifecycle":
                        manager.handle_lifecycle(session, codec.decode_lifecycle(msg.lifecycle))
                    elif kind == "command_result":
                        manager.handle_result(
                            session, codec.decode_command_result(msg.command_result)
                        )
                    else:
                        raise MalformedMessage(
                            "payload",
                            f"{kind or 'empty'} message after hello; accepted: report, "
                            "heartbeat, lifecycle, command_result",
                        )
                except MalformedMessage as exc:
                    sequence = msg.report.sequence if kind == "report" else 0
                    log.warning("node %s: rejected message: %s", session.node_id, exc)
                    manager.reject(session, exc, sequence)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        except Exception:  # a stream must never take the manager down
            log.exception("node %s: stream reader failed", session.node_id)


def _encode_hello_error(error: MalformedMessage) -> _ManagerMessage:
    return codec.encode_stream_error(StreamError(str(error), error.field))


_LATER: dict[str, str] = {}


def _unimplemented(name: str, reason: str) -> object:
    async def method(self: object, request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"ClusterService.{name} is not implemented yet: {reason}"
        )

    method.__name__ = name
    return method


class ClusterServicer(
    OperatorRpcMixin, CheckpointRpcMixin, cluster_pb2_grpc.ClusterServiceServicer
):
    """Operator queries over the manager's state, and (mixin) the operator's actions."""

    def __init__(self, manager: ClusterManager, operator: OperatorApi | None = None) -> None:
        self._manager = manager
        self._operator = operator

    async def ListNodes(  # noqa: N802
        self, request: cluster_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ListNodesResponse:
        views = self._manager.state.views()
        return cluster_pb2.ListNodesResponse(nodes=[view_codec.encode_node_info(v) for v in views])

    async def GetNode(  # noqa: N802
        self, request: cluster_pb2.GetNodeRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.GetNodeResponse:
        try:
            view = self._manager.state.view(request.node_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.GetNodeResponse(
            node=view_codec.encode_node_info(view),
            vms=[
                view_codec.encode_vm_info(
                    view.node_id, vm, view.last_seen_unix_ns, view.vm_pressure.get(vm.uuid)
                )
                for vm in view.vms
            ],
        )

    async def ListVms(  # noqa: N802
        self, request: cluster_pb2.ListVmsRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ListVmsResponse:
        try:
            states = {codec.vm_state_from_wire(s) for s in request.states}
            views = (
                [self._manager.state.view(request.node_id)]
                if request.node_id
                else self._manager.state.views()
            )
        except VmgridError as exc:
            await abort_with(context, exc)
        vms = [
            view_codec.encode_vm_info(
                view.node_id, vm, view.last_seen_unix_ns, view.vm_pressure.get(vm.uuid)
            )
            for view in views
            for vm in view.vms
            if (not states or vm.state in states) and vm.name.startswith(request.name_prefix)
        ]
        return cluster_pb2.ListVmsResponse(vms=vms)

    async def WatchEvents(  # noqa: N802
        self, request: cluster_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[cluster_pb2.WatchEventsResponse]:
        try:
            kinds = {view_codec.event_kind_from_wire(k) for k in request.kinds}
        except InvalidArgument as exc:
            await abort_with(context, exc)
        node_id = request.node_id

        def accept(event: ClusterEvent) -> bool:
            return (not kinds or event.kind in kinds) and (not node_id or event.node_id == node_id)

        subscription = self._manager.bus.subscribe(accept)
        try:
            # Initial metadata tells the watcher it is subscribed: later events are not missed.
            await context.send_initial_metadata(())
            while True:
                event = await subscription.get()
                yield cluster_pb2.WatchEventsResponse(
                    event=view_codec.encode_event(event),
                    plan_progress_fraction=event.plan_progress_fraction,
                    plan_state=view_codec.plan_status_to_wire(event.plan_state),
                )
        finally:
            subscription.close()

    async def SubmitJob(  # noqa: N802
        self, request: cluster_pb2.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.SubmitJobResponse:
        try:
            jobs = for_manager(self._manager).jobs
            record = await jobs.submit(jobs_codec.decode_document(request.spec))
        except (VmgridError, JobError) as exc:
            await abort_with(context, _as_vmgrid(exc))
        return cluster_pb2.SubmitJobResponse(job=jobs_codec.encode_job(record))

    async def GetJob(  # noqa: N802
        self, request: cluster_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.GetJobResponse:
        try:
            record = for_manager(self._manager).jobs.get(request.job_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.GetJobResponse(job=jobs_codec.encode_job(record))

    async def GetIngestStats(  # noqa: N802
        self, request: cluster_pb2.GetIngestStatsRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.GetIngestStatsResponse:
        state = self._manager.state
        connected = sum(1 for n in state.node_ids() if state.node_status(n) is NodeStatus.CONNECTED)
        stats = self._manager.ingest.read(reset=request.reset)
        return view_codec.encode_ingest_stats(stats, connected)


def _as_vmgrid(error: Exception) -> VmgridError:
    return error if isinstance(error, VmgridError) else InvalidArgument(str(error))


for _name, _reason in _LATER.items():
    setattr(ClusterServicer, _name, _unimplemented(_name, _reason))
