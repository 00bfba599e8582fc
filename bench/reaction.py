"""`vmgrid-bench reaction`: from load appearing on a lab host to the relieving live migration.

Starts a KVM lab of `--hosts` hosts, one `vmgrid-agent` per host (declaring `--cpu-millicores`
and counting only its guests' CPU, since the hosts share this machine) and one
`vmgrid-cluster` in automatic mode (1 s reports, short hold). `--guests` spinning guests are
started *paused* on host1, so they cost nothing until the clock starts; then they are all
resumed at once (the load appears) and every host's libvirt is polled until a guest runs on
another host (the relieving live migration is complete). `migration_s` is that migration's
duration from the manager's journal; lost/duplicated guests are counted on every host's libvirt
after the manager has settled.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from vmgrid.bench.lab_cluster import LabCluster
from vmgrid.lab import Lab, hypervisor_unavailable_reason


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="lab hosts (default 3)")
    parser.add_argument("--guests", type=int, default=2, help="spinning guests (default 2)")
    parser.add_argument(
        "--cpu-millicores", type=int, default=800, help="declared CPU per host (default 800)"
    )
    parser.add_argument("--hold-s", type=float, default=2.0, help="overload hold (default 2)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up after this")
    parser.add_argument("--dir", help="lab directory (default: a new one under /tmp)")


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.hosts < 2 or args.guests < 2:
        raise ValueError(f"--hosts {args.hosts} / --guests {args.guests}: need at least 2 each")
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        raise ValueError(f"no KVM and no TCG here: {reason}")
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="vmgrid-reaction-"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    lab = Lab(base / "lab")
    names = [f"react{i}" for i in range(args.guests)]
    flags = [
        "--automation=automatic",
        "--period-s=1",
        f"--hold-s={args.hold_s}",
        "--cooldown-s=5",
        "--solver-time-limit-s=2",
        "--log-level=INFO",
    ]
    cluster: LabCluster | None = None
    try:
        print(f"starting a {args.hosts}-host lab in {base}", file=sys.stderr)
        hosts = lab.start(args.hosts)
        cluster = LabCluster(lab, hosts, base / "procs", flags, args.cpu_millicores)
        for name in names:
            # Pinned to one physical CPU: the spinning guests load host1 (whose declared
            # capacity is --cpu-millicores) without starving the control plane of the other.
            cluster.start_guest(hosts[0], name, "spin", paused=True, cpuset="0")
        cluster.start()
        _wait(lambda: _reported(cluster, len(hosts)), 60, "agents to report")
        _wait_quiet(cluster, hosts[0].name, args.hold_s + 2)  # the load must be new
        print(f"resuming {len(names)} spinning guests on {hosts[0].name}", file=sys.stderr)
        t0 = time.monotonic()
        cluster.resume_guests(hosts[0], names)

        def relieved() -> bool:
            return any(h != hosts[0].name for (n, h) in cluster.running() if n in names)

        _wait(relieved, args.timeout_s, "a guest to leave the overloaded host", period_s=0.2)
        reaction_s = time.monotonic() - t0
        print(f"relieved after {reaction_s:.1f} s", file=sys.stderr)
        time.sleep(3)  # let the manager finish its plan before counting
        placement = cluster.running()
        counts = {n: sum(c for (g, _), c in placement.items() if g == n) for n in names}
        migrations = cluster.journal_rows(
            "SELECT started_unix_s, ended_unix_s FROM actions "
            "WHERE kind='migrate' AND state='succeeded' ORDER BY ended_unix_s"
        )
        first = migrations[0] if migrations else (0.0, 0.0)
        return {
            "reaction_s": round(reaction_s, 2),
            "migration_s": round(float(first[1] or 0) - float(first[0] or 0), 2),  # type: ignore[arg-type]
            "live_migrations": len(migrations),
            "lost_vms": sum(1 for c in counts.values() if c == 0),
            "duplicated_vms": sum(1 for c in counts.values() if c > 1),
            "hosts": args.hosts,
            "guests": args.guests,
            "hold_s": args.hold_s,
            "domain_type": "kvm" if lab.kvm else "qemu (TCG)",
            "placement": {f"{n}@{h}": c for (n, h), c in sorted(placement.items())},
        }
    finally:
        if cluster is not None:
            cluster.stop()
            cluster.remove_guests(names)
        lab.stop()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


def _wait_quiet(cluster: LabCluster, node: str, quiet_s: float) -> None:
    """Wait until the manager has seen `node` below half its CPU for `quiet_s` seconds (QEMU
    start-up shows as guest CPU at first), so no overload is pending when the clock starts."""
    deadline = time.monotonic() + 90
    since: float | None = None
    while time.monotonic() < deadline:
        fraction = cluster.node_cpu_fraction(node)
        now = time.monotonic()
        if fraction is not None and fraction < 0.5:
            since = since if since is not None else now
            if now - since >= quiet_s:
                return
        else:
            since = None
        time.sleep(0.25)
    raise TimeoutError(f"{node} did not become quiet within 90 s")


def _reported(cluster: LabCluster, hosts: int) -> bool:
    return cluster.connected_agents() >= hosts


def _wait(check: object, timeout_s: float, what: str, period_s: float = 0.5) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(period_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
