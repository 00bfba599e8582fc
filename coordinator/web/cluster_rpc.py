"""The coordinator dashboard's calls to each cluster manager's ClusterService.

The coordinator only holds cluster summaries, so the grid dashboard asks every connected
cluster for its nodes and VMs, and forwards VM and node actions to the cluster that owns
them, at the endpoint the cluster gave in its hello, with the coordinator's own client
certificate (its certificate is issued for client and server use). This is the web area's only
module that imports ``*_pb2``; wire values become the same JSON the cluster dashboard serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from typing import Any

import grpc
import grpc.aio
from vmgrid.agents.cluster.operator.codec import policy_changes, policy_to_json
from vmgrid.agents.common.node_codec import decode_command_result, vm_state_from_wire
from vmgrid.agents.errors import NotFound, VmgridError
from vmgrid.agents.identity import Role
from vmgrid.agents.rpc_status import from_rpc_error
from vmgrid.agents.tls import server_role_options
from vmgrid.coordinator.web.cluster_json import capacity_json, pressure_json, usage_json
from vmgrid.coordinator.web.errors import not_found
from vmgrid.coordinator.web.history_json import history_json
from vmgrid.v1 import cluster_pb2 as pb
from vmgrid.v1 import cluster_pb2_grpc, common_pb2

Json = dict[str, Any]
READ_TIMEOUT_S = 5.0
ACTION_TIMEOUT_S = 90.0
_NODE_STATUS = {
    pb.NODE_STATUS_CONNECTED: "connected",
    pb.NODE_STATUS_LOST: "lost",
    pb.NODE_STATUS_POWERED_OFF: "powered_off",
}


class ClusterCalls:
    """One channel per cluster endpoint, reused across requests; ``close()`` ends them."""

    def __init__(self, credentials: grpc.ChannelCredentials | None) -> None:
        self.credentials = credentials
        """mTLS client credentials; None dials in plaintext (loopback demos and tests)."""
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, endpoint: str) -> cluster_pb2_grpc.ClusterServiceStub:
        channel = self._channels.get(endpoint)
        if channel is None:
            if self.credentials is None:
                channel = grpc.aio.insecure_channel(endpoint)
            else:
                options = server_role_options(Role.CLUSTER)
                channel = grpc.aio.secure_channel(endpoint, self.credentials, options)
            self._channels[endpoint] = channel
        return cluster_pb2_grpc.ClusterServiceStub(channel)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _call(self, endpoint: str, method: str, request: Any, timeout_s: float) -> Any:
        """Call ``method``; a gRPC failure becomes a VmgridError (NotFound -> HTTP 404)."""
        try:
            return await getattr(self._stub(endpoint), method)(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            error: VmgridError = from_rpc_error(exc)
            if isinstance(error, NotFound):
                raise not_found(str(error), "id") from None
            raise error from None

    # ---- reads ---------------------------------------------------------------------------

    async def inventory(self, cluster_id: str, endpoint: str) -> tuple[list[Json], list[Json]]:
        """(nodes, VMs) of one cluster as dashboard JSON, read concurrently."""
        nodes_reply, vms_reply = await asyncio.gather(
            self._call(endpoint, "ListNodes", pb.ListNodesRequest(), READ_TIMEOUT_S),
            self._call(endpoint, "ListVms", pb.ListVmsRequest(), READ_TIMEOUT_S),
        )
        vms = [_vm_json(info, cluster_id) for info in vms_reply.vms]
        on_node: dict[str, list[str]] = {}
        for vm in vms:
            on_node.setdefault(vm["node"], []).append(vm["uuid"])
        nodes = [
            _node_json(info, cluster_id, sorted(on_node.get(info.node_id, [])))
            for info in nodes_reply.nodes
        ]
        return nodes, vms

    async def history(self, endpoint: str, node: str, vm: str, minutes: int) -> Json:
        """One node's or VM's usage history (GetHistory) as the cluster dashboard's JSON."""
        request = pb.GetHistoryRequest(node_id=node, vm_uuid=vm, minutes=minutes)
        reply = await self._call(endpoint, "GetHistory", request, READ_TIMEOUT_S)
        return history_json(
            "node" if node else "vm",
            node or vm,
            minutes,
            reply.bucket_s,
            reply.buckets,
            list(reply.times_unix_ms),
            {s.name: [None if math.isnan(v) else v for v in s.values] for s in reply.series},
        )

    async def plans(self, cluster_id: str, endpoint: str, limit: int) -> list[Json]:
        """Waiting and recent plans of one cluster (ListPlans) as timeline JSON; the wire
        gives no progress of a running action, so it counts 0 until the action ends."""
        request = pb.ListPlansRequest(limit=limit)
        reply = await self._call(endpoint, "ListPlans", request, READ_TIMEOUT_S)
        return [_plan_json(plan, cluster_id) for plan in reply.plans]

    # ---- actions -------------------------------------------------------------------------

    async def migrate(self, endpoint: str, vm_uuid: str, destination: str) -> Json:
        request = pb.MigrateVmRequest(
            vm_uuid=vm_uuid, destination_node_id=destination, live=True, command_id=_cid("migrate")
        )
        reply = await self._call(endpoint, "MigrateVm", request, ACTION_TIMEOUT_S)
        return {"plan": reply.plan.plan_id, "vm": vm_uuid, "destination": destination}

    async def suspend(self, endpoint: str, vm_uuid: str) -> Json:
        request = pb.SuspendVmRequest(vm_uuid=vm_uuid, command_id=_cid("suspend"))
        return _result(await self._call(endpoint, "SuspendVm", request, ACTION_TIMEOUT_S))

    async def resume(self, endpoint: str, vm_uuid: str) -> Json:
        request = pb.ResumeVmRequest(vm_uuid=vm_uuid, command_id=_cid("resume"))
        return _result(await self._call(endpoint, "ResumeVm", request, ACTION_TIMEOUT_S))

    async def snapshot(self, endpoint: str, vm_uuid: str, name: str) -> Json:
        request = pb.CreateSnapshotRequest(
            vm_uuid=vm_uuid,
            snapshot_name=name,
            description="from the grid dashboard",
            command_id=_cid("snapshot"),
        )
        return _result(await self._call(endpoint, "CreateSnapshot", request, ACTION_TIMEOUT_S))

    async def drain(self, endpoint: str, node_id: str, draining: bool) -> Json:
        if draining:
            request: Any = pb.DrainNodeRequest(node_id=node_id)
            reply = await self._call(endpoint, "DrainNode", request, ACTION_TIMEOUT_S)
        else:
            request = pb.UndrainNodeRequest(node_id=node_id)
            reply = await self._call(endpoint, "UndrainNode", request, ACTION_TIMEOUT_S)
        return {"node": node_id, "draining": reply.node.draining}

    async def policy(self, endpoint: str) -> Json:
        reply = await self._call(endpoint, "GetPolicy", pb.GetPolicyRequest(), READ_TIMEOUT_S)
        return policy_to_json(reply.policy)

    async def set_policy(self, endpoint: str, values: dict[str, object]) -> Json:
        request = pb.SetPolicyRequest(values=policy_changes(values))
        reply = await self._call(endpoint, "SetPolicy", request, READ_TIMEOUT_S)
        return policy_to_json(reply.policy)


def _cid(verb: str) -> str:
    return f"grid-web-{verb}-{uuid.uuid4().hex[:12]}"


def _result(reply: Any) -> Json:
    result = decode_command_result(reply.result)
    return {
        "state": result.state.value,
        "message": result.message,
        "simulated": result.simulated,
    }


_FINAL = {"succeeded", "failed", "cancelled", "rejected"}


def _plan_json(plan: Any, cluster_id: str) -> Json:
    actions = []
    for a in plan.actions:
        state = common_pb2.PlanState.Name(a.state).removeprefix("PLAN_STATE_").lower()
        kind = common_pb2.PlanActionKind.Name(a.kind).removeprefix("PLAN_ACTION_KIND_").lower()
        subject = a.vm_uuid or a.source_node_id
        actions.append(
            {
                "id": int(a.action_id) if a.action_id.isdigit() else a.action_id,
                "kind": kind,
                "subject": subject,
                "name": subject,
                "src": a.source_node_id or None,
                "dst": a.destination_node_id or None,
                "state": "planned" if state == "unspecified" else state,
                "progress": 1.0 if state in _FINAL else 0.0,
                "reason": a.reason,
                "message": "",
                "simulated": a.simulated,
                "description": f"{kind} {subject} {a.source_node_id or '-'} -> "
                f"{a.destination_node_id or '-'}: {a.reason}",
            }
        )
    done = sum(a["progress"] for a in actions) / len(actions) if actions else 1.0
    return {
        "id": plan.plan_id,
        "cluster": cluster_id,
        "status": common_pb2.PlanState.Name(plan.state).removeprefix("PLAN_STATE_").lower(),
        "summary": plan.summary,
        "created_unix_ms": plan.created_at.ToMilliseconds(),
        "progress": round(done, 3),
        "actions": actions,
    }


def _node_json(info: pb.NodeInfo, cluster_id: str, vm_uuids: list[str]) -> Json:
    usage = info.usage if info.HasField("usage") else None
    return {
        "id": info.node_id,
        "cluster": cluster_id,
        "hostname": info.hostname,
        "status": _NODE_STATUS.get(info.status, "unknown"),
        "draining": info.draining,
        "degraded_reason": info.degraded_reason,
        "simulated": info.simulated,
        "capacity": capacity_json(info.capacity),
        "usage": None if usage is None else usage_json(usage),
        "vms": vm_uuids,
        "last_seen_unix_ms": info.last_seen.ToMilliseconds() if info.HasField("last_seen") else 0,
    }


def _vm_json(info: pb.VmInfo, cluster_id: str) -> Json:
    vm = info.usage
    return {
        "uuid": vm.uuid,
        "name": vm.name,
        "cluster": cluster_id,
        "node": info.node_id,
        "state": vm_state_from_wire(vm.state).value,
        "vcpus": vm.vcpus,
        "cpu_used_millicores": vm.cpu_used_millicores,
        "memory_used_bytes": vm.memory_used_bytes,
        "memory_allocated_bytes": vm.memory_allocated_bytes,
        "net_rx_bytes_per_second": vm.net_rx_bytes_per_second,
        "net_tx_bytes_per_second": vm.net_tx_bytes_per_second,
        "simulated": vm.simulated,
        "migration": None,
        "pressure": pressure_json(info.pressure if info.HasField("pressure") else None),
    }
