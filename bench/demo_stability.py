"""`vmgrid-bench demo-stability`: does the demo's decision loop keep its band without churn?

Runs the demo grid (``vmgrid-demo``'s own start-up: clusters c1 and c2 of test-driver nodes
whose VMs replay PlanetLab traces, the HA act unless ``--no-ha-scenario``) for ``--minutes``,
samples cluster c1 every ``--sample-s`` seconds and reads its plan journal at the end:

- ``migrations_per_hour``: migrations c1's journal started during the run, per hour;
- ``ping_pong_moves``: migrations that took a VM back to a node it had left during the run;
- ``max_node_cpu_above_band_s``: the longest time a connected node's CPU stayed above the
  band's top (``cpu_high``) while no plan was running (a running plan resets the count: it is
  the relief); the loop needs its hold time (``hold_s``) plus up to one cycle to start relief;
- ``rules_violated``: rules (not reported impossible) seen broken in any sample, and the
  samples in which one was;
- the policy, the loop's period and hold time, node and VM counts, the HA act's outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.agents.cluster.state.solver_view import memory_fraction, to_model
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.demo import main as demo

CLUSTER = "c1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (30)")
    parser.add_argument("--nodes", type=int, default=4, help="simulated nodes in c1 (4)")
    parser.add_argument("--vms-per-node", type=int, default=5, help="VMs per node (5)")
    parser.add_argument("--sample-s", type=float, default=1.0, help="seconds between samples")
    parser.add_argument(
        "--ha-scenario",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="play the demo's node failure act (default: on)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="operator policy on top of the demo's (repeatable)",
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.minutes <= 0:
        raise ValueError(f"--minutes {args.minutes!r} must be > 0")
    argv = ["--nodes", str(args.nodes), "--vms-per-node", str(args.vms_per_node)]
    argv += ["--ha-scenario" if args.ha_scenario else "--no-ha-scenario"]
    for setting in args.policy:
        argv += ["--policy", setting]
    demo_args = demo.build_parser().parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # the demo's banner and act go to stderr
        return asyncio.run(_measure(demo_args, args.minutes * 60, args.sample_s))


class _Watch:
    """What the samples of c1 found."""

    def __init__(self, runtime: ClusterRuntime) -> None:
        self.runtime = runtime
        self.streak: dict[str, float] = {}
        self.longest = 0.0
        self.longest_node = ""
        self.above_total_s = 0.0
        self.broken: set[str] = set()
        self.broken_samples = 0
        self.samples = 0
        self.max_cpu = 0.0

    def sample(self, dt: float) -> None:
        runtime = self.runtime
        state = runtime.manager.state
        policy = runtime.loop.config.operator_policy
        busy = runtime.loop.running is not None or bool(runtime.executor.in_flight)
        snapshot = state.snapshot(copy_history=False)
        self.samples += 1
        for view in snapshot.nodes:
            if view.status is not NodeStatus.CONNECTED or view.usage is None:
                self.streak.pop(view.node_id, None)
                continue
            cpu = view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores)
            self.max_cpu = max(self.max_cpu, cpu)
            above = cpu > policy.cpu_high or memory_fraction(view) > policy.memory_high
            if above:
                self.above_total_s += dt
            if above and not busy:
                streak = self.streak.get(view.node_id, 0.0) + dt
                self.streak[view.node_id] = streak
                if streak > self.longest:
                    self.longest, self.longest_node = streak, view.node_id
            else:
                self.streak[view.node_id] = 0.0
        broken = violations(state.rules.kept(), to_model(snapshot))
        if broken:
            self.broken_samples += 1
            self.broken.update(v.rule.rule_id for v in broken)


async def _measure(
    demo_args: argparse.Namespace, duration_s: float, sample_s: float
) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as started:
        running = await demo._start(demo_args, started)
        runtime = running.runtimes[CLUSTER]
        begin_unix = time.time()
        act: asyncio.Task[None] | None = None
        if demo_args.ha_scenario:
            act = asyncio.create_task(
                demo._ha_act(demo_args.ha_delay, running.grid, running.runtimes, running.sims)
            )
        watch = _Watch(runtime)
        loop = asyncio.get_running_loop()
        end = loop.time() + duration_s
        last = loop.time()
        while loop.time() < end:
            await asyncio.sleep(sample_s)
            now = loop.time()
            watch.sample(now - last)
            last = now
        ha_ok: bool | None = None
        if act is not None:
            ha_ok = act.done() and act.exception() is None
            act.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await act
        moves = runtime.executor.journal.migrations_since(begin_unix)
        policy = runtime.loop.config.operator_policy
        control = runtime.loop.config
        vms = sum(len(v.vms) for v in runtime.manager.state.snapshot(copy_history=False).nodes)
    hours = duration_s / 3600
    return {
        "benchmark": "demo-stability",
        "minutes": duration_s / 60,
        "migrations": len(moves),
        "migrations_per_hour": round(len(moves) / hours, 1),
        "ping_pong_moves": ping_pong(moves),
        "max_node_cpu_above_band_s": round(watch.longest, 1),
        "max_above_band_node": watch.longest_node,
        "above_band_node_s_total": round(watch.above_total_s, 1),
        "max_node_cpu_fraction": round(watch.max_cpu, 3),
        "rules_violated": len(watch.broken),
        "samples_with_rule_violation": watch.broken_samples,
        "samples": watch.samples,
        "most_moves_of_one_vm": most_moves(moves),
        "cycle_s": control.period_s,
        "hold_s": control.hold_s,
        "policy": policy.as_dict(),
        "nodes": demo_args.nodes,
        "vms": vms,
        "ha_scenario": demo_args.ha_scenario,
        "ha_act_finished": ha_ok,
        "cluster": CLUSTER,
    }


def ping_pong(moves: Sequence[tuple[str, str, str, float]]) -> int:
    """Migrations that took a VM back to a node it had left earlier in `moves`."""
    left: dict[str, set[str]] = {}
    count = 0
    for vm, src, dst, _ in moves:
        if dst in left.get(vm, set()):
            count += 1
        left.setdefault(vm, set()).add(src)
    return count


def most_moves(moves: Sequence[tuple[str, str, str, float]]) -> int:
    counts: dict[str, int] = {}
    for vm, _, _, _ in moves:
        counts[vm] = counts.get(vm, 0) + 1
    return max(counts.values(), default=0)
