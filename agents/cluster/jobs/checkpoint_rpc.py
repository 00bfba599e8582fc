"""ClusterService checkpoint RPCs (list, take, revert, delete a job's checkpoints).

A mixin of `ClusterServicer`, kept apart so the servicer module stays short; the work is done
by `checkpoints.Checkpoints` of the manager's `FaultTolerance`.
"""

from __future__ import annotations

import grpc.aio
from vmgrid.agents.cluster.jobs.fault_tolerance import for_manager
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.errors import VmgridError
from vmgrid.agents.rpc_status import abort_with
from vmgrid.v1 import cluster_pb2


def _checkpoint(job_id: str, name: str, taken_at_s: float) -> cluster_pb2.Checkpoint:
    wire = cluster_pb2.Checkpoint(job_id=job_id, name=name)
    wire.taken_at.FromNanoseconds(int(taken_at_s * 1e9))
    return wire


class CheckpointRpcMixin:
    """Needs `self._manager`."""

    _manager: ClusterManager

    async def ListCheckpoints(  # noqa: N802
        self, request: cluster_pb2.ListCheckpointsRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.ListCheckpointsResponse:
        try:
            taken = for_manager(self._manager).checkpoints.taken(request.job_id)
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.ListCheckpointsResponse(
            checkpoints=[_checkpoint(request.job_id, n, t) for n, t in taken]
        )

    async def TakeCheckpoint(  # noqa: N802
        self, request: cluster_pb2.TakeCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.TakeCheckpointResponse:
        try:
            checkpoints = for_manager(self._manager).checkpoints
            checkpoints.jobs.get(request.job_id)
            name = await checkpoints.take(request.job_id)
            taken = dict(checkpoints.taken(request.job_id))
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.TakeCheckpointResponse(
            checkpoint=_checkpoint(request.job_id, name, taken.get(name, 0.0))
        )

    async def RevertCheckpoint(  # noqa: N802
        self, request: cluster_pb2.RevertCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.RevertCheckpointResponse:
        try:
            await for_manager(self._manager).checkpoints.revert(request.job_id, request.name)
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.RevertCheckpointResponse()

    async def DeleteCheckpoint(  # noqa: N802
        self, request: cluster_pb2.DeleteCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.DeleteCheckpointResponse:
        try:
            await for_manager(self._manager).checkpoints.delete(request.job_id, request.name)
        except VmgridError as exc:
            await abort_with(context, exc)
        return cluster_pb2.DeleteCheckpointResponse()
