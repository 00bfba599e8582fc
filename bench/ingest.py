"""`vmgrid-bench ingest`: report ingestion by a real cluster manager process from N agents.

Starts ``vmgrid-cluster --insecure`` on a free loopback port, then drives N simulated agents
(real NodeLinkService streams; agents spread over a few processes, each multiplexing its
streams over several channels with grpc.aio). After every agent is connected and a warm-up,
it resets the manager's ingest counters, measures for ``--seconds`` and reads back:
reports/s (applied by the manager; ``sent_per_s`` are those the agents wrote in the same window,
and ``not_applied`` how many more were written than applied in it: reports still queued or in
flight at the window's end, or lost), p50/p99 latency (manager apply time minus the report's sent_at, same clock),
the manager's CPU (cores, from /proc/PID/stat, its decision processes included; of it, its
event loop's thread; the rest is gRPC's threads), the CPU of the processes playing the agents
(``driver_cpu_cores``: the load generator shares the machine's cores with the manager, so a
manager figure is read beside it), the manager's minor page faults per second (each first write
to a page shared with a forked decision process faults) and its RSS (MiB, from
/proc/PID/status), and, from its /metrics, how many decisions it made in the window and
how long they took (the decision loop runs unless ``--manager-flag=--no-decisions``).

``--floor`` drives a bare grpc.aio server instead (``ingest_floor.py``: it parses each report
and drops it), whose CPU is what receiving the load costs before the manager does anything.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
import urllib.request
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec import ReportEncoder
from vmgrid.agents.node.cadence import next_report_in_s, report_phase_s
from vmgrid.bench import ingest_floor
from vmgrid.bench.ports import free_port
from vmgrid.bench.procstat import cpu_seconds, main_thread_seconds, minor_faults, rss_mb
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, node_pb2, node_pb2_grpc

AGENTS_PER_CHANNEL = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, default=100, help="simulated agents (default 100)")
    parser.add_argument("--vms-per-agent", type=int, default=20, help="VMs per report (20)")
    parser.add_argument("--period", type=float, default=1.0, help="report period, s (1.0)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time, s (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured time, s (3)")
    parser.add_argument(
        "--driver-processes", type=int, default=2, help="processes playing agents (2)"
    )
    parser.add_argument(
        "--manager-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra vmgrid-cluster flag, repeatable (e.g. --manager-flag=--no-decisions)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="drive a bare grpc.aio server that parses and drops the reports instead of the "
        "manager: gRPC's own cost under the same load, the floor under the manager's figure "
        "(no latency or decision figures)",
    )


def _check(args: argparse.Namespace) -> None:
    for name in ("agents", "vms_per_agent", "driver_processes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: {getattr(args, name)} must be >= 1")
    for name in ("period", "seconds"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name}: {getattr(args, name)} must be > 0")


# ---- driver processes ---------------------------------------------------------------------


def hello_message(node_id: str) -> node_pb2.NodeLinkServiceConnectRequest:
    return node_pb2.NodeLinkServiceConnectRequest(
        hello=node_pb2.NodeHello(
            node_id=node_id,
            hostname=node_id,
            migration_uri="test:///default",
            hypervisor_kind="test",
            simulated=True,
            capacity=node_pb2.NodeCapacity(
                cpu_millicores=64000, memory_bytes=256 * 2**30, nic_bandwidth_bps=10**10
            ),
        )
    )


def report_message(node_id: str, vms: int, listed: bool) -> node_pb2.NodeLinkServiceConnectRequest:
    """A report as agents send it (their encoder, in columns with the integers in one block):
    `listed`, with the VMs' uuids and names (a stream's first report), else saying they are
    the same (every later one)."""
    names = [f"{node_id}-vm{j:03d}" for j in range(vms)]
    usage = tuple(
        m.VmUsage(n, n, m.VmState.RUNNING, 2, 500 + j, 2**30, 2**31, 1000, 2000, 0, 0, True)
        for j, n in enumerate(names)
    )
    report = m.NodeReport(0, 0, m.HostUsage(20000, 100 * 2**30, 256 * 2**30, 0, 0), usage)
    encoder = ReportEncoder()
    msg = encoder.encode(report)
    return node_pb2.NodeLinkServiceConnectRequest(report=msg if listed else encoder.encode(report))


async def _agent(
    stub: node_pb2_grpc.NodeLinkServiceStub,
    node_id: str,
    vms: int,
    period_s: float,
    stop: MpEvent,
    sent: list[int],
) -> None:
    """One simulated agent: connects at its phase and, like a real agent, reports at once on
    each connection and then at its node's phase of the period (cadence.py), and reconnects
    after a failure (backing off up to 2 s) until stopped. Counts the reports it wrote in
    `sent`."""
    phase_s = report_phase_s(node_id, period_s)
    await asyncio.sleep(phase_s)
    first, later = report_message(node_id, vms, True), report_message(node_id, vms, False)
    loop = asyncio.get_running_loop()
    sequence = 0
    attempt = 0
    while not stop.is_set():
        try:
            call = stub.Connect()
            await call.write(hello_message(node_id))
            await call.read()  # hello ack
            attempt = 0
            msg = first  # a new stream: list the VMs again, at once
            while not stop.is_set():
                report = msg.report
                sequence += 1
                report.sequence = sequence
                report.sent_at.FromNanoseconds(time.time_ns())
                await call.write(msg)
                msg = later
                sent[0] += 1
                await asyncio.sleep(next_report_in_s(loop.time(), period_s, phase_s))
            await call.done_writing()
            return
        except grpc.aio.AioRpcError:
            attempt += 1
            await asyncio.sleep(min(2.0, 0.2 * attempt))


async def _drive(
    address: str,
    first: int,
    count: int,
    vms: int,
    period_s: float,
    stop: MpEvent,
    sent_total: Any,
) -> None:
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range((count + AGENTS_PER_CHANNEL - 1) // AGENTS_PER_CHANNEL)
    ]
    stubs = [node_pb2_grpc.NodeLinkServiceStub(c) for c in channels]
    sent = [0]
    tasks = [
        asyncio.create_task(
            _agent(
                stubs[i // AGENTS_PER_CHANNEL],
                f"bench-{first + i:05d}",
                vms,
                period_s,
                stop,
                sent,
            )
        )
        for i in range(count)
    ]

    async def publish() -> None:  # the reports written so far, for the parent to read
        while not stop.is_set():
            sent_total.value = sent[0]
            await asyncio.sleep(0.05)

    publisher = asyncio.create_task(publish())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    publisher.cancel()
    sent_total.value = sent[0]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"ingest: {len(failures)} agents failed, e.g. {failures[0]!r}", file=sys.stderr)
    for channel in channels:
        await channel.close()


def _driver_main(
    address: str,
    first: int,
    count: int,
    vms: int,
    period_s: float,
    stop: MpEvent,
    sent_total: Any,
) -> None:
    asyncio.run(_drive(address, first, count, vms, period_s, stop, sent_total))


# ---- manager process ----------------------------------------------------------------------


def _window(manager: int, drivers: list[int]) -> tuple[float, float, float, float, int]:
    """What the window's figures are differences of: the manager's own and reaped children's
    CPU, its loop thread's, the drivers' (the load generator's), and its minor faults."""
    own, children = cpu_seconds(manager)
    driver_cpu = sum(sum(cpu_seconds(pid)) for pid in drivers)
    return own, children, main_thread_seconds(manager), driver_cpu, minor_faults(manager)


def _decisions(metrics_address: str, floor: bool = False) -> tuple[float, float]:
    """(decisions made, seconds spent deciding) so far, from the manager's /metrics (none
    for the floor's bare server)."""
    if floor:
        return 0.0, 0.0
    url = f"http://{metrics_address}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    values = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for key in values:
            if line.startswith(f"vmgrid_cluster_solve_duration_seconds_{key} "):
                values[key] = float(line.split()[1])
    return values["count"], values["sum"]


def manager_periods_ms(period_s: float) -> tuple[int, int]:
    """(report period, heartbeat timeout) in ms of a manager whose agents report every
    `period_s`: the timeout ten periods, at least 10 s."""
    period_ms = max(1, int(period_s * 1000))
    return period_ms, max(10000, 10 * period_ms)


def _start_manager(
    workdir: str, period_s: float, extra: list[str], metrics_address: str
) -> tuple[subprocess.Popen[bytes], str]:
    ready = Path(workdir) / "address"
    period_ms, heartbeat_ms = manager_periods_ms(period_s)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmgrid.agents.cluster.service.main",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            str(ready),
            "--report-period-ms",
            str(period_ms),
            "--heartbeat-timeout-ms",
            str(heartbeat_ms),
            "--log-level",
            "WARNING",
            "--state-dir",
            workdir,
            "--metrics-listen",
            metrics_address,
            *extra,
        ]
    )
    return proc, ingest_floor.wait_for_address(proc, ready, "vmgrid-cluster")


async def _stats(address: str, reset: bool) -> cluster_pb2.GetIngestStatsResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        return await stub.GetIngestStats(cluster_pb2.GetIngestStatsRequest(reset=reset), timeout=30)


def _progress(text: str) -> None:
    print(f"ingest: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    _check(args)
    with tempfile.TemporaryDirectory(prefix="vmgrid-bench-") as workdir:
        metrics_address = f"127.0.0.1:{free_port()}"
        if args.floor:
            manager, address = ingest_floor.start(workdir)
        else:
            manager, address = _start_manager(
                workdir, args.period, args.manager_flag, metrics_address
            )
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        drivers = []
        counters: list[Any] = []
        try:
            per = (args.agents + args.driver_processes - 1) // args.driver_processes
            for first in range(0, args.agents, per):
                count = min(per, args.agents - first)
                counter = ctx.Value("q", 0, lock=False)
                counters.append(counter)
                proc = ctx.Process(
                    target=_driver_main,
                    args=(address, first, count, args.vms_per_agent, args.period, stop, counter),
                )
                proc.start()
                drivers.append(proc)
            _progress(f"manager pid {manager.pid} on {address}; connecting {args.agents} agents")
            deadline = time.monotonic() + 120 + 0.05 * args.agents  # 370 s for 5,000
            while (connected := asyncio.run(_stats(address, False)).connected_nodes) < args.agents:
                if manager.poll() is not None:
                    raise RuntimeError(f"vmgrid-cluster exited with code {manager.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {connected}/{args.agents} agents connected")
                _progress(f"{connected}/{args.agents} agents connected")
                time.sleep(2)
            _progress(f"all connected; warm-up {args.warmup} s")
            time.sleep(args.warmup)
            # /metrics is read outside the window: a scrape of 2,000 nodes costs the manager
            # tens of milliseconds, which would show in the latencies measured.
            decisions_start, decide_s_start = _decisions(metrics_address, args.floor)
            time.sleep(2.0)  # reports held up by that scrape are applied before the reset
            asyncio.run(_stats(address, True))
            driver_pids = [proc.pid for proc in drivers if proc.pid is not None]
            start, t_start = _window(manager.pid, driver_pids), time.monotonic()
            sent_start = sum(c.value for c in counters)
            _progress(f"measuring {args.seconds} s")
            time.sleep(args.seconds)
            stats = asyncio.run(_stats(address, False))
            sent = sum(c.value for c in counters) - sent_start
            elapsed = time.monotonic() - t_start
            end = _window(manager.pid, driver_pids)
            rss = rss_mb(manager.pid)
            decisions, decide_s = _decisions(metrics_address, args.floor)
            own, children, loop_thread, driver_cpu, faults = (
                b - a for a, b in zip(start, end, strict=True)
            )
            cpu = (own + children) / elapsed
        finally:
            stop.set()
            for proc in drivers:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
            manager.terminate()
            try:
                manager.wait(10)
            except subprocess.TimeoutExpired:
                manager.kill()
    return {
        "floor": args.floor,
        "agents": args.agents,
        "vms_per_agent": args.vms_per_agent,
        "period_s": args.period,
        "seconds": round(elapsed, 2),
        "reports_per_s": round(stats.reports_total / elapsed, 1),
        "expected_reports_per_s": round(args.agents / args.period, 1),
        "p50_ms": round(stats.latency_p50_ms, 2),
        "p99_ms": round(stats.latency_p99_ms, 2),
        "max_ms": round(stats.latency_max_ms, 2),
        "rejected": stats.rejected_total,
        "sent_per_s": round(sent / elapsed, 1),
        "not_applied": max(0, sent - stats.reports_total),
        "manager_cpu_cores": round(cpu, 3),
        "decision_process_cpu_cores": round(children / elapsed, 3),
        "manager_loop_thread_cpu_cores": round(loop_thread / elapsed, 3),
        "driver_cpu_cores": round(driver_cpu / elapsed, 3),
        "manager_minor_faults_per_s": round(faults / elapsed),
        "manager_rss_mb": round(rss, 1),
        "decisions": int(decisions - decisions_start),
        "decide_s": round(decide_s - decide_s_start, 2),
    }
