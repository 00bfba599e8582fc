"""The dashboard's backend for the grid coordinator: clusters, topology, dry-run grid plans.

Nodes and VMs are read from every connected cluster's ClusterService (ListNodes, ListVms) at
the endpoint of its hello, with the coordinator's client certificate; a cluster that does not
answer shows its summary's movable VMs instead and no nodes. VM and node actions are forwarded
to the cluster that holds the VM or node (``cluster_rpc.ClusterCalls``). Jobs are the grid's
(``GridJobs``, given by whoever owns the CoordinatorServer). Plans waiting for
approval live in each cluster manager, so approving one is done on that manager's dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.rules.validate import RuleRequest
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, VmgridError
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.coordinator.grid_jobs import GridJobs
from vmgrid.coordinator.mover import GridMover
from vmgrid.coordinator.service import Coordinator
from vmgrid.coordinator.web.backend import VmFilter
from vmgrid.coordinator.web.cluster_rpc import ClusterCalls
from vmgrid.coordinator.web.errors import ApiError, bad_request, conflict, not_found
from vmgrid.coordinator.web.feed import EventFeed
from vmgrid.coordinator.web.jobs_json import jobs_json, one_job
from vmgrid.coordinator.web.traffic_json import grid_traffic_json

log = logging.getLogger(__name__)
Json = dict[str, Any]
NO_APPROVAL = "plans waiting for approval are held by each cluster manager; use its dashboard"
NO_INSIGHT = (
    "explanations and the N+1 view are a cluster manager's: use its dashboard, its HTTP API or "
    "'vmgridctl explain VM --cluster HOST:PORT' / 'vmgridctl capacity n-plus-one --cluster "
    "HOST:PORT'"
)
NO_RULES = (
    "placement rules are held by each cluster manager; use its dashboard, its HTTP API or "
    "'vmgridctl rules --cluster HOST:PORT'"
)


class CoordinatorBackend:
    """Reads a Coordinator service; call ``start()`` inside its event loop."""

    kind = "coordinator"

    def __init__(
        self,
        coordinator: Coordinator,
        credentials: grpc.ChannelCredentials | None = None,
        jobs: GridJobs | None = None,
        mover: GridMover | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.grid_jobs = jobs
        self.mover = mover
        self.feed = EventFeed()
        self.calls = ClusterCalls(credentials or _client_credentials(coordinator))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._relay())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.calls.close()

    async def _relay(self) -> None:
        sub = self.coordinator.bus.subscribe()
        try:
            while True:
                event = await sub.get()
                self.feed.publish(
                    {
                        "kind": event.kind.value,
                        "cluster": event.cluster_id,
                        "message": event.message,
                        "plan": event.plan_id,
                    }
                )
        finally:
            sub.close()

    async def _inventories(self) -> dict[str, tuple[list[Json], list[Json]]]:
        """cluster id -> (nodes, VMs) of every connected cluster that answers."""
        records = [
            r
            for r in self.coordinator.registry.records()
            if r.state is m.ClusterState.CONNECTED and r.hello.endpoint
        ]
        replies = await asyncio.gather(
            *(self.calls.inventory(r.cluster_id, r.hello.endpoint) for r in records),
            return_exceptions=True,
        )
        found = {}
        for record, reply in zip(records, replies, strict=True):
            if isinstance(reply, VmgridError | ApiError):
                log.warning("cluster %s at %s: %s", record.cluster_id, record.hello.endpoint, reply)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                found[record.cluster_id] = reply
        return found

    async def nodes(self) -> list[Json]:
        inventories = await self._inventories()
        return [node for cid in sorted(inventories) for node in inventories[cid][0]]

    async def vms(self, where: VmFilter) -> list[Json]:
        inventories = await self._inventories()
        candidates = [vm for cid in sorted(inventories) for vm in inventories[cid][1]]
        for record in self.coordinator.registry.records():
            if record.summary is not None and record.cluster_id not in inventories:
                candidates.extend(
                    _summary_vm(vm, record.cluster_id) for vm in record.summary.movable_vms
                )
        return [vm for vm in candidates if _matches(vm, where)]

    async def clusters(self) -> list[Json]:
        return [_cluster_json(r) for r in self.coordinator.registry.records()]

    async def topology(self) -> Json:
        try:
            topology = self.coordinator.current_topology()
        except FailedPrecondition as exc:
            return {"nodes": [], "links": [], "note": str(exc)}
        graph = topology.graph
        nodes = [{"id": n, "kind": kind} for n, kind in sorted(graph.nodes(data="kind"))]
        links = []
        for u, v in topology.links():
            data = graph.edges[u, v]
            utilisation = float(data.get("utilisation", 0.0))
            links.append(
                {
                    "source": u,
                    "target": v,
                    "bandwidth_mbps": data["bandwidth_mbps"],
                    "latency_ms": data.get("latency_ms", 0.0),
                    "utilisation": round(utilisation, 4),
                    "used_mbps": round(utilisation * data["bandwidth_mbps"], 3),
                }
            )
        return {"nodes": nodes, "links": links, "note": "WAN links between clusters"}

    async def plans(self) -> Json:
        try:
            dry = await self.coordinator.plan()
        except FailedPrecondition as exc:
            return {"pending": [], "running": [], "migrations": [], "note": str(exc)}
        moves = [str(move) for move in dry.plan.moves]
        return {
            "pending": [],
            "running": [],
            "migrations": [],
            "grid_dry_run": {"id": dry.plan_id, "moves": moves, "notes": list(dry.notes)},
        }

    async def history(self, node: str, vm: str, minutes: int) -> Json:
        kind, wanted = ("node", node) if node else ("vm", vm)
        endpoint = await self._endpoint_of(kind, wanted)
        return await self.calls.history(endpoint, node, vm, minutes)

    async def timeline(self, limit: int) -> Json:
        """Every answering cluster's waiting and recent plans, newest first."""
        records = [
            r
            for r in self.coordinator.registry.records()
            if r.state is m.ClusterState.CONNECTED and r.hello.endpoint
        ]
        replies = await asyncio.gather(
            *(self.calls.plans(r.cluster_id, r.hello.endpoint, limit) for r in records),
            return_exceptions=True,
        )
        plans: list[Json] = []
        for record, reply in zip(records, replies, strict=True):
            if isinstance(reply, VmgridError | ApiError):
                log.warning("cluster %s plans: %s", record.cluster_id, reply)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                plans.extend(reply)
        plans.sort(key=lambda p: p["created_unix_ms"], reverse=True)
        names = {
            vm["uuid"]: vm["name"]
            for _, vms in (await self._inventories()).values()
            for vm in vms
            if vm["name"]
        }
        for plan in plans:
            for action in plan["actions"]:
                action["name"] = names.get(action["subject"], action["subject"])
        return {"plans": plans[:limit]}

    async def jobs(self) -> list[Json]:
        return [] if self.grid_jobs is None else jobs_json(self.grid_jobs.list())

    async def job(self, job_id: str) -> Json:
        return one_job(self.grid_jobs, job_id)

    def recent_events(self, limit: int) -> list[Json]:
        return self.feed.recent(limit)

    def stream(self) -> AsyncIterator[Json]:
        return self.feed.stream()

    async def _endpoint_of(self, kind: str, wanted: str) -> str:
        """Endpoint of the cluster holding VM or node `wanted`; 404 when none does."""
        for cluster_id, (nodes, vms) in (await self._inventories()).items():
            items = vms if kind == "vm" else nodes
            if any(item["uuid" if kind == "vm" else "id"] == wanted for item in items):
                return self.coordinator.registry.get(cluster_id).hello.endpoint
        raise not_found(f"no connected cluster has a {kind} {wanted!r}", "id")

    async def migrate(self, vm_uuid: str, destination: str) -> Json:
        endpoint = await self._endpoint_of("vm", vm_uuid)
        try:
            return await self.calls.migrate(endpoint, vm_uuid, destination)
        except ApiError as exc:
            if exc.status == 404:
                raise bad_request(exc.message, "destination") from None
            raise

    async def suspend(self, vm_uuid: str) -> Json:
        return await self.calls.suspend(await self._endpoint_of("vm", vm_uuid), vm_uuid)

    async def resume(self, vm_uuid: str) -> Json:
        return await self.calls.resume(await self._endpoint_of("vm", vm_uuid), vm_uuid)

    async def snapshot(self, vm_uuid: str, name: str) -> Json:
        return await self.calls.snapshot(await self._endpoint_of("vm", vm_uuid), vm_uuid, name)

    async def drain(self, node_id: str, draining: bool) -> Json:
        endpoint = await self._endpoint_of("node", node_id)
        return await self.calls.drain(endpoint, node_id, draining)

    async def forget_node(self, node_id: str) -> Json:
        endpoint = await self._endpoint_of("node", node_id)
        raise conflict(
            f"node {node_id!r} is forgotten by its cluster manager ({endpoint}) only, with an "
            f"operator certificate: vmgridctl nodes forget {node_id} --cluster {endpoint}",
            "id",
        )

    async def forget_cluster(self, cluster_id: str) -> Json:
        if self.mover is None:
            raise conflict(f"use vmgridctl clusters forget {cluster_id} --coordinator ...", "id")
        failed = self.mover.forget_cluster(cluster_id)  # NotFound 404, FailedPrecondition 409
        return {"cluster": cluster_id, "forgotten": True, "failed_moves": failed}

    async def approve(self, plan_id: str) -> Json:
        raise conflict(NO_APPROVAL, "id")

    async def reject(self, plan_id: str) -> Json:
        raise conflict(NO_APPROVAL, "id")

    async def rules(self) -> Json:
        raise conflict(NO_RULES)

    async def check_rules(self) -> Json:
        raise conflict(NO_RULES)

    async def add_rule(self, request: RuleRequest) -> Json:
        raise conflict(NO_RULES, "rule")

    async def delete_rule(self, rule_id: str) -> Json:
        raise conflict(NO_RULES, "id")

    def _policy_cluster(self, cluster: str, changing: bool) -> tuple[str, str]:
        """(cluster id, endpoint) of the cluster whose policy is asked for: `cluster`, or the
        only (reading: the first) connected one."""
        connected = sorted(
            (r.cluster_id, r.hello.endpoint)
            for r in self.coordinator.registry.records()
            if r.state is m.ClusterState.CONNECTED and r.hello.endpoint
        )
        if cluster:
            for found in connected:
                if found[0] == cluster:
                    return found
            known = ", ".join(c for c, _ in connected) or "none"
            raise not_found(f"no connected cluster {cluster!r} (connected: {known})", "cluster")
        if not connected:
            raise conflict("no cluster is connected to the coordinator", "cluster")
        if changing and len(connected) > 1:
            known = ", ".join(c for c, _ in connected)
            raise bad_request(f"say which cluster: ?cluster=ID (one of {known})", "cluster")
        return connected[0]

    async def policy(self, cluster: str) -> Json:
        cluster_id, endpoint = self._policy_cluster(cluster, changing=False)
        return {"cluster": cluster_id, **await self.calls.policy(endpoint)}

    async def set_policy(self, cluster: str, values: dict[str, object]) -> Json:
        cluster_id, endpoint = self._policy_cluster(cluster, changing=True)
        try:
            changed = await self.calls.set_policy(endpoint, values)
        except InvalidArgument as exc:
            raise bad_request(str(exc), "body") from None
        return {"cluster": cluster_id, **changed}

    async def explain(self, vm: str) -> Json:
        raise conflict(NO_INSIGHT, "id")

    async def n_plus_one(self) -> Json:
        raise conflict(NO_INSIGHT)

    async def traffic(self, limit: int) -> Json:
        return grid_traffic_json(self.coordinator.registry.records(), limit)


def _client_credentials(coordinator: Coordinator) -> grpc.ChannelCredentials | None:
    """The coordinator's own certificate as a client of cluster managers (None: plaintext)."""
    config = coordinator.config
    if config.insecure:
        return None
    return channel_credentials(
        TlsFiles(config.tls_ca_file, config.tls_cert_file, config.tls_key_file)
    )


def _summary_vm(vm: m.VmDemand, cluster_id: str) -> Json:
    """A VM known only from its cluster's summary (the cluster did not answer)."""
    return {
        "uuid": vm.vm_uuid,
        "name": vm.name,
        "cluster": cluster_id,
        "node": vm.node_id,
        "state": "running",
        "cpu_used_millicores": vm.cpu_millicores,
        "memory_allocated_bytes": vm.memory_bytes,
        "simulated": False,
        "migration": None,
    }


def _matches(vm: Json, where: VmFilter) -> bool:
    return (
        (not where.cluster or vm["cluster"] == where.cluster)
        and (not where.node or vm["node"] == where.node)
        and (not where.state or vm["state"] == where.state)
        and (not where.name or where.name.lower() in vm["name"].lower())
    )


def _cluster_json(record: m.ClusterRecord) -> Json:
    summary = record.summary
    out: Json = {
        "id": record.cluster_id,
        "state": record.state.value,
        "endpoint": record.hello.endpoint,
        "nodes": record.hello.node_count,
        "capacity": {
            "cpu_millicores": record.hello.capacity.cpu_millicores,
            "memory_bytes": record.hello.capacity.memory_bytes,
        },
        "usage": None,
        "health": "unknown",
    }
    if summary is not None:  # the latest summary is fresher than the hello (nodes join later)
        out["nodes"] = summary.health.nodes_total
        out["capacity"] = {
            "cpu_millicores": summary.capacity.cpu_millicores,
            "memory_bytes": summary.capacity.memory_bytes,
        }
        out["usage"] = {
            "cpu_millicores": summary.usage.cpu_millicores,
            "memory_bytes": summary.usage.memory_bytes,
        }
        out["health"] = summary.health.state.value
        out["nodes_lost"] = summary.health.nodes_lost
        out["vms"] = len(summary.movable_vms)
    return out
