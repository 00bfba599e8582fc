"""The dashboard's backend for one cluster manager.

Every action goes through the cluster's operator API, the one the CLI and ClusterService use:
a migration is a one-action plan run by the plan executor (journaled, re-checked, refused while
the VM is busy or another plan runs), and the operator API's errors become HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from vmgrid.agents.cluster.act.executor import ExecutionEvent
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.errors import InvalidArgument, NotFound
from vmgrid.agents.model import CommandResult, CommandState
from vmgrid.coordinator.web import cluster_json as cj
from vmgrid.coordinator.web.backend import VmFilter
from vmgrid.coordinator.web.cluster_calls import DashboardSource as DashboardSource
from vmgrid.coordinator.web.cluster_calls import Json
from vmgrid.coordinator.web.cluster_rule_calls import RuleCalls
from vmgrid.coordinator.web.errors import ApiError, conflict, not_found
from vmgrid.coordinator.web.feed import EventFeed
from vmgrid.coordinator.web.history_json import history_json, timeline_json
from vmgrid.coordinator.web.jobs_json import jobs_json, one_job
from vmgrid.solver.plan import Action, ActionKind


class ClusterBackend(RuleCalls):
    """Reads a running cluster manager; call ``start()`` inside its event loop."""

    kind = "cluster"

    def __init__(self, runtime: DashboardSource) -> None:
        self.runtime = runtime
        self.state = runtime.manager.state
        self.feed = EventFeed()
        self.migrations: dict[str, Json] = {}  # vm uuid -> progress of its running migration
        self._tasks: set[asyncio.Future[Any]] = set()
        runtime.executor.add_listener(self._on_execution)

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
                pressure = view.vm_pressure.get(vm.uuid)
                found.append(cj.vm_json(vm, view.node_id, self.cluster_id, migration, pressure))
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

    async def history(self, node: str, vm: str, minutes: int) -> Json:
        reads = self.runtime.operator.history

        async def go() -> Json:
            found = reads.usage(node, vm, minutes)
            kind = "node" if node else "vm"
            return history_json(
                kind,
                found.subject,
                minutes,
                found.bucket_s,
                found.buckets,
                found.times_unix_ms,
                found.series,
            )

        return await self._call(go, "node" if node else "vm")

    async def timeline(self, limit: int) -> Json:
        plans = self.runtime.operator.history.timeline(limit)
        return timeline_json(plans, self._vm_names(), self.runtime.loop.describe)

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

    # ---- actions: the operator API only ---------------------------------------------------

    async def migrate(self, vm_uuid: str, destination: str) -> Json:
        operator = self.runtime.operator

        try:
            src, vm = self.state.find_vm(vm_uuid)
        except NotFound as exc:
            raise not_found(str(exc), "id") from None

        async def go() -> Json:
            if destination not in self.state.node_ids():
                known = ", ".join(self.state.node_ids())
                raise InvalidArgument(
                    f"destination {destination!r} is not a node of this cluster (known: {known})"
                )
            view = await operator.plans.migrate(vm_uuid, destination)
            self.feed.publish(
                {
                    "kind": "operator",
                    "vm": vm_uuid,
                    "message": f"migrate {vm.name} {src} -> {destination} requested",
                }
            )
            return {"plan": view.plan_id, "vm": vm_uuid, "source": src, "destination": destination}

        return await self._call(go, "destination")

    def _result(self, verb: str, node_id: str, result: CommandResult) -> Json:
        if result.state is not CommandState.SUCCEEDED:
            raise conflict(f"{verb} failed on {node_id}: {result.message}")
        return {
            "node": node_id,
            "state": result.state.value,
            "message": result.message,
            "simulated": result.simulated,
        }

    async def _vm_command(
        self, verb: str, vm_uuid: str, send: Callable[[], Awaitable[CommandResult]]
    ) -> Json:
        async def go() -> Json:
            node, _ = self.state.find_vm(vm_uuid)
            return self._result(verb, node, await send())

        return await self._call(go)

    async def suspend(self, vm_uuid: str) -> Json:
        vms = self.runtime.operator.vms
        return await self._vm_command("suspend", vm_uuid, lambda: vms.suspend(vm_uuid))

    async def resume(self, vm_uuid: str) -> Json:
        vms = self.runtime.operator.vms
        return await self._vm_command("resume", vm_uuid, lambda: vms.resume(vm_uuid))

    async def snapshot(self, vm_uuid: str, name: str) -> Json:
        vms = self.runtime.operator.vms
        return await self._vm_command(
            "snapshot",
            vm_uuid,
            lambda: vms.create_snapshot(vm_uuid, name, "from the dashboard"),
        )

    async def drain(self, node_id: str, draining: bool) -> Json:
        vms = self.runtime.operator.vms

        async def go() -> Json:
            view = vms.drain(node_id) if draining else vms.undrain(node_id)
            return {"node": node_id, "draining": view.draining}

        return await self._call(go)

    async def forget_node(self, node_id: str) -> Json:
        vms = self.runtime.operator.vms

        async def go() -> Json:
            return {"node": vms.forget(node_id), "forgotten": True}

        return await self._call(go)

    async def forget_cluster(self, cluster_id: str) -> Json:
        raise conflict(
            f"clusters are forgotten by the grid coordinator: vmgridctl clusters forget "
            f"{cluster_id} --coordinator HOST:PORT",
            "id",
        )

    async def approve(self, plan_id: str) -> Json:
        plans = self.runtime.operator.plans

        async def go() -> Json:
            return {"plan": plans.approve(plan_id).plan_id, "state": "running"}

        return await self._call(go)

    async def reject(self, plan_id: str) -> Json:
        plans = self.runtime.operator.plans

        async def go() -> Json:
            return {"plan": plans.reject(plan_id).plan_id, "state": "rejected"}

        return await self._call(go)


__all__ = ["ApiError", "ClusterBackend", "DashboardSource"]
