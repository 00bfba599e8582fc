"""gRPC servicers of the coordinator: GridLinkService (cluster streams) and CoordinatorService.

With the codec, the only coordinator modules that touch generated code. Every cluster message
is validated by the codec; a bad one is answered with a GridStreamError naming the field and
the stream (and the coordinator) keep going.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import grpc.aio
from vmgrid.agents.errors import MalformedMessage, VmgridError
from vmgrid.agents.rpc_status import abort_with
from vmgrid.coordinator import codec
from vmgrid.coordinator import model as m
from vmgrid.coordinator.service import Coordinator, LinkSession
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc, grid_pb2, grid_pb2_grpc

log = logging.getLogger(__name__)

_ClusterMessage = grid_pb2.GridLinkServiceConnectRequest
_CoordinatorMessage = grid_pb2.GridLinkServiceConnectResponse


class GridLinkServicer(grid_pb2_grpc.GridLinkServiceServicer):
    """Accepts cluster manager streams: hello first, then summaries and command results."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def Connect(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[_ClusterMessage], context: grpc.aio.ServicerContext
    ) -> None:
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        kind = first.WhichOneof("payload")
        try:
            if kind != "hello":
                raise MalformedMessage(
                    "payload", f"first message is {kind or 'empty'}; it must be a hello"
                )
            hello = codec.decode_hello(first.hello)
        except MalformedMessage as exc:
            await context.write(codec.encode_stream_error(m.StreamError(str(exc), exc.field)))
            await abort_with(context, exc)
        session = self._coordinator.open_session(hello)
        reader = asyncio.create_task(self._read(session, context))
        reader.add_done_callback(lambda _: session.outbox.put_nowait(None))
        try:
            while (item := await session.outbox.get()) is not None:
                if isinstance(item, m.HelloAck):
                    await context.write(codec.encode_hello_ack(item))
                else:
                    await context.write(codec.encode_stream_error(item))
        finally:
            reader.cancel()
            self._coordinator.close_session(session)

    async def _read(self, session: LinkSession, context: grpc.aio.ServicerContext) -> None:
        coordinator = self._coordinator
        try:
            while (msg := await context.read()) is not grpc.aio.EOF:
                if not coordinator.is_current(session):
                    return
                kind = msg.WhichOneof("payload")
                try:
                    if kind == "summary":
                        summary = codec.decode_summary(msg.summary, session.cluster_id)
                        coordinator.handle_summary(session, summary)
                    elif kind == "command_result":
                        log.info(
                            "cluster %s: result of %s (no grid commands are sent yet)",
                            session.cluster_id,
                            msg.command_result.command_id,
                        )
                    else:
                        raise MalformedMessage(
                            "payload",
                            f"{kind or 'empty'} message after hello; accepted: summary, "
                            "command_result",
                        )
                except MalformedMessage as exc:
                    coordinator.reject(session, exc)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        except Exception:  # a stream must never take the coordinator down
            log.exception("cluster %s: stream reader failed", session.cluster_id)


_LATER = {
    "ApplyGridPlan": "executing grid plans arrives with the cross-cluster move protocol",
    "MigrateVmToCluster": "cross-cluster migration arrives with the move protocol",
    "SubmitJob": "grid job submission arrives with the jobs feature",
    "GetJob": "grid job submission arrives with the jobs feature",
    "ListJobs": "grid job submission arrives with the jobs feature",
}


def _unimplemented(name: str, reason: str) -> object:
    async def method(self: object, request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"CoordinatorService.{name} is not implemented yet: {reason}",
        )

    method.__name__ = name
    return method


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    """Operator API over the coordinator's registry, topology and planner."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def ListClusters(  # noqa: N802
        self, request: coordinator_pb2.ListClustersRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ListClustersResponse:
        records = self._coordinator.registry.records()
        return coordinator_pb2.ListClustersResponse(
            clusters=[codec.encode_cluster_info(r) for r in records]
        )

    async def GetTopology(  # noqa: N802
        self, request: coordinator_pb2.GetTopologyRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.GetTopologyResponse:
        try:
            topology = self._coordinator.current_topology()
        except VmgridError as exc:
            await abort_with(context, exc)
        records = {r.cluster_id: r for r in self._coordinator.registry.records()}
        return coordinator_pb2.GetTopologyResponse(
            topology=codec.encode_topology(topology, records)
        )

    async def PlanGrid(  # noqa: N802
        self, request: coordinator_pb2.PlanGridRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.PlanGridResponse:
        try:
            dry_run = await self._coordinator.plan()
        except VmgridError as exc:
            await abort_with(context, exc)
        plan = codec.encode_plan(dry_run.plan_id, dry_run.plan, dry_run.created_unix_ns)
        if dry_run.notes:
            plan.summary += "\n" + "\n".join(dry_run.notes)
        return coordinator_pb2.PlanGridResponse(plan=plan)

    async def WatchEvents(  # noqa: N802
        self,
        request: coordinator_pb2.CoordinatorServiceWatchEventsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[coordinator_pb2.CoordinatorServiceWatchEventsResponse]:
        try:
            kinds = {codec.event_kind_from_wire(k) for k in request.kinds}
        except VmgridError as exc:
            await abort_with(context, exc)
        cluster_id = request.cluster_id

        def accept(event: m.GridEvent) -> bool:
            return (not kinds or event.kind in kinds) and (
                not cluster_id or event.cluster_id == cluster_id
            )

        subscription = self._coordinator.bus.subscribe(accept)
        try:
            while True:
                event = await subscription.get()
                yield coordinator_pb2.CoordinatorServiceWatchEventsResponse(
                    event=codec.encode_event(event)
                )
        finally:
            subscription.close()


for _name, _reason in _LATER.items():
    setattr(CoordinatorServicer, _name, _unimplemented(_name, _reason))
