"""`vmgrid-bench makespan`: a batch of migrations under NIC bandwidth, planned vs capped.

The same batch (seeded: VM memory sizes and a random destination per VM) runs twice in one
fluid network simulation: every NIC carries `--nic-mbit`, flows through a NIC split it evenly, a
migration moves at the smaller of its two shares minus the VM's dirty-page rate (pre-copy
resends what the guest rewrites, so a slow migration copies more in total than a fast one).
- baseline: start migrations in batch order whenever source and destination each run fewer
  than 2 (the "2 per node" cap of common managers);
- vmgrid: the plan of `vmgrid.solver.planner.build_plan` with the per-NIC bandwidth model,
  executed event-driven as the PlanExecutor does: an action starts once its dependencies and
  every action planned to end before it on the same nodes have ended.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.planner import PlannerOptions, build_plan


@dataclass(frozen=True)
class Migration:
    key: int
    vm: str
    src: str
    dst: str
    memory_mib: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=8, help="nodes (default 8)")
    parser.add_argument("--vms", type=int, default=32, help="VMs to migrate (default 32)")
    parser.add_argument("--nic-mbit", type=int, default=1000, help="NIC Mbit/s (default 1000)")
    parser.add_argument(
        "--dirty-mbit", type=int, default=150, help="guest dirty-page rate, Mbit/s (default 150)"
    )
    parser.add_argument("--seed", type=int, default=1, help="batch seed (default 1)")


def make_batch(nodes: int, vms: int, seed: int) -> list[Migration]:
    """VMs of 512 MiB to 4 GiB, each moving to another node, seeded."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    batch = []
    for i in range(vms):
        src = names[i % nodes]
        dst = rng.choice([n for n in names if n != src])
        batch.append(Migration(i, f"vm{i}", src, dst, rng.choice((512, 1024, 2048, 4096))))
    return batch


def simulate(
    batch: Sequence[Migration],
    can_start: Callable[[Migration, set[int], set[int]], bool],
    nic_mbit: int,
    dirty_mbit: int,
) -> float:
    """Seconds until every migration of `batch` has ended under fluid NIC sharing."""
    left = {m.key: m.memory_mib * 8 * 1.048576 for m in batch}  # Mbit to copy
    active: set[int] = set()
    done: set[int] = set()
    by_key = {m.key: m for m in batch}
    now = 0.0
    while len(done) < len(batch):
        for m in batch:
            if m.key not in active and m.key not in done and can_start(m, active, done):
                active.add(m.key)
        if not active:
            raise RuntimeError("no migration can start: the schedule is stuck")
        flows: dict[str, int] = {}
        for key in active:
            for nic in (by_key[key].src, by_key[key].dst):
                flows[nic] = flows.get(nic, 0) + 1
        rates = {}
        for key in active:
            m = by_key[key]
            share = min(nic_mbit / flows[m.src], nic_mbit / flows[m.dst])
            rates[key] = max(share - dirty_mbit, share * 0.1)  # auto-converge floor
        step = min(left[k] / rates[k] for k in active)
        now += step
        for key in list(active):
            left[key] -= rates[key] * step
            if left[key] <= 1e-6:
                active.discard(key)
                done.add(key)
    return now


def capped_baseline(
    batch: Sequence[Migration], cap: int
) -> Callable[[Migration, set[int], set[int]], bool]:
    """At most `cap` migrations per node (as source or destination), in batch order."""
    by_key = {m.key: m for m in batch}

    def can_start(m: Migration, active: set[int], done: set[int]) -> bool:
        del done
        busy: dict[str, int] = {}
        for key in active:
            for nic in (by_key[key].src, by_key[key].dst):
                busy[nic] = busy.get(nic, 0) + 1
        return busy.get(m.src, 0) < cap and busy.get(m.dst, 0) < cap

    return can_start


def planned_order(
    batch: Sequence[Migration], nodes: int, nic_mbit: int
) -> Callable[[Migration, set[int], set[int]], bool]:
    """The executor's start rule over the solver planner's plan for the batch."""
    names = [f"n{i}" for i in range(nodes)]
    total_mib = sum(m.memory_mib for m in batch)
    node_list = [Node(n, {CPU: 1_000_000, MEMORY: 2 * total_mib}) for n in names]
    src = Model.of(
        node_list, [VM(m.vm, {CPU: 100, MEMORY: m.memory_mib}, host=m.src) for m in batch]
    )
    dst = Model.of(
        node_list, [VM(m.vm, {CPU: 100, MEMORY: m.memory_mib}, host=m.dst) for m in batch]
    )
    options = PlannerOptions(nic_mbit=nic_mbit, bandwidth_mbit=nic_mbit)
    plan = build_plan(src, dst, options=options)
    actions = {a.subject: a for a in plan.actions if a.kind is ActionKind.MIGRATE}
    key_of = {m.vm: m.key for m in batch}
    before: dict[int, set[int]] = {}
    for m in batch:
        a = actions[m.vm]
        before[m.key] = {key_of[d.subject] for d in plan.actions if d.id in a.depends_on}
        for other in actions.values():
            shares_node = {other.src, other.dst} & {a.src, a.dst}
            if other is not a and shares_node and other.end_s <= a.start_s:
                before[m.key].add(key_of[other.subject])

    def can_start(m: Migration, active: set[int], done: set[int]) -> bool:
        del active
        return before[m.key] <= done

    return can_start


def run(args: argparse.Namespace) -> dict[str, object]:
    batch = make_batch(args.nodes, args.vms, args.seed)
    print(
        f"{len(batch)} migrations over {args.nodes} nodes, NIC {args.nic_mbit} Mbit/s, "
        f"dirty rate {args.dirty_mbit} Mbit/s",
        file=sys.stderr,
    )
    baseline = simulate(batch, capped_baseline(batch, 2), args.nic_mbit, args.dirty_mbit)
    planned = simulate(
        batch, planned_order(batch, args.nodes, args.nic_mbit), args.nic_mbit, args.dirty_mbit
    )
    return {
        "migrations": len(batch),
        "nodes": args.nodes,
        "nic_mbit": args.nic_mbit,
        "dirty_mbit": args.dirty_mbit,
        "baseline_makespan_s": round(baseline, 1),
        "vmgrid_makespan_s": round(planned, 1),
        "gain": round(1 - planned / baseline, 3),
        "simulated": True,
    }
