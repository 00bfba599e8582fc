"""`vmgrid-bench ingest-path`: the manager's Python per report, in process, without gRPC.

Opens N agent sessions on a ClusterManager (no server, no network) and hands it, round after
round, the bytes of the reports that `vmgrid-bench ingest`'s simulated agents send (their
encoder, VMs in columns with the integers in one block, a stream's first report listing its
VMs), each through what the manager's server does with a message: the wire guard's parse and
bounds check (`wire_guard.safe_deserializer`), the stream's `ReportDecoder`, then
`ClusterManager.handle_report`. One round is one report per agent, sent one simulated period
after the last (each agent at its own phase of the period); the bytes of a round are written
before it is timed. It reports, per report, the CPU time of the measured rounds and the time of
each stage (wall time, one stage after the other in this one thread), and the share of a core
the CPU time comes to at one report per agent per period.

What it leaves out is gRPC's share (`vmgrid-bench ingest --floor` measures it) and what runs
between reports in a real manager; there the same Python costs more per report than it does
here, where one report follows the other in a tight loop (see docs/control.md, "Where a
report's time goes"). The figures scale with the machine (see the ``machine`` object).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.main import GC_THRESHOLDS
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.wire_guard import Refused, safe_deserializer
from vmgrid.bench.ingest import hello_message, manager_periods_ms, report_message
from vmgrid.bench.procstat import rss_mb
from vmgrid.v1 import node_pb2

_STAGES = ("parse", "decode", "apply")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, default=2000, help="agent sessions (default 2000)")
    parser.add_argument("--vms-per-agent", type=int, default=20, help="VMs per report (20)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=60,
        help="measured rounds, one report per agent (60: at the default period, two of the "
        "usage trends' 30 s buckets closed in every run)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured rounds first, the first listing VMs (2)"
    )
    parser.add_argument("--period", type=float, default=1.0, help="simulated report period, s (1)")


def _check(args: argparse.Namespace) -> None:
    bad = [
        f"--{name.replace('_', '-')} {getattr(args, name)}"
        for name in ("agents", "vms_per_agent", "rounds", "warmup")
        if getattr(args, name) < 1
    ]
    if args.period <= 0:
        bad.append(f"--period {args.period}")
    if bad:
        raise ValueError(
            f"{', '.join(bad)}: agents, VMs, rounds and warm-up rounds must be at least 1 "
            "(the first round lists the VMs) and the period above 0"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    return ingest(args)[1]


def ingest(args: argparse.Namespace) -> tuple[ClusterManager, dict[str, Any]]:
    """The manager fed every round, and the result line's figures; the process's collector
    runs with the manager's settings meanwhile and with its own again afterwards."""
    _check(args)
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _ingest(args)
    finally:
        gc.set_threshold(*before)


def _ingest(args: argparse.Namespace) -> tuple[ClusterManager, dict[str, Any]]:
    period_ns = int(args.period * 1e9)
    period_ms, heartbeat_ms = manager_periods_ms(args.period)
    manager = ClusterManager(
        ClusterConfig(
            cluster_id="bench", report_period_ms=period_ms, heartbeat_timeout_ms=heartbeat_ms
        )
    )
    parse = safe_deserializer(node_pb2.NodeLinkServiceConnectRequest.FromString)
    agents = []
    for i in range(args.agents):
        node_id = f"bench-{i:05d}"
        session = manager.open_session(codec.decode_hello(hello_message(node_id).hello))
        first = report_message(node_id, args.vms_per_agent, True)
        later = report_message(node_id, args.vms_per_agent, False)
        agents.append((session, codec.ReportDecoder().decode, first, later))
    total_rounds = args.warmup + args.rounds
    start_ns = time.time_ns() - (total_rounds + 1) * period_ns  # reports of the recent past
    spent = dict.fromkeys(_STAGES, 0)
    cpu_s = 0.0
    clock = time.perf_counter_ns  # a stage's wall time; the round's total is CPU time
    for round_ in range(total_rounds):
        wire = []
        for i, (_, _, first, later) in enumerate(agents):
            msg = first if round_ == 0 else later
            msg.report.sequence = round_ + 1
            msg.report.sent_at.FromNanoseconds(
                start_ns + round_ * period_ns + i * period_ns // args.agents
            )
            wire.append(msg.SerializeToString())
        measured = round_ >= args.warmup
        began = time.thread_time()
        for (session, decode, _, _), data in zip(agents, wire, strict=True):
            t0 = clock()
            msg = parse(data)
            t1 = clock()
            if isinstance(msg, Refused):
                raise RuntimeError(f"the bench's own report was refused: {msg.reason}")
            rows = decode(msg.report)
            t2 = clock()
            manager.handle_report(session, rows)
            if measured:
                spent["parse"] += t1 - t0
                spent["decode"] += t2 - t1
                spent["apply"] += clock() - t2
        if measured:
            cpu_s += time.thread_time() - began
    reports = args.agents * args.rounds
    applied = manager.ingest.reports_total
    if applied != args.agents * total_rounds:
        raise RuntimeError(f"{applied} reports applied of {args.agents * total_rounds} handed over")
    per_report_us = cpu_s * 1e6 / reports
    return manager, {
        "agents": args.agents,
        "vms_per_agent": args.vms_per_agent,
        "rounds": args.rounds,
        "reports": reports,
        **{f"{stage}_us_per_report": round(spent[stage] / 1e3 / reports, 2) for stage in _STAGES},
        "us_per_report": round(per_report_us, 2),
        "cores_at_period": round(per_report_us * args.agents / args.period / 1e6, 6),
        "rss_mb": round(rss_mb(os.getpid()), 1),
    }
