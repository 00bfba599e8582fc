"""A whole ClusterRuntime with three simulated agents, run on a background loop for sync tests.

The agents are real `vmgrid-agent` processes on the libvirt test driver (two 1 GiB VMs each,
constant 5 % CPU), so migrations between them are simulated by the manager; the runtime's
decision loop runs in manual mode and only cycles when kicked (drain, undrain) or asked.
Tests drive it through a real gRPC channel on 127.0.0.1 and through `vmgridctl`'s main().
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from agent_files import idle_pair, start_agent, write_agent_config
from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.model import VmState
from vmgrid.agents.node.testnode import SimVm

T = TypeVar("T")
NODES = ("n1", "n2", "n3")


NO_LIMITS = OperatorPolicy(
    migrations_per_cycle=0,
    migrations_per_hour=0,
    migrations_per_node_hour=0,
    min_move_interval_s=0,
    return_after_s=0,
)
"""The operator surfaces' tests move the same VMs back and forth: no budget, no minimum times
(tests/unit/policy and test_cluster_policy.py test those)."""


class OpsCluster:
    """``start(workdir)``; ``stop()``. `address` is the manager's host:port."""

    def __init__(self, time_scale: float = 0.05, journal_path: str = ":memory:") -> None:
        self.time_scale = time_scale
        """Simulated migrations take memory / 1 Gbit/s times this (1 GiB: 8.6 s x scale)."""
        self.journal_path = journal_path
        """The runtime's SQLite journal (plans and rules); a file survives `restart()`."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runtime: ClusterRuntime | None = None
        self.agents: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def start(self, workdir: Path) -> None:
        self.thread.start()
        self.address = self.run(self._start())
        for node in NODES:
            config = write_agent_config(
                workdir, node, self.address, idle_pair(node), report_period_s=0.3
            )
            self.agents.append(start_agent(config, workdir / f"{node}.log"))
        self.wait_for(lambda: len(self.placement()) == 6, 60)

    async def _start(self, listen: str = "127.0.0.1:0") -> str:
        control = ControlConfig(
            automation=AutomationLevel.MANUAL,
            period_s=3600.0,
            hold_s=1.0,
            cooldown_s=0.0,
            solver_time_limit_s=2.0,
            operator_policy=NO_LIMITS,
        )
        options = RuntimeOptions(
            control=control,
            driver=DriverOptions(simulated_time_scale=self.time_scale),
            journal_path=self.journal_path,
        )
        config = ClusterConfig(cluster_id="ops", listen=listen, insecure=True, report_period_ms=300)
        self.runtime = ClusterRuntime(config, options)
        return await self.runtime.start()

    def stop(self) -> None:
        for agent in self.agents:
            agent.terminate()
        for agent in self.agents:
            agent.wait(timeout=20)
        if self.runtime is not None and self.thread.is_alive():
            self.run(self.runtime.stop(grace_s=0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def restart(self) -> None:
        """Stop the runtime and start a new one on the same address and journal; the agents
        reconnect to it. Returns once every VM is known again."""
        assert self.runtime is not None
        self.run(self.runtime.stop(grace_s=0))
        self.address = self.run(self._start(self.address))
        self.wait_for(lambda: len(self.placement()) == 6, 60)

    def run(self, coro: Awaitable[T], timeout_s: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout_s)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the runtime's loop (the manager's state is loop-confined)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def placement(self) -> dict[str, tuple[str, VmState]]:
        """VM uuid -> (node, state) of every VM on a connected node; no VM may run twice."""

        def read() -> dict[str, tuple[str, VmState]]:
            assert self.runtime is not None
            where: dict[str, tuple[str, VmState]] = {}
            running: Counter[str] = Counter()
            for view in self.runtime.manager.state.views():
                if view.status is not NodeStatus.CONNECTED:
                    continue
                for vm in view.vms:
                    if vm.state in (VmState.SHUT_OFF, VmState.DEFINED):
                        continue
                    where[vm.uuid] = (view.node_id, vm.state)
                    running[vm.uuid] += vm.state is VmState.RUNNING
            twice = [u for u, n in running.items() if n > 1]
            assert not twice, f"VMs running twice: {twice}"
            return where

        return self.call(read)

    def wait_for(self, check: Callable[[], bool], timeout_s: float = 30) -> None:
        """Poll `check` until true. A KeyError counts as "not yet": between a simulated
        migration's destroy on the source and start on the target (and until both nodes have
        reported) the VM is shut off everywhere, so `placement()` leaves it out for a moment;
        tests that care assert no VM is lost once the wait is over."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except KeyError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"condition not met within {timeout_s} s")

    def wait_idle(self, timeout_s: float = 60) -> None:
        """Wait until no plan is running (its last steps may follow the VMs' arrival)."""

        def idle() -> bool:
            assert self.runtime is not None
            return self.runtime.loop.running is None and not self.runtime.executor.in_flight

        self.wait_for(lambda: self.call(idle), timeout_s)

    def vm_named(self, name: str) -> str:
        return str(SimVm(name).uuid)
