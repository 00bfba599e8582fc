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
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as m
from vmgrid.agents.common.authz import refuse_unless_self
from vmgrid.agents.common.link_stream import accept_hello, refuse_beyond, relay_outbox
from vmgrid.agents.errors import InvalidArgument, MalformedMessage, VmgridError
from vmgrid.agents.identity import Role
from vmgrid.agents.jobmodel import JobError, JobStore
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.rpc_status import abort_with
from vmgrid.agents.wire_limits import MAX_CLUSTERS
from vmgrid.coordinator import codec
from vmgrid.coordinator.grid_jobs import GridJobs
from vmgrid.coordinator.mover import GridMover
from vmgrid.coordinator.moves import MoveJournal
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
        hello = await accept_hello(context, grid_codec.decode_hello, _encode_hello_error)
        if hello is None:
            return
        await refuse_unless_self(context, Role.CLUSTER, hello.cluster_id, "grid link")
        known = {record.cluster_id for record in self._coordinator.registry.records()}
        await refuse_beyond(context, known, hello.cluster_id, MAX_CLUSTERS, "cluster")
        session = self._coordinator.open_session(hello)
        try:
            await relay_outbox(context, session.outbox, self._read(session, context), self._encode)
        finally:
            self._coordinator.close_session(session)

    def _encode(self, item: m.HelloAck | m.StreamError | m.GridCommand) -> _CoordinatorMessage:
        """Commands carry this coordinator's term as it is when they are written."""
        if isinstance(item, m.HelloAck):
            return grid_codec.encode_hello_ack(item)
        if isinstance(item, m.StreamError):
            return grid_codec.encode_stream_error(item)
        return grid_codec.encode_command(item, self._coordinator.term)

    async def _read(self, session: LinkSession, context: grpc.aio.ServicerContext) -> None:
        coordinator = self._coordinator
        try:
            while (msg := await context.read()) is not grpc.aio.EOF:
                if not coordinator.is_current(session):
                    return
                kind = msg.WhichOneof("payload")
                try:
                    if kind == "summary":
                        summary = grid_codec.decode_summary(msg.summary, session.cluster_id)
                        coordinator.handle_summary(session, summary)
                    elif kind == "command_result":
                        result = grid_codec.decode_result(msg.command_result)
                        coordinator.handle_result(session, result)
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


def _encode_hello_error(error: MalformedMessage) -> _CoordinatorMessage:
    return grid_codec.encode_stream_error(m.StreamError(str(error), error.field))


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    """Operator API over the coordinator's registry, topology and planner."""

    def __init__(
        self,
        coordinator: Coordinator,
        mover: GridMover | None = None,
        jobs: GridJobs | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._mover = mover or GridMover(coordinator, MoveJournal(":memory:"))
        self._jobs = jobs or GridJobs(coordinator, JobStore(":memory:"))

    async def SubmitJob(  # noqa: N802
        self,
        request: coordinator_pb2.CoordinatorServiceSubmitJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> coordinator_pb2.CoordinatorServiceSubmitJobResponse:
        try:
            document = jobs_codec.decode_document(request.spec)
            record = await self._jobs.submit(document)
        except (VmgridError, JobError) as exc:
            await abort_with(context, _as_vmgrid(exc))
        return coordinator_pb2.CoordinatorServiceSubmitJobResponse(
            job=jobs_codec.encode_job(record)
        )

    async def GetJob(  # noqa: N802
        self,
        request: coordinator_pb2.CoordinatorServiceGetJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> coordinator_pb2.CoordinatorServiceGetJobResponse:
        try:
            record = self._jobs.get(request.job_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.CoordinatorServiceGetJobResponse(job=jobs_codec.encode_job(record))

    async def ListJobs(  # noqa: N802
        self, request: coordinator_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ListJobsResponse:
        states = [jobs_codec.job_state(s) for s in request.states]
        records = self._jobs.list(states, request.cluster_id)
        return coordinator_pb2.ListJobsResponse(jobs=[jobs_codec.encode_job(r) for r in records])

    async def ApplyGridPlan(  # noqa: N802
        self, request: coordinator_pb2.ApplyGridPlanRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ApplyGridPlanResponse:
        try:
            plan_id = self._mover.apply(request.plan_id, copy_storage=request.copy_storage)
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.ApplyGridPlanResponse(plan=self._plan(plan_id))

    async def MigrateVmToCluster(  # noqa: N802
        self,
        request: coordinator_pb2.MigrateVmToClusterRequest,
        context: grpc.aio.ServicerContext,
    ) -> coordinator_pb2.MigrateVmToClusterResponse:
        try:
            plan_id = self._mover.migrate_vm(
                request.vm_uuid,
                request.destination_cluster_id,
                bandwidth_cap_bps=request.bandwidth_cap_bps,
                command_id=request.command_id,
                copy_storage=request.copy_storage,
            )
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.MigrateVmToClusterResponse(plan=self._plan(plan_id))

    async def GetGridPlan(  # noqa: N802
        self, request: coordinator_pb2.GetGridPlanRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.GetGridPlanResponse:
        try:
            self._mover.require(request.plan_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.GetGridPlanResponse(plan=self._plan(request.plan_id))

    async def CancelGridPlan(  # noqa: N802
        self, request: coordinator_pb2.CancelGridPlanRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.CancelGridPlanResponse:
        try:
            self._mover.cancel(request.plan_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.CancelGridPlanResponse(plan=self._plan(request.plan_id))

    async def ForgetCluster(  # noqa: N802
        self, request: coordinator_pb2.ForgetClusterRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ForgetClusterResponse:
        try:
            failed = self._mover.forget_cluster(request.cluster_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return coordinator_pb2.ForgetClusterResponse(
            cluster_id=request.cluster_id, failed_move_ids=failed
        )

    def _plan(self, plan_id: str) -> coordinator_pb2.GridPlan:
        return codec.encode_applied_plan(
            plan_id, self._mover.state(plan_id), self._mover.moves(plan_id)
        )

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


def _as_vmgrid(error: Exception) -> VmgridError:
    return error if isinstance(error, VmgridError) else InvalidArgument(str(error))
