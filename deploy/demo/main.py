"""`vmgrid-demo`: two clusters of simulated nodes under one grid coordinator, on the embedded
libvirt test driver.

A cluster manager (gRPC on loopback, plaintext: a local demo) with its decision loop in
automatic mode, and one real `vmgrid-agent` process per simulated node. VM load replays
PlanetLab traces faster than real time, so the manager visibly relieves overloads and
consolidates; the demo prints the cluster every few seconds and every decision with its reason.
Migrations between test-driver nodes are simulated and say so. A second, smaller cluster (c2)
and a grid coordinator on a two-cluster GraphML topology run beside it, so that VMs can be
moved across clusters (`vmgridctl migrate VM --cluster c2`, `vmgridctl plan` / `apply`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from vmgrid.agents.cluster.config import ClusterConfig
from vmgrid.agents.cluster.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.driver import DriverOptions
from vmgrid.agents.cluster.events import EventKind
from vmgrid.agents.cluster.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.ha import HaConfig
from vmgrid.agents.cluster.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.solver_view import memory_fraction
from vmgrid.agents.cluster.state import NodeStatus
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.server import serve_cluster, stop_cluster_web
from vmgrid.demo import ha_scenario
from vmgrid.demo.observe import DemoMetrics
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec

TOPOLOGY = Path(__file__).parent / "grid.graphml"
EPILOG = """\
examples:
  vmgrid-demo                          # run until Ctrl-C
  vmgrid-demo --duration 60 --state-file /tmp/demo.json
  vmgrid-demo --nodes 6 --vms-per-node 8 --automation manual
  vmgrid-demo --ha-scenario            # submit a group, checkpoint it, survive a node failure
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-demo",
        description="Run a demo vmgrid cluster on the libvirt test driver and show it live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=_positive_int, default=4, help="simulated nodes (4)")
    parser.add_argument(
        "--vms-per-node", type=_positive_int, default=5, help="VMs per node at start (5)"
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="stop cleanly after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="once everything is up, write the endpoints as JSON to FILE",
    )
    parser.add_argument(
        "--automation",
        choices=[level.value for level in AutomationLevel],
        default="automatic",
        help="automation level of the cluster (automatic)",
    )
    parser.add_argument(
        "--step",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="demo seconds per 5-minute trace sample (5)",
    )
    parser.add_argument(
        "--web-listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address of the web dashboard (127.0.0.1:0 picks a free port)",
    )
    parser.add_argument(
        "--refresh", type=_positive_float, default=5.0, help="seconds between status tables (5)"
    )
    parser.add_argument(
        "--ha-scenario",
        action="store_true",
        help="submit a group, checkpoint it, kill one simulated agent and show the restart",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def status_table(runtime: ClusterRuntime) -> str:
    rows = [f"{'node':<14} {'state':<9} {'cpu':>5} {'mem':>5}  VMs"]
    for view in sorted(runtime.manager.state.views(), key=lambda v: v.node_id):
        cpu = 0.0
        if view.usage is not None:
            cpu = view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores)
        running = [vm.name for vm in view.vms if vm.state.value == "running"]
        state = view.status.value if view.status is not NodeStatus.CONNECTED else "up"
        mem = memory_fraction(view)
        rows.append(
            f"{view.node_id:<14} {state:<9} {cpu:>5.0%} {mem:>5.0%}  "
            f"{len(running)}: {' '.join(sorted(running))}"
        )
    return "\n".join(rows)


async def _print_events(runtime: ClusterRuntime) -> None:
    interesting = {EventKind.PLAN_CHANGED, EventKind.NODE_LOST, EventKind.NODE_JOINED}
    sub = runtime.manager.bus.subscribe(lambda e: e.kind in interesting)
    try:
        while True:
            event = await sub.get()
            stamp = time.strftime("%H:%M:%S")
            label = event.node_id or "plan"
            print(f"{stamp} [{event.kind.value}] {label}: {event.message}", flush=True)
    finally:
        sub.close()


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
    config = ClusterConfig(
        cluster_id="c2", listen="127.0.0.1:0", insecure=True, report_period_ms=1000
    )
    runtime = ClusterRuntime(
        config,
        replace(options, journal_path=str(workdir / "c2-journal.sqlite"), coordinator=coordinator),
    )
    address = await runtime.start()
    cluster = SimCluster(SimClusterSpec("c2", nodes=2, vms_per_node=2, seed=2), workdir / "c2")
    cluster.start(address, metrics=True)
    return runtime, cluster


async def run_demo(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vmgrid-demo-"))
    grid = await _start_grid(workdir)
    spec = SimClusterSpec("c1", nodes=args.nodes, vms_per_node=args.vms_per_node, step_s=args.step)
    control = ControlConfig(
        period_s=max(2.0, args.step),
        hold_s=2 * args.step,
        cooldown_s=3 * args.step,
        automation=AutomationLevel(args.automation),
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
    config = ClusterConfig(
        cluster_id="c1", listen="127.0.0.1:0", insecure=True, report_period_ms=1000
    )
    runtime = ClusterRuntime(config, options)
    address = await runtime.start()
    cluster = SimCluster(spec, workdir)
    cluster.start(address, metrics=True)
    second, second_sim = await _start_second_cluster(workdir, grid.address, options)
    metrics = DemoMetrics()
    metrics.add_coordinator(grid)
    metrics.add_cluster(runtime)
    metrics.add_cluster(second)
    tokens = Tokens.generate()
    web, web_backend = await serve_cluster(runtime, tokens, args.web_listen)
    printer = asyncio.ensure_future(_print_events(runtime))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _wait_for_nodes(runtime, args.nodes, timeout_s=30)
        await _wait_for_nodes(second, 2, timeout_s=30)
        await metrics.add_agents(cluster)
        await metrics.add_agents(second_sim)
        print(f"vmgrid demo: cluster manager on {address} (plaintext, loopback only)")
        print(f"  grid coordinator on {grid.address}: clusters c1 and c2 ({TOPOLOGY.name})")
        print(
            f"  move a VM: vmgridctl migrate VM --cluster c2 --coordinator {grid.address} --insecure"
        )
        print(f"  {args.nodes} simulated nodes, automation {args.automation}; files in {workdir}")
        print("  inspect with: vmgridctl nodes --cluster", address, "--insecure")
        print(f"  dashboard: {web.url}/  operator token: {tokens.operator}", flush=True)
        if args.state_file is not None:
            state = {
                "dashboard": f"{web.url}/",
                "api": web.api_url,
                "token": tokens.operator,
                "read_token": tokens.read,
                "metrics": metrics.urls,
                "cluster": address,
                "coordinator": grid.address,
                "clusters": {"c1": address, "c2": second.address},
                "workdir": str(workdir),
            }
            args.state_file.write_text(json.dumps(state))
        if args.ha_scenario:
            sims = {"c1": cluster, "c2": second_sim}
            runtimes = {"c1": runtime, "c2": second}
            await ha_scenario.run(grid, runtimes, sims, lambda line: print(line, flush=True))
        deadline = None if args.duration is None else loop.time() + args.duration
        while not stop.is_set():
            print(status_table(runtime), flush=True)
            timeout = args.refresh
            if deadline is not None:
                timeout = min(timeout, deadline - loop.time())
                if timeout <= 0:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
    finally:
        printer.cancel()
        await stop_cluster_web(web, web_backend)
        metrics.stop()
        cluster.stop()
        second_sim.stop()
        await runtime.stop(grace_s=0)
        await second.stop(grace_s=0)
        await grid.stop(grace_s=0)
    print("vmgrid demo stopped")
    return 0


async def _wait_for_nodes(runtime: ClusterRuntime, count: int, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        views = runtime.manager.state.views()
        if len([v for v in views if v.usage is not None]) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {len(runtime.manager.state.views())} of {count} agents reported")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run_demo(args))
    except RuntimeError as exc:
        print(f"vmgrid-demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
