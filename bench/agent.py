"""`vmgrid-bench agent`: footprint of one real node agent process on a test node or a lab host.

Starts a real `vmgrid-cluster` (plaintext, free loopback port) and a real `vmgrid-agent`
reporting every period, on one of two nodes (``--driver``, ``driver`` and ``domain_type`` in the
JSON). ``test``: a generated N-VM test-driver node with a random-walk load; libvirt's test
driver runs inside the process that opens it, so the simulated node's state is in the agent's
RSS. ``kvm``: a one-host lab (bench/agent_lab.py) running N idle guests under KVM, else TCG;
the agent reaches that host's libvirtd over its socket, as on a real host. It waits for the
agent's first memory settling (logged SETTLE_FIRST_S after its start, see
agents/node/footprint.py), lets it run WARMUP_S more, then measures the agent's CPU time and
resident memory from /proc over the window: RSS at the end and its peak since the agent started
(``peak_rss_mb``, VmHWM: start-up included), RSS at the start of the window and the largest
sample in it (``rss_first_mb``, ``rss_max_mb``), and the least-squares slope of RSS sampled every
10 s (``rss_slope_mb_per_h``; flat memory reads near 0 over a long window, e.g.
``--seconds 1800``). Targets: <= 50 MB RSS and <= 1 % of one core for 50 VMs at a 1 s period.

RSS counts every mapped page, including the shared libraries' code (gRPC's cygrpc, libvirt and
its dependencies, libpython), which other processes on the node map too; the last line also gives
the agent's own pages (``uss_mb``, private), its proportional share (``pss_mb``) and the shared
clean pages (``shared_file_mb``), read from /proc/PID/smaps_rollup at the end of the window.

The agent runs as installed: before it starts, vmgrid's packages are byte-compiled, as pip does
when it installs vmgrid. An editable install in an environment with PYTHONDONTWRITEBYTECODE set
never writes them, and its agent would compile every vmgrid module from source at each start,
which costs about 0.6 MB of heap no installed agent has (``bytecode_compiled`` says how many
modules were missing or stale).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vmgrid.agents.node.footprint import SETTLE_FIRST_S, SETTLE_PERIOD_S
from vmgrid.agents.node.testnode import write_node_xml
from vmgrid.bench.agent_lab import lab_node, libvirt_open_cost
from vmgrid.bench.procstat import cpu_seconds, status_kib

WARMUP_S = 5.0
"""Seconds between the agent's first memory settling (agents/node/footprint.py, which it logs
SETTLE_FIRST_S after its start) and the window, so the window sees the agent as it runs, not as
it starts."""

SETTLE_WAIT_S = 120.0
"""How long the agent (or the floor) may take to log its first settling: its start-up and
SETTLE_FIRST_S, on a loaded machine."""

RSS_SAMPLE_S = 10.0
"""How often the agent's RSS is read over the window (for rss_first_mb and the slope)."""
CONNECT_TIMEOUT_S = 60.0
"""How long the agent (or the floor) may take to start and connect before the warmup begins."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vms", type=int, default=50, help="VMs on the node (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window, s")
    parser.add_argument("--period", type=float, default=1.0, help="agent report period, s")
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_S,
        help=f"seconds between the agent's first memory settling and the window (default {WARMUP_S:g})",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="measure FLOOR_PROGRAM instead of the agent: only the libraries it cannot do without",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="add rss_by_mapping_mb: the agent's RSS at the end by mapping (largest first)",
    )
    parser.add_argument(
        "--driver",
        choices=("test", "kvm"),
        default="test",
        help="test: a generated test-driver node inside the agent's process (default); kvm: a "
        "one-host lab's libvirtd with --vms idle guests (KVM, else TCG: see domain_type)",
    )
    parser.add_argument(
        "--lab-parent",
        help="with --driver kvm: make the lab's directory under this one (default /tmp; the lab "
        "user must be able to reach it, and its sockets' paths must stay under 108 bytes)",
    )
    parser.add_argument(
        "--rss-trace",
        action="store_true",
        help=f"add rss_trace_mb: the agent's RSS every {RSS_SAMPLE_S:g} s over the window",
    )
    parser.add_argument(
        "--open-cost",
        action="store_true",
        help="add libvirt_open_cost: RSS a bare Python process adds by opening the node's URI",
    )


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            raise ValueError(f"vmgrid-cluster exited with code {process.returncode}")
        time.sleep(0.05)
    raise ValueError(f"vmgrid-cluster did not start within {timeout_s} s")


def _wait_for_line(
    log: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float
) -> None:
    """Until `text` appears in `log`, written by `process` (and others)."""
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise ValueError(f"the measured process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise ValueError(f"the measured process did not log {text!r} within {timeout_s} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rollup_kib(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup's kB fields (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key] = int(parts[0])
    return fields


BREAKDOWN_TOP = 12
"""Mappings named in rss_by_mapping_mb; the rest are summed under "other"."""


def rss_by_mapping_mb(smaps: str, top: int = BREAKDOWN_TOP) -> dict[str, float]:
    """RSS per mapping from /proc/PID/smaps text, in MiB: file mappings by file name (all of a
    library's segments together), [heap], [stack], and "[anon]" for anonymous memory (Python's
    object arenas, thread malloc arenas and stacks); the `top` largest, then "other"."""
    totals: dict[str, int] = {}
    name = "[anon]"
    for line in smaps.splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
            name = head[5].rsplit("/", 1)[-1] if len(head) > 5 else "[anon]"
        elif head and head[0] == "Rss:":
            totals[name] = totals.get(name, 0) + int(head[1])
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    shown = {key: round(kib / 1024, 1) for key, kib in ranked[:top] if kib}
    rest = sum(kib for _, kib in ranked[top:])
    if rest:
        shown["other"] = round(rest / 1024, 1)
    return shown


FLOOR_PROGRAM = """
import asyncio, sys, time
from vmgrid.agents.node import footprint
footprint.limit_arenas()
import grpc, grpc.aio, libvirt
from vmgrid.v1 import node_pb2, node_pb2_grpc

async def main(uri, target, period, settle_first, settle_every):
    settle_at = time.monotonic() + settle_first  # from its start, as the agent's
    conn = libvirt.open(uri)
    channel = grpc.aio.insecure_channel(target)
    await channel.channel_ready()
    print("floor: channel ready", file=sys.stderr, flush=True)
    while True:
        await asyncio.to_thread(conn.getAllDomainStats)
        if time.monotonic() >= settle_at:
            settle_at, first = time.monotonic() + settle_every, settle_first >= 0
            footprint.settle()
            if first:
                print("floor: memory settled", file=sys.stderr, flush=True)
                settle_first = -1
        await asyncio.sleep(period)

asyncio.run(main(sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])))
"""
"""With --floor: what any Python agent on this stack pays before its own code. It imports
asyncio, gRPC (aio) and libvirt and the node service's protobuf modules, opens the same test
node, reads every domain's stats each period and holds a ready channel to the manager, but
streams nothing. Its memory is settled as the agent's is (agents/node/footprint.py: malloc
arenas capped, then garbage, free malloc pages and start-up's file pages released at the
agent's times). The agent's RSS minus this one is what vmgrid's own code and state cost."""


def bytecode_is_fresh(source: Path) -> bool:
    """Whether the interpreter would load ``source``'s cached bytecode rather than compile it:
    the cache file exists with this interpreter's magic number, and its header records the
    source's mtime and size (the check importlib makes for a timestamp-based .pyc)."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    try:
        header = cached.read_bytes()[:16]
    except OSError:
        return False
    stat = source.stat()
    return (
        len(header) == 16
        and header[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == 0  # timestamp-based, not hash-based
        and int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
    )


def agent_sources() -> list[Path]:
    """The source files of vmgrid's packages the agent imports from (vmgrid.agents, vmgrid.v1)."""
    import vmgrid.agents
    import vmgrid.v1

    roots = (*vmgrid.agents.__path__, *vmgrid.v1.__path__)
    return sorted(source for root in roots for source in Path(root).rglob("*.py"))


def compile_bytecode() -> int:
    """Byte-compile the agent's vmgrid sources whose bytecode is missing or stale, as pip does
    on install; returns how many it wrote (where the interpreter reads them: ``__pycache__``,
    or sys.pycache_prefix)."""
    written = 0
    for source in agent_sources():
        if bytecode_is_fresh(source):
            continue
        if not compileall.compile_file(source, quiet=2, force=True):
            raise ValueError(f"cannot byte-compile {source}")
        written += 1
    return written


def _rss_trace(agent: subprocess.Popen[bytes], until: float) -> list[tuple[float, float]]:
    """(monotonic s, agent RSS MiB) every RSS_SAMPLE_S until `until` (at least one sample)."""
    trace: list[tuple[float, float]] = []
    while True:
        if agent.poll() is not None:
            raise ValueError(f"vmgrid-agent exited early with code {agent.returncode}")
        now = time.monotonic()
        trace.append((now, status_kib(agent.pid, "VmRSS") / 1024))
        if now >= until:
            return trace
        time.sleep(min(RSS_SAMPLE_S, max(0.0, until - now)))


def _slope(trace: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MiB per second (0 with fewer than 2 samples)."""
    if len(trace) < 2:
        return 0.0
    t0 = trace[0][0]
    xs = [t - t0 for t, _ in trace]
    ys = [r for _, r in trace]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.vms < 1 or args.seconds <= 0 or args.period <= 0:
        raise ValueError("--vms, --seconds and --period must be positive")
    compiled = compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="vmgrid-bench-agent-") as tmp:
        work = Path(tmp)
        with _node(args, work) as (uri, domain_type):
            figures = _measure(args, uri, work)
            if args.open_cost:
                figures["libvirt_open_cost"] = libvirt_open_cost(uri)
    breakdown = figures.pop("rss_by_mapping_mb", None)
    rss_trace = figures.pop("rss_trace_mb", None)
    open_cost = figures.pop("libvirt_open_cost", None)
    return {
        **figures,
        "vms": args.vms,
        "period_s": args.period,
        **({"floor": True} if args.floor else {}),
        "driver": args.driver,
        "domain_type": domain_type,
        "seconds": args.seconds,
        "bytecode_compiled": compiled,
        "target": {"rss_mb": 50, "cpu_percent": 1.0},
        **({"rss_by_mapping_mb": breakdown} if breakdown is not None else {}),
        **({"rss_trace_mb": rss_trace} if rss_trace is not None else {}),
        **({"libvirt_open_cost": open_cost} if open_cost is not None else {}),
    }


@contextlib.contextmanager
def _node(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, str]]:
    """(libvirt URI, domain type) of the node the agent watches: a generated test-driver node,
    or a one-host lab running --vms idle guests (stopped on exit)."""
    if args.driver == "test":
        node = write_node_xml(work / "node.xml", "bench", args.vms, cpus=64)
        yield f"test://{node}", "test"
        return
    with lab_node(args.vms, args.lab_parent) as (host, domain_type):
        yield host.uri, domain_type


def _measure(args: argparse.Namespace, uri: str, work: Path) -> dict[str, Any]:
    """Runs a manager and the agent (or the floor) on `uri`; the agent's figures."""
    config = work / "agent.toml"
    config.write_text(  # used by the agent on test-driver nodes only
        "[load]\nseed = 1\n"
        'default = { cpu = { kind = "random_walk", start = 40, step = 10, interval_s = 1 },'
        " net_rx = 10, net_tx = 10 }\n"
    )
    ready = work / "manager.addr"
    logs = (work / "manager.log").open("wb")  # both processes log here
    manager = subprocess.Popen(
        [sys.executable, "-m", "vmgrid.agents.cluster.service.main", "--insecure"]
        + ["--listen", "127.0.0.1:0", "--ready-file", str(ready)],
        stdout=logs,
        stderr=logs,
    )
    agent: subprocess.Popen[bytes] | None = None
    try:
        address = _wait_for_file(ready, manager, 60)
        if args.floor:
            command = [sys.executable, "-c", FLOOR_PROGRAM, uri, address, str(args.period)]
            command += [str(SETTLE_FIRST_S), str(SETTLE_PERIOD_S)]
        else:
            command = [sys.executable, "-m", "vmgrid.agents.node.main", "--insecure"]
            command += ["--config", str(config), "--manager", address]
            command += ["--node-id", "bench-node", "--libvirt-uri", uri]
            command += ["--period", str(args.period)]
        agent = subprocess.Popen(command, stdout=logs, stderr=logs)
        connected = "floor: channel ready" if args.floor else "connected to manager"
        print(f"agent pid {agent.pid}: waiting for it to connect and settle", file=sys.stderr)
        _wait_for_line(work / "manager.log", connected, agent, CONNECT_TIMEOUT_S)
        _wait_for_line(work / "manager.log", "memory settled", agent, SETTLE_WAIT_S)
        print(f"settled; warming up {args.warmup} s", file=sys.stderr)
        time.sleep(args.warmup)
        cpu_before, wall_before = cpu_seconds(agent.pid)[0], time.monotonic()
        print(f"measuring for {args.seconds} s", file=sys.stderr)
        trace = _rss_trace(agent, wall_before + args.seconds)
        cpu_after, wall_after = cpu_seconds(agent.pid)[0], time.monotonic()
        if agent.poll() is not None:
            raise ValueError(f"vmgrid-agent exited early with code {agent.returncode}")
        rss_kib, peak_kib = status_kib(agent.pid, "VmRSS"), status_kib(agent.pid, "VmHWM")
        rollup = _rollup_kib(agent.pid)
        smaps = Path(f"/proc/{agent.pid}/smaps").read_text() if args.breakdown else ""
    finally:
        if agent is not None:
            _stop(agent)
        _stop(manager)
        logs.close()
    cpu_percent = 100.0 * (cpu_after - cpu_before) / (wall_after - wall_before)
    return {
        "rss_mb": round(rss_kib / 1024, 1),
        "cpu_percent": round(cpu_percent, 2),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "rss_first_mb": round(trace[0][1], 1),
        "rss_max_mb": round(max(rss for _, rss in trace), 1),
        "rss_slope_mb_per_h": round(_slope(trace) * 3600, 2),
        "uss_mb": round((rollup["Private_Clean"] + rollup["Private_Dirty"]) / 1024, 1),
        "pss_mb": round(rollup["Pss"] / 1024, 1),
        "shared_file_mb": round(rollup["Shared_Clean"] / 1024, 1),
        **({"rss_by_mapping_mb": rss_by_mapping_mb(smaps)} if args.breakdown else {}),
        **({"rss_trace_mb": [round(rss, 1) for _, rss in trace]} if args.rss_trace else {}),
    }
