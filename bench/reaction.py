"""`vmgrid-bench reaction`: from load appearing on a lab host to the relieving live migration.

Over ``--runs`` overloads (new guests each time, on the same lab and manager), it reports the
reaction's p50 and max (``reaction_s``, ``reaction_max_s``), each stage of it (see STAGES) with
its p50 and max (``held_s_p50``...), lost and duplicated guests over all runs, and each run's
figures (``per_run``). A run not relieved within ``--timeout-s`` counts in ``runs`` but not in
``relieved_runs``, and the next run goes on.

Relief is the first of two observations that a guest already runs on another host: every
host's libvirt polled every 0.2 s until one lists a guest running elsewhere (``seen_s`` in each
run's figures), and the relieving migration's end in the manager's journal (``journaled_s``:
the agent's result, which comes once libvirt's migrate call returned, after the source's
clean-up). Each alone can be late by seconds: a listing waits behind the migration job's lock
on a busy host, and the result behind the source's clean-up.

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
import statistics
import sys
import threading
import time
from datetime import datetime
from typing import Any

from vmgrid.bench.lab_cluster import LabCluster, bench_dir, require_hypervisor
from vmgrid.lab import Lab


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="lab hosts (default 3)")
    parser.add_argument("--guests", type=int, default=2, help="spinning guests (default 2)")
    parser.add_argument(
        "--cpu-millicores", type=int, default=800, help="declared CPU per host (default 800)"
    )
    parser.add_argument("--hold-s", type=float, default=2.0, help="overload hold (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="overloads measured (default 5)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up after this")
    parser.add_argument("--dir", help="lab directory (default: a new one under /tmp)")


OVERLOAD = 0.85
"""The manager's overload threshold (ControlConfig's default, which the lab keeps)."""

STAGES = ("visible_s", "held_s", "decided_s", "started_s", "migrated_s")
"""The stages of one reaction, each from the end of the one before (the first from the
resume): the load shows in the manager's view of the host (its /metrics, polled every 0.1 s,
above 85 %); it has shown there for the hold time without a break (the trigger's condition);
the plan that relieves it is made (the journal's plan created_unix_s: this stage includes any
cycles whose policy saw no host over capacity yet); its first migration starts (the action's
started_unix_s); and that migration is done (its ended_unix_s). ``relief_logged_s`` is when
the manager logged the relief decision, from the resume. ``decided_s`` may be a little below 0:
the manager, which counts the hold on the agent's report clock and decides as soon as a report
completes it, can decide before the bench's 0.1 s poll of /metrics has seen the hold."""


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.hosts < 2 or args.guests < 2:
        raise ValueError(f"--hosts {args.hosts} / --guests {args.guests}: need at least 2 each")
    if args.runs < 1:
        raise ValueError(f"--runs {args.runs}: need at least 1")
    require_hypervisor()
    base = bench_dir(args.dir, "vmgrid-reaction-")
    lab = Lab(base / "lab")
    flags = [
        "--automation=automatic",
        "--period-s=1",
        f"--hold-s={args.hold_s}",
        "--cooldown-s=5",
        "--solver-time-limit-s=2",
        "--log-level=INFO",
    ]
    cluster: LabCluster | None = None
    names: list[str] = []
    runs: list[dict[str, Any]] = []
    try:
        print(f"starting a {args.hosts}-host lab in {base}", file=sys.stderr)
        hosts = lab.start(args.hosts)
        cluster = LabCluster(lab, hosts, base / "procs", flags, args.cpu_millicores)
        for number in range(args.runs):
            names = [f"react{number}x{i}" for i in range(args.guests)]
            for name in names:
                # Pinned to one physical CPU: the spinning guests load host1 (whose declared
                # capacity is --cpu-millicores) without starving the control plane of the other.
                cluster.start_guest(hosts[0], name, "spin", paused=True, cpuset="0")
            if number == 0:
                cluster.start()
                _wait(lambda: _reported(cluster, len(hosts)), 60, "agents to report")
            runs.append(_one_run(cluster, hosts[0].name, names, args, number))
            cluster.remove_guests(names)
            names = []
            time.sleep(6)  # the manager's cooldown (5 s) after the plan
        spreads = {
            stage: _spread([r[stage] for r in runs if r.get(stage) is not None])
            for stage in (*STAGES, "reaction_s")
        }
        outcomes = [r["outcome"] for r in runs]
        return {
            "reaction_s": spreads["reaction_s"]["p50"],
            "reaction_max_s": spreads["reaction_s"]["max"],
            "migration_s": spreads["migrated_s"]["p50"],
            "runs": len(runs),
            "relieved_runs": sum(1 for r in runs if r["reaction_s"] is not None),
            "live_migrations": sum(o["live_migrations"] for o in outcomes),
            "lost_vms": sum(o["lost_vms"] for o in outcomes),
            "duplicated_vms": sum(o["duplicated_vms"] for o in outcomes),
            **{
                f"{stage}_{key}": spread[key]
                for stage, spread in spreads.items()
                if stage != "reaction_s"
                for key in ("p50", "max")
            },
            "per_run": [{k: v for k, v in r.items() if k != "outcome"} for r in runs],
            "placements": [o["placement"] for o in outcomes],
            "hosts": args.hosts,
            "guests": args.guests,
            "hold_s": args.hold_s,
            "domain_type": "kvm" if lab.kvm else "qemu (TCG)",
        }
    finally:
        if cluster is not None:
            cluster.stop()
            cluster.remove_guests(names)
        lab.stop()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


def _one_run(
    cluster: LabCluster, node: str, names: list[str], args: argparse.Namespace, number: int
) -> dict[str, Any]:
    """One overload of `node` by `names` (paused guests there) and its relief, by stages."""
    _wait_quiet(cluster, node, args.hold_s + 2)  # the load must be new
    plans_before = {row[0] for row in cluster.journal_rows("SELECT plan_id FROM plans")}
    log_before = _manager_log_size(cluster)
    print(f"run {number + 1}: resuming {len(names)} spinning guests on {node}", file=sys.stderr)
    visible = _Watch(cluster, node, args.hold_s)
    t0_wall, t0 = time.time(), time.monotonic()
    cluster.resume_guests(cluster.hosts[0], names)
    visible.start()

    def relieved() -> bool:
        return any(h != node for (n, h) in cluster.running() if n in names)

    try:
        _wait(relieved, args.timeout_s, "a guest to leave the overloaded host", period_s=0.2)
        reaction_s: float | None = time.monotonic() - t0
        print(f"relieved after {reaction_s:.1f} s", file=sys.stderr)
    except TimeoutError as exc:  # counted as a run without relief; the next run goes on
        reaction_s = None
        print(f"run {number + 1}: {exc}", file=sys.stderr)
    finally:
        visible.stop()
    time.sleep(3)  # let the manager finish its plan before counting
    placement = cluster.running()
    counts = {n: sum(c for (g, _), c in placement.items() if g == n) for n in names}
    plans = [
        row
        for row in cluster.journal_rows("SELECT plan_id, created_unix_s FROM plans")
        if row[0] not in plans_before
    ]
    migrations = cluster.journal_rows(
        "SELECT plan_id, started_unix_s, ended_unix_s FROM actions "
        "WHERE kind='migrate' AND state='succeeded' ORDER BY ended_unix_s"
    )
    migrations = [m for m in migrations if m[0] in {p[0] for p in plans}]
    first = migrations[0] if migrations else None
    created = next((float(p[1]) for p in plans if first and p[0] == first[0]), None)  # type: ignore[arg-type]
    logged = _first_logged(cluster, log_before, f"above {int(OVERLOAD * 100)} %")
    marks = [
        t0_wall,
        visible.at,
        visible.held_at,
        created,
        float(first[1]) if first and first[1] else None,  # type: ignore[arg-type]
        float(first[2]) if first and first[2] else None,  # type: ignore[arg-type]
    ]
    ended = marks[-1]
    seen = round(reaction_s, 2) if reaction_s is not None else None
    journaled = round(ended - t0_wall, 2) if ended is not None else None
    reaction = relief_s(seen, journaled)
    run: dict[str, Any] = {"reaction_s": reaction, "seen_s": seen, "journaled_s": journaled}
    run["relief_logged_s"] = round(logged - t0_wall, 3) if logged is not None else None
    for stage, (a, b) in zip(STAGES, zip(marks, marks[1:], strict=False), strict=True):
        run[stage] = round(b - a, 3) if a is not None and b is not None else None
    run["outcome"] = {
        "reaction_s": reaction,
        "migration_s": run["migrated_s"],
        "live_migrations": len(migrations),
        "lost_vms": sum(1 for c in counts.values() if c == 0),
        "duplicated_vms": sum(1 for c in counts.values() if c > 1),
        "placement": {f"{n}@{h}": c for (n, h), c in sorted(placement.items())},
    }
    return run


def relief_s(seen: float | None, journaled: float | None) -> float | None:
    """The relief's time: the first of the two observations that a guest already runs on
    another host (see the module's docstring); None when the run was not relieved (the hosts
    never showed it: a journaled migration alone does not count)."""
    if seen is None:
        return None
    return seen if journaled is None else min(seen, journaled)


def _spread(values: list[float]) -> dict[str, float | int | None]:
    """p50 and max of one stage over the runs (None when no run measured it)."""
    if not values:
        return {"p50": None, "max": None, "n": 0}
    return {
        "p50": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


class _Watch:
    """Polls the manager's view of `node` every 0.1 s in a thread: ``at`` is the wall time at
    which it first saw the node above the overload threshold, ``held_at`` the first at which it
    had seen it above for `hold_s` without a break (the trigger's condition, on this clock)."""

    def __init__(self, cluster: LabCluster, node: str, hold_s: float) -> None:
        self._cluster, self._node, self._hold_s = cluster, node, hold_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.at: float | None = None
        self.held_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        since: float | None = None
        while not self._stop.is_set() and self.held_at is None:
            fraction = self._cluster.node_cpu_fraction(self._node)
            now = time.time()
            if fraction is not None and fraction > OVERLOAD:
                self.at = self.at or now
                since = since or now
                if now - since >= self._hold_s:
                    self.held_at = now
            else:
                since = None
            self._stop.wait(0.1)


def _manager_log_size(cluster: LabCluster) -> int:
    path = cluster.workdir / f"manager-{cluster.manager_starts}.log"
    return path.stat().st_size if path.exists() else 0


def _first_logged(cluster: LabCluster, offset: int, words: str) -> float | None:
    """Wall time of the manager's first log line after `offset` bytes that holds `words`
    (its lines start with logging's local asctime, "2026-01-02 03:04:05,678")."""
    path = cluster.workdir / f"manager-{cluster.manager_starts}.log"
    with path.open("rb") as log:
        log.seek(offset)
        for raw in log:
            line = raw.decode(errors="replace")
            if words in line:
                try:
                    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                except ValueError:
                    continue
                return stamp.timestamp()
    return None


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
