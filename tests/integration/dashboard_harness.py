"""A demo cluster with its dashboard, run on a background event loop for sync tests.

Playwright's sync API and schemathesis both drive the server from the test thread, so the
cluster manager, its simulated agents (the demo's own pieces) and the web server run on a
private event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.cluster_backend import ClusterBackend
from vmgrid.coordinator.web.server import WebServer, serve_cluster, stop_cluster_web
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec

T = TypeVar("T")


@dataclass
class DashboardDemo:
    runtime: ClusterRuntime
    web: WebServer
    backend: ClusterBackend
    tokens: Tokens
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the cluster's loop (the manager's state is loop-confined)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def run(self, coro: Awaitable[T], timeout_s: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout_s)

    def vm_state(self, vm_uuid: str) -> tuple[str, str]:
        node, vm = self.call(lambda: self.runtime.manager.state.find_vm(vm_uuid))
        return node, vm.state.value


class DashboardHarness:
    """Start with ``start(tmp)``; ``stop()`` ends the agents, the server and the loop."""

    def __init__(self, nodes: int = 3, vms_per_node: int = 2) -> None:
        self.spec = SimClusterSpec("c1", nodes=nodes, vms_per_node=vms_per_node, step_s=60.0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.cluster: SimCluster | None = None
        self.demo: DashboardDemo | None = None

    def start(self, workdir: Path) -> DashboardDemo:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(workdir), self.loop)
        self.demo = future.result(90)
        return self.demo

    async def _start(self, workdir: Path) -> DashboardDemo:
        control = ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0)
        options = RuntimeOptions(
            control=control,
            driver=DriverOptions(simulated_time_scale=0.3),
            decisions=False,
        )
        config = ClusterConfig(
            cluster_id="c1", listen="127.0.0.1:0", insecure=True, report_period_ms=500
        )
        runtime = ClusterRuntime(config, options)
        address = await runtime.start()
        self.cluster = SimCluster(self.spec, workdir)
        self.cluster.start(address)
        deadline = asyncio.get_running_loop().time() + 60
        while len([v for v in runtime.manager.state.views() if v.usage]) < self.spec.nodes:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the simulated agents did not report within 60 s")
            await asyncio.sleep(0.2)
        tokens = Tokens(read="read-token-for-tests", operator="operator-token-for-tests")
        web, backend = await serve_cluster(runtime, tokens)
        return DashboardDemo(runtime, web, backend, tokens, asyncio.get_running_loop())

    def stop(self) -> None:
        async def _stop() -> None:
            if self.demo is not None:
                await stop_cluster_web(self.demo.web, self.demo.backend)
            if self.cluster is not None:
                self.cluster.stop()
            if self.demo is not None:
                await self.demo.runtime.stop(grace_s=0)

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def any_vm(demo: DashboardDemo) -> dict[str, Any]:
    """One running VM of the demo as the API lists it."""
    views = demo.call(demo.runtime.manager.state.views)
    for view in views:
        for vm in view.vms:
            if vm.state.value == "running":
                return {"uuid": vm.uuid, "name": vm.name, "node": view.node_id}
    raise AssertionError("no running VM in the demo")
