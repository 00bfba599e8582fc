"""`vmgrid-demo`: two clusters of simulated nodes under one grid coordinator, on the embedded
libvirt test driver.

A cluster manager (gRPC on loopback, plaintext: a local demo) with its decision loop in
automatic mode, and one real `vmgrid-agent` process per simulated node. VM load replays
PlanetLab traces faster than real time, so the manager visibly relieves overloads and
consolidates; the demo prints the cluster every few seconds and every decision with its reason.
Migrations between test-driver nodes are simulated and say so. A second, smaller cluster (c2)
and a grid coordinator on a two-cluster GraphML topology run beside it, so that VMs can be
moved across clusters (`vmgridctl migrate VM_UUID --cluster c2`, `vmgridctl plan` / `apply`).

The dashboard is the coordinator's grid view (nodes, VMs and jobs of both clusters). Unless
`--no-ha-scenario` is given, a few seconds after everything is up the demo submits a VM group,
checkpoints it, kills one simulated node's agent, shows the restart and brings the node back
(`ha_scenario`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.common import preflight
from vmgrid.agents.common.config import parse_web_listen
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.coordinator_backend import CoordinatorBackend
from vmgrid.coordinator.web.server import WebServer, serve_cluster, stop_cluster_web
from vmgrid.demo import ha_scenario
from vmgrid.demo.cli import HA_DELAY_S as HA_DELAY_S
from vmgrid.demo.cli import build_parser as build_parser
from vmgrid.demo.console import Console, status_table
from vmgrid.demo.observe import DemoMetrics
from vmgrid.demo.policy import demo_policy
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec

TOPOLOGY = Path(__file__).parent / "grid.graphml"
HEARTBEAT_TIMEOUT_MS = 4000
"""A node is lost after 4 s of silence (agents report every second): a short demo failover."""


async def _start_grid(workdir: Path) -> CoordinatorServer:
    """The grid coordinator of the demo: loopback, plaintext, the two-cluster GraphML."""
    coordinator = CoordinatorServer(
        CoordinatorConfig(
            listen="127.0.0.1:0",
            insecure=True,
            topology_file=str(TOPOLOGY),
            state_db=str(workdir / "grid.sqlite"),
            summary_period_s=2.0,
        ).validate()
    )
    await coordinator.start()
    return coordinator


async def _start_second_cluster(
    workdir: Path, coordinator: str, options: RuntimeOptions
) -> tuple[ClusterRuntime, SimCluster]:
    """c2: two simulated nodes with little load, room for VMs moved from c1."""
    config = _cluster_config("c2")
    runtime = ClusterRuntime(
        config,
        replace(options, journal_path=str(workdir / "c2-journal.sqlite"), coordinator=coordinator),
    )
    address = await runtime.start()
    cluster = SimCluster(SimClusterSpec("c2", nodes=2, vms_per_node=2, seed=2), workdir / "c2")
    cluster.start(address, metrics=True)
    return runtime, cluster


def _cluster_config(cluster_id: str) -> ClusterConfig:
    return ClusterConfig(
        cluster_id=cluster_id,
        listen="127.0.0.1:0",
        insecure=True,
        report_period_ms=1000,
        heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS,
    )


async def _serve_grid_dashboard(
    grid: CoordinatorServer, tokens: Tokens, listen: str
) -> tuple[WebServer, CoordinatorBackend]:
    """The coordinator's grid view: both clusters' nodes, VMs and the grid's jobs."""
    backend = CoordinatorBackend(grid.coordinator, jobs=grid.jobs)
    backend.start()
    web = WebServer(backend, tokens, listen)
    try:
        await web.start()
    except OSError as exc:
        await backend.stop()
        raise RuntimeError(f"--web-listen {listen!r}: cannot bind ({exc.strerror})") from None
    return web, backend


async def _ha_act(
    delay_s: float,
    grid: CoordinatorServer,
    runtimes: dict[str, ClusterRuntime],
    sims: dict[str, SimCluster],
) -> None:
    await asyncio.sleep(delay_s)
    survived = await ha_scenario.run(grid, runtimes, sims, lambda line: print(line, flush=True))
    print(f"HA: {'the group survived the node failure' if survived else 'act FAILED'}", flush=True)


async def run_demo(args: argparse.Namespace) -> int:
    """Start everything, show it until the duration ends or a signal comes, stop everything.
    A signal during start-up stops what has started so far: no agent is left behind."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as started:
        starting = asyncio.ensure_future(_start(args, started))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            print("vmgrid demo: stopped during start-up", flush=True)
            return 1
        demo = starting.result()
        await _show(args, demo, stop)
    print("vmgrid demo stopped")
    return 0


@dataclass
class _Demo:
    runtimes: dict[str, ClusterRuntime]
    sims: dict[str, SimCluster]
    grid: CoordinatorServer


async def _start(args: argparse.Namespace, started: contextlib.AsyncExitStack) -> _Demo:
    """Everything the demo runs; each part's stop is pushed on `started` as soon as it runs."""
    workdir = Path(tempfile.mkdtemp(prefix="vmgrid-demo-"))
    grid = await _start_grid(workdir)
    started.push_async_callback(grid.stop, grace_s=0)
    spec = SimClusterSpec("c1", nodes=args.nodes, vms_per_node=args.vms_per_node, step_s=args.step)
    control = ControlConfig(
        period_s=max(2.0, args.step),
        hold_s=2 * args.step,
        cooldown_s=3 * args.step,
        automation=AutomationLevel(args.automation),
        operator_policy=demo_policy(args.policy),
    )
    options = RuntimeOptions(
        control=control,
        driver=DriverOptions(simulated_time_scale=0.2),
        journal_path=str(workdir / "journal.sqlite"),
        coordinator=grid.address,
        summary_period_s=2.0,
        fault_tolerance=FaultToleranceOptions(
            ha=HaConfig(fence_command=("true",), period_s=0.5), checkpoint_period_s=5.0
        ),
    )
    runtime = ClusterRuntime(_cluster_config("c1"), options)
    address = await runtime.start()
    started.push_async_callback(runtime.stop, grace_s=0)
    cluster = SimCluster(spec, workdir)
    started.callback(cluster.stop)
    cluster.start(address, metrics=True)
    second, second_sim = await _start_second_cluster(workdir, grid.address, options)
    started.push_async_callback(second.stop, grace_s=0)
    started.callback(second_sim.stop)
    runtimes = {"c1": runtime, "c2": second}
    sims = {"c1": cluster, "c2": second_sim}
    metrics = DemoMetrics()
    started.callback(metrics.stop)
    metrics.add_coordinator(grid)
    metrics.add_cluster(runtime)
    metrics.add_cluster(second)
    tokens = Tokens.generate()
    web, web_backend = await _serve_grid_dashboard(grid, tokens, args.web_listen)
    started.push_async_callback(web_backend.stop)
    started.push_async_callback(web.stop)
    # c1's own dashboard: plans to approve, rules, the timeline (same tokens, loopback only)
    c1_web, c1_backend = await serve_cluster(runtime, tokens)
    started.push_async_callback(stop_cluster_web, c1_web, c1_backend)
    await _wait_for_nodes(runtime, args.nodes, timeout_s=30)
    await _wait_for_nodes(second, 2, timeout_s=30)
    await metrics.add_agents(cluster)
    await metrics.add_agents(second_sim)
    _print_banner(args, address, grid.address, web.url, tokens.operator, workdir)
    print(f"  cluster c1 dashboard: {c1_web.url}/#token={tokens.operator}", flush=True)
    if args.state_file is not None:
        state = {
            "dashboard": f"{web.url}/",
            "cluster_dashboard": f"{c1_web.url}/",
            "api": web.api_url,
            "token": tokens.operator,
            "read_token": tokens.read,
            "metrics": metrics.urls,
            "cluster": address,
            "coordinator": grid.address,
            "clusters": {"c1": address, "c2": second.address},
            "workdir": str(workdir),
        }
        write_private(args.state_file, json.dumps(state))
    return _Demo(runtimes, sims, grid)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (it holds the operator token)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


async def _show(args: argparse.Namespace, demo: _Demo, stop: asyncio.Event) -> None:
    """Status tables (and the HA act) until the duration ends or `stop` is set."""
    loop = asyncio.get_running_loop()
    console = Console(demo.runtimes, lambda line: print(line, flush=True))
    console.start()
    act: asyncio.Task[None] | None = None
    if args.ha_scenario:
        act = asyncio.create_task(_ha_act(args.ha_delay, demo.grid, demo.runtimes, demo.sims))
    try:
        deadline = None if args.duration is None else loop.time() + args.duration
        while not stop.is_set():
            for cluster_id, each in demo.runtimes.items():
                print(status_table(cluster_id, each), flush=True)
            timeout = args.refresh
            if deadline is not None:
                timeout = min(timeout, deadline - loop.time())
                if timeout <= 0:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
    finally:
        if act is not None:
            act.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await act
        console.stop()


def _print_banner(
    args: argparse.Namespace, cluster: str, coordinator: str, web: str, token: str, workdir: Path
) -> None:
    print(f"vmgrid demo: cluster manager c1 on {cluster} (plaintext, loopback only)")
    print(f"  grid coordinator on {coordinator}: clusters c1 and c2 ({TOPOLOGY.name})")
    print(
        f"  move a VM: vmgridctl migrate VM_UUID --cluster c2 --coordinator {coordinator} "
        "--insecure"
    )
    print(f"  {args.nodes} simulated nodes in c1, automation {args.automation}; files in {workdir}")
    band = demo_policy(args.policy)
    print(
        f"  policy: CPU band {band.cpu_low:.0%}-{band.cpu_high:.0%}, memory up to "
        f"{band.memory_high:.0%}, at most {band.migrations_per_hour} migrations/hour, a VM moves "
        f"at most once in {band.min_move_interval_s / 60:.0f} min (vmgridctl policy show|set)"
    )
    print("  inspect with: vmgridctl nodes --cluster", cluster, "--insecure")
    print(f"  grid dashboard: {web}/#token={token}  (login link; operator token: {token})")


async def _wait_for_nodes(runtime: ClusterRuntime, count: int, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        views = runtime.manager.state.views()
        if len([v for v in views if v.usage is not None]) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {len(runtime.manager.state.views())} of {count} agents reported")


def check_environment(args: argparse.Namespace) -> None:
    """Before anything starts: the dashboard's address well-formed and free, the state file
    writable where it is to go; ConfigError names the first that is not."""
    parse_web_listen(args.web_listen)
    preflight.check_port_free("--web-listen", args.web_listen)
    if args.state_file is not None:
        target = Path(args.state_file)
        if target.is_dir():
            raise ConfigError(f"--state-file {str(target)!r} is a directory, not a file")
        if not target.parent.is_dir():
            raise ConfigError(
                f"--state-file {str(target)!r}: directory {str(target.parent)!r} does not exist"
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_environment(args)
    except ConfigError as exc:
        print(f"vmgrid-demo: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_demo(args))
    except RuntimeError as exc:
        print(f"vmgrid-demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
