"""The dashboard's backend for one cluster manager (``ClusterRuntime``).

Operator actions go through the same paths as the manager's own: a migration is a one-action
plan run by the plan executor (journaled, re-checked, simulated between test-driver nodes);
suspend, resume and snapshot are agent commands awaited to their final result.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from vmgrid.agents.cluster.executor import ExecutionEvent, ExecutionReport
from vmgrid.agents.cluster.journal import ActionState
from vmgrid.agents.cluster.runtime import ClusterRuntime
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import (
    Command,
    CommandState,
    CreateSnapshotCommand,
    ResumeCommand,
    SuspendCommand,
    VmState,
)
from vmgrid.coordinator.web import cluster_json as cj
from vmgrid.coordinator.web.backend import VmFilter
from vmgrid.coordinator.web.errors import ApiError, bad_request, conflict, not_found
from vmgrid.coordinator.web.feed import EventFeed
from vmgrid.coordinator.web.jobs_json import jobs_json, one_job
from vmgrid.solver.plan import Action, ActionKind

Json = dict[str, Any]
COMMAND_TIMEOUT_S = 60.0


class ClusterBackend:
    """Reads a running ClusterRuntime; call ``start()`` inside its event loop."""

    kind = "cluster"

    def __init__(self, runtime: ClusterRuntime) -> None:
        self.runtime = runtime
        self.state = runtime.manager.state
        self.feed = EventFeed()
        self.migrations: dict[str, Json] = {}  # vm uuid -> progress of its running migration
        self._tasks: set[asyncio.Future[Any]] = set()
        runtime.executor.add_listener(self._on_execution)

    @property
    def cluster_id(self) -> str:
        return self.state.cluster_id

    def start(self) -> None:
        """Begin relaying the manager's events to the feed."""
        self._keep(asyncio.ensure_future(self._relay()))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self) -> None:
        sub = self.runtime.manager.bus.subscribe()
        try:
            while True:
                self.feed.publish(cj.event_json(await sub.get()))
        finally:
            sub.close()

    def _on_execution(self, event: ExecutionEvent) -> None:
        action = event.action
        if action.kind is not ActionKind.MIGRATE:
            return
        if event.state is ActionState.RUNNING:
            entry = {
                "plan": event.plan_id,
                "source": action.src,
                "destination": action.dst,
                "progress": round(event.progress, 3),
                "simulated": self._simulated(action),
            }
            self.migrations[action.subject] = entry
            self.feed.publish({"kind": "migration_progress", "vm": action.subject, **entry}, False)
            return
        self.migrations.pop(action.subject, None)
        self.feed.publish(
            {
                "kind": "migration_finished",
                "vm": action.subject,
                "node": action.dst or "",
                "message": f"{event.state.value}: {event.message}",
                "simulated": event.simulated,
            }
        )

    def _simulated(self, action: Action) -> bool:
        try:
            nodes = [self.state.view(n) for n in (action.src, action.dst) if n is not None]
        except NotFound:
            return False
        return all(view.identity.simulated for view in nodes)

    # ---- reads ---------------------------------------------------------------------------

    async def nodes(self) -> list[Json]:
        return [cj.node_json(v, self.cluster_id) for v in self.state.views()]

    async def vms(self, where: VmFilter) -> list[Json]:
        if where.state and where.state not in {s.value for s in VmState}:
            accepted = ", ".join(s.value for s in VmState)
            raise bad_request(f"state {where.state!r} is not one of: {accepted}", "state")
        found = []
        if where.cluster and where.cluster != self.cluster_id:
            return []
        for view in self.state.views():
            if where.node and view.node_id != where.node:
                continue
            for vm in sorted(view.vms, key=lambda v: (v.name, v.uuid)):
                if where.state and vm.state.value != where.state:
                    continue
                if where.name and where.name.lower() not in vm.name.lower():
                    continue
                migration = self.migrations.get(vm.uuid)
                found.append(cj.vm_json(vm, view.node_id, self.cluster_id, migration))
        return found

    async def clusters(self) -> list[Json]:
        views = self.state.views()
        usage = [v.usage for v in views if v.usage is not None]
        return [
            {
                "id": self.cluster_id,
                "state": "connected",
                "nodes": len(views),
                "nodes_lost": sum(1 for v in views if v.status.value == "lost"),
                "vms": sum(len(v.vms) for v in views),
                "capacity": {
                    "cpu_millicores": sum(v.capacity.cpu_millicores for v in views),
                    "memory_bytes": sum(v.capacity.memory_bytes for v in views),
                },
                "usage": {
                    "cpu_millicores": sum(u.cpu_used_millicores for u in usage),
                    "memory_bytes": sum(u.memory_used_bytes for u in usage),
                },
                "automation": self.runtime.loop.config.automation.value,
                "health": "healthy",
            }
        ]

    async def topology(self) -> Json:
        """The cluster's switch and its nodes; link load is each node's NIC traffic."""
        nodes: list[Json] = [{"id": self.cluster_id, "kind": "cluster"}]
        links: list[Json] = []
        for view in self.state.views():
            nodes.append({"id": view.node_id, "kind": "node"})
            bandwidth_mbps = view.capacity.nic_bandwidth_bps / 1e6
            used = 0.0
            if view.usage is not None:
                used = (view.usage.net_rx_bytes_per_second + view.usage.net_tx_bytes_per_second) * 8
            used_mbps = used / 1e6
            links.append(
                {
                    "source": self.cluster_id,
                    "target": view.node_id,
                    "bandwidth_mbps": round(bandwidth_mbps, 3),
                    "latency_ms": 0.0,
                    "used_mbps": round(used_mbps, 3),
                    "utilisation": round(min(1.0, used_mbps / bandwidth_mbps), 4)
                    if bandwidth_mbps > 0
                    else 0.0,
                }
            )
        return {"nodes": nodes, "links": links, "note": "links: node NICs to the cluster switch"}

    async def plans(self) -> Json:
        loop = self.runtime.loop
        pending = [
            cj.recommendation_json(
                rec,
                [
                    cj.action_json(a, loop.describe(a))
                    for a in (rec.decision.plan.actions if rec.decision.plan else ())
                ],
            )
            for rec in loop.pending.values()
        ]
        running = [{"id": loop.running}] if loop.running else []
        migrations = [{"vm": vm, **entry} for vm, entry in self.migrations.items()]
        return {"pending": pending, "running": running, "migrations": migrations}

    async def jobs(self) -> list[Json]:
        ft = self.runtime.fault_tolerance
        return [] if ft is None else jobs_json(ft.jobs.records())

    async def job(self, job_id: str) -> Json:
        ft = self.runtime.fault_tolerance
        return one_job(None if ft is None else ft.jobs, job_id)

    def recent_events(self, limit: int) -> list[Json]:
        return self.feed.recent(limit)

    def stream(self) -> AsyncIterator[Json]:
        return self.feed.stream()

    # ---- actions -------------------------------------------------------------------------

    def _vm(self, vm_uuid: str) -> tuple[str, Any]:
        try:
            return self.state.find_vm(vm_uuid)
        except NotFound as exc:
            raise not_found(str(exc), "id") from None

    async def migrate(self, vm_uuid: str, destination: str) -> Json:
        src, vm = self._vm(vm_uuid)
        if destination not in self.state.node_ids():
            known = ", ".join(self.state.node_ids())
            raise bad_request(
                f"destination {destination!r} is not a node of this cluster (known: {known})",
                "destination",
            )
        if destination == src:
            raise bad_request(f"VM {vm.name or vm_uuid} is already on {src}", "destination")
        if vm_uuid in self.migrations:
            raise conflict(f"VM {vm.name or vm_uuid} is already migrating", "id")
        plan_id = f"op-{uuid.uuid4().hex[:10]}"
        action = Action(0, ActionKind.MIGRATE, vm_uuid, src, destination, 0, 1, "operator request")
        self.migrations[vm_uuid] = {
            "plan": plan_id,
            "source": src,
            "destination": destination,
            "progress": 0.0,
            "simulated": self._simulated(action),
        }
        self.feed.publish(
            {
                "kind": "operator",
                "vm": vm_uuid,
                "message": f"migrate {vm.name} {src} -> {destination} requested",
            }
        )
        task = asyncio.ensure_future(self._run_plan(plan_id, action))
        self._keep(task)
        return {"plan": plan_id, "vm": vm_uuid, "source": src, "destination": destination}

    async def _run_plan(self, plan_id: str, action: Action) -> ExecutionReport:
        try:
            return await self.runtime.executor.run(plan_id, [action], origin="operator")
        finally:
            self.migrations.pop(action.subject, None)

    async def _command(self, node_id: str, command: Command, verb: str) -> Json:
        result = await self.runtime.manager.send_command(node_id, command, COMMAND_TIMEOUT_S)
        if result.state is not CommandState.SUCCEEDED:
            raise conflict(f"{verb} failed on {node_id}: {result.message}")
        return {
            "node": node_id,
            "state": result.state.value,
            "message": result.message,
            "simulated": result.simulated,
        }

    async def suspend(self, vm_uuid: str) -> Json:
        node, _ = self._vm(vm_uuid)
        return await self._command(node, SuspendCommand(_cid("suspend"), vm_uuid), "suspend")

    async def resume(self, vm_uuid: str) -> Json:
        node, _ = self._vm(vm_uuid)
        return await self._command(node, ResumeCommand(_cid("resume"), vm_uuid), "resume")

    async def snapshot(self, vm_uuid: str, name: str) -> Json:
        node, _ = self._vm(vm_uuid)
        command = CreateSnapshotCommand(_cid("snapshot"), vm_uuid, name, "from the dashboard")
        return await self._command(node, command, "snapshot")

    async def drain(self, node_id: str, draining: bool) -> Json:
        try:
            self.state.set_draining(node_id, draining)
        except NotFound as exc:
            raise not_found(str(exc), "id") from None
        if draining:
            self.runtime.loop.kick()
        return {"node": node_id, "draining": draining}

    async def approve(self, plan_id: str) -> Json:
        try:
            self.runtime.loop.approve(plan_id)
        except NotFound as exc:
            raise not_found(str(exc), "id") from None
        return {"plan": plan_id, "state": "running"}

    async def reject(self, plan_id: str) -> Json:
        try:
            self.runtime.loop.reject(plan_id)
        except NotFound as exc:
            raise not_found(str(exc), "id") from None
        return {"plan": plan_id, "state": "rejected"}


def _cid(verb: str) -> str:
    return f"web-{verb}-{uuid.uuid4().hex[:12]}"


__all__ = ["ApiError", "ClusterBackend"]
