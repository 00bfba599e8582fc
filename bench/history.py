"""`vmgrid-bench history`: what the dashboard's hour of history costs the cluster manager.

Feeds a ClusterState (in process, no network) with synthetic reports from N nodes of M VMs,
one report per node per simulated period for the given simulated minutes, once with the
bucketed hour (``state/trend.py``) and once with it switched off, and reports the ingest time
per report of each (the fastest of --rounds alternated runs) and their difference, the bytes the hour holds per VM,
and the time to answer one VM's and one node's history. Simulated time, real CPU time: the
figures scale with the machine (see the ``machine`` object).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.history import NodeHistory
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.trend import NodeFold, UsageTrends


class _NoTrends(UsageTrends):
    """The bucketed hour switched off (the baseline)."""

    def before_report(
        self, node_id: str, fold: NodeFold, history: NodeHistory, hosts: Any, sent_at_ns: int
    ) -> None:
        pass

    def leaving(self, fold: NodeFold, history: NodeHistory, uuid: str) -> None:
        pass

    @staticmethod
    def vm_pressure_report(fold: NodeFold, window: int, sent_at_ns: int, pressures: Any) -> None:
        pass


_PRESSURE = m.Pressure(m.PressureStall(1.5), m.PressureStall(0.2), m.PressureStall(0.0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=100, help="nodes (default 100)")
    parser.add_argument("--vms-per-node", type=int, default=20, help="VMs per node (default 20)")
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="simulated minutes of reports (default 10)"
    )
    parser.add_argument("--period", type=float, default=1.0, help="report period, s (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument(
        "--pressure",
        action="store_true",
        help="reports carry host and VM pressure, as from agents that read PSI (default: none, "
        "as on the libvirt test driver)",
    )


def _feed(args: argparse.Namespace, trends: UsageTrends) -> tuple[ClusterState, float, int]:
    """(the state, CPU seconds spent in apply_report, reports applied)."""
    if args.nodes < 1 or args.vms_per_node < 0 or args.minutes <= 0 or args.period <= 0:
        raise ValueError(
            f"--nodes {args.nodes}, --vms-per-node {args.vms_per_node}, --minutes "
            f"{args.minutes}, --period {args.period}: need >= 1, >= 0, > 0 and > 0"
        )
    rng = random.Random(args.seed)
    start_ns = 1_800_000_000 * 10**9
    clock = [start_ns]  # the manager's clock follows the simulated reports
    state = ClusterState(EventBus("bench"), trends=trends, clock_ns=lambda: clock[0])
    nodes = [f"n{i}" for i in range(args.nodes)]
    for node in nodes:
        hello = m.NodeHello(
            m.NodeIdentity(node, node, f"test:///{node}"), m.NodeCapacity(64000, 2**38, 10**10)
        )
        state.node_connected(hello, 1)
    vms = {
        n: [f"{n}-vm{j}" for j in range(args.vms_per_node)] for n in nodes
    }  # stable names per node
    cpu = {u: rng.randrange(100, 2000) for us in vms.values() for u in us}
    steps = int(args.minutes * 60 / args.period)
    spent, applied = 0.0, 0
    for step in range(steps):
        sent_at = start_ns + int(step * args.period * 1e9)
        clock[0] = sent_at
        for node in nodes:
            usages = []
            for uuid in vms[node]:
                cpu[uuid] = max(0, cpu[uuid] + rng.randrange(-50, 51))
                usages.append(
                    m.VmUsage(uuid, uuid, m.VmState.RUNNING, 2, cpu[uuid], 2**30, 2**30, 1000, 2000)
                )
            pressure = _PRESSURE if args.pressure else m.NO_PRESSURE
            host = m.HostUsage(
                sum(u.cpu_used_millicores for u in usages), 2**36, 2**38, 10, 20, pressure
            )
            vm_pressure = tuple(m.VmPressure(u, _PRESSURE) for u in vms[node] if args.pressure)
            report = m.NodeReport(sent_at, step + 1, host, tuple(usages), vm_pressure)
            began = time.process_time()
            state.apply_report(node, report)
            spent += time.process_time() - began
            applied += 1
    return state, spent, applied


def run(args: argparse.Namespace) -> dict[str, Any]:
    with_runs, without_runs = [], []
    for _ in range(args.rounds):  # alternated, the fastest of each kept: a shared machine
        trends = UsageTrends()
        state, spent, reports = _feed(args, trends)
        with_runs.append(spent)
        without_runs.append(_feed(args, _NoTrends())[1])
    with_s, without_s = min(with_runs), min(without_runs)
    vm = f"n0-vm{args.vms_per_node - 1}" if args.vms_per_node else ""
    began = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        state.node_usage_history("n0", 0)
        if vm:
            state.vm_usage_history(vm, 0)
    read_ms = (time.perf_counter() - began) * 1000 / rounds
    vm_count = args.nodes * args.vms_per_node
    return {
        "nodes": args.nodes,
        "pressure": args.pressure,
        "vms": vm_count,
        "simulated_minutes": args.minutes,
        "reports": reports,
        "apply_us_per_report": round(with_s * 1e6 / reports, 2),
        "apply_us_per_report_without_hour": round(without_s * 1e6 / reports, 2),
        "hour_share_of_ingest": round((with_s - without_s) / without_s, 4) if without_s else 0,
        "bucket_s": trends.bucket_s,
        "buckets_kept": trends.vms.columns,
        "hour_bytes": trends.vms.nbytes + trends.nodes.nbytes + trends.vm_pressure.nbytes,
        "hour_bytes_per_vm": round(trends.vms.nbytes / max(1, vm_count), 1),
        "read_ms_node_and_vm": round(read_ms, 3),
    }
