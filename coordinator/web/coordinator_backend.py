"""The dashboard's backend for the grid coordinator: clusters, topology, dry-run grid plans.

The coordinator knows clusters by their summaries, so VMs are those summaries' movable VMs and
nodes are not listed; VM and node actions belong to each cluster manager's own dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vmgrid.agents.errors import FailedPrecondition
from vmgrid.coordinator import model as m
from vmgrid.coordinator.service import Coordinator
from vmgrid.coordinator.web.backend import VmFilter
from vmgrid.coordinator.web.errors import conflict
from vmgrid.coordinator.web.feed import EventFeed

Json = dict[str, Any]
GRID_ONLY = "the grid view cannot act on {what}; use the dashboard of the cluster manager"


class CoordinatorBackend:
    """Reads a Coordinator service; call ``start()`` inside its event loop."""

    kind = "coordinator"

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.feed = EventFeed()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._relay())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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

    async def nodes(self) -> list[Json]:
        return []

    async def vms(self, where: VmFilter) -> list[Json]:
        found = []
        for record in self.coordinator.registry.records():
            if record.summary is None or (where.cluster and where.cluster != record.cluster_id):
                continue
            for vm in record.summary.movable_vms:
                if where.node and vm.node_id != where.node:
                    continue
                if where.name and where.name.lower() not in vm.name.lower():
                    continue
                if where.state and where.state != "running":
                    continue
                found.append(
                    {
                        "uuid": vm.vm_uuid,
                        "name": vm.name,
                        "cluster": record.cluster_id,
                        "node": vm.node_id,
                        "state": "running",
                        "cpu_used_millicores": vm.cpu_millicores,
                        "memory_allocated_bytes": vm.memory_bytes,
                        "simulated": False,
                        "migration": None,
                    }
                )
        return found

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

    def recent_events(self, limit: int) -> list[Json]:
        return self.feed.recent(limit)

    def stream(self) -> AsyncIterator[Json]:
        return self.feed.stream()

    async def migrate(self, vm_uuid: str, destination: str) -> Json:
        raise conflict(GRID_ONLY.format(what="VMs"), "id")

    async def suspend(self, vm_uuid: str) -> Json:
        raise conflict(GRID_ONLY.format(what="VMs"), "id")

    async def resume(self, vm_uuid: str) -> Json:
        raise conflict(GRID_ONLY.format(what="VMs"), "id")

    async def snapshot(self, vm_uuid: str, name: str) -> Json:
        raise conflict(GRID_ONLY.format(what="VMs"), "id")

    async def drain(self, node_id: str, draining: bool) -> Json:
        raise conflict(GRID_ONLY.format(what="nodes"), "id")

    async def approve(self, plan_id: str) -> Json:
        raise conflict("grid plans are dry runs here; nothing waits for approval", "id")

    async def reject(self, plan_id: str) -> Json:
        raise conflict("grid plans are dry runs here; nothing waits for approval", "id")


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
    if summary is not None:
        out["usage"] = {
            "cpu_millicores": summary.usage.cpu_millicores,
            "memory_bytes": summary.usage.memory_bytes,
        }
        out["health"] = summary.health.state.value
        out["nodes_lost"] = summary.health.nodes_lost
        out["vms"] = len(summary.movable_vms)
    return out
