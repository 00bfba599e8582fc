"""`vmgrid-bench makespan`: a batch of live migrations under NIC bandwidth, planned vs capped.

The same batch (seeded: VM memory sizes and a random destination per VM) is executed twice
through one fluid network simulation. The physics, the same for both runs:
- NICs are full duplex: a node's outbound and inbound migrations do not share bandwidth;
- concurrent migrations through one NIC direction share it, max-min fair (a flow held back by
  its other end leaves its unused share to the others);
- pre-copy with dirty rate d at bandwidth r resends what the guest rewrites: the data left to
  send shrinks at r - d, so a migration of M alone lasts M / (r - d), and stops converging when
  r <= d. Then libvirt's auto-converge throttles the guest; modelled as progress at 10 % of r.
Schedules:
- baseline: start migrations in batch order whenever source and destination each run fewer
  than 2 (the "2 per node" cap of common managers);
- vmgrid: the plan of `vmgrid.solver.planner.build_plan` with the per-NIC-direction model
  (one migration per NIC direction at full bandwidth, busiest NIC sides first, parallel across
  disjoint pairs), executed by the PlanExecutor's rule: an action starts, in planned start
  order, once its dependencies have ended and the executor's per-node (2) and per-link (1)
  limits leave room;
- vmgrid + CP-SAT: the same plan re-timed by `vmgrid.solver.schedule_cpsat.improve_schedule`
  (objective `--schedule`, mttr by default), executed by the same rule. Its plan figures (the
  plan's own makespan and MTTR in the planner's time model, CP-SAT's time, whether the
  validator accepts it and which schedule was kept) are reported beside the greedy plan's.
MTTR here is the sum of the migrations' simulated end times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node
from vmgrid.solver.plan import ActionKind, Plan
from vmgrid.solver.planner import PlannerOptions, build_plan
from vmgrid.solver.schedule_cpsat import ScheduleOptions, improve_schedule
from vmgrid.solver.validate import validate_plan

CONVERGE_FLOOR = 0.1
"""Fraction of its bandwidth a non-converging migration still makes good (auto-converge)."""

StartRule = Callable[["Migration", set[int], set[int]], bool]


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
    parser.add_argument(
        "--seeds", default="1,2,3,4,5", help="comma-separated batch seeds (default 1,2,3,4,5)"
    )
    parser.add_argument(
        "--schedule",
        choices=("makespan", "mttr"),
        default="mttr",
        help="CP-SAT re-timing objective (default mttr)",
    )
    parser.add_argument(
        "--schedule-time-limit",
        type=float,
        default=5.0,
        help="CP-SAT re-timing budget per batch, seconds (default 5)",
    )
    parser.add_argument(
        "--pivots",
        type=int,
        default=3,
        help="candidate pivot nodes per VM of a migration cycle in the interval model "
        "(default 3; 0: the planner's routes are kept, as before optional pivots)",
    )
    parser.add_argument(
        "--cycles",
        action="store_true",
        help="a full ring: nodes exactly full whose VMs rotate, plus spare nodes, so the "
        "planner must pivot (see make_cycle_batch)",
    )


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


def make_cycle_batch(nodes: int, vms: int, seed: int) -> tuple[list[Migration], dict[str, int]]:
    """A ring of `nodes` - max(1, nodes // 4) nodes, each exactly full with one VM per slot
    (`vms` // ring slots, a seeded size of 512 MiB to 4 GiB per slot); each slot's VMs rotate
    by a seeded shift along the ring, so every node ends exactly full again and no migration
    can start before some VM is moved aside onto a spare node (twice the largest VM each).
    Also the node memory in MiB."""
    rng = random.Random(seed)
    spare = max(1, nodes // 4)
    ring = nodes - spare
    sizes = [rng.choice((512, 1024, 2048, 4096)) for _ in range(max(1, vms // ring))]
    shifts = [rng.randrange(1, ring) for _ in sizes]
    names = [f"n{i}" for i in range(nodes)]
    batch: list[Migration] = []
    for r in range(ring):
        for size, shift in zip(sizes, shifts, strict=True):
            key = len(batch)
            batch.append(Migration(key, f"vm{key}", names[r], names[(r + shift) % ring], size))
    memory = {n: sum(sizes) for n in names[:ring]} | {n: 2 * max(sizes) for n in names[ring:]}
    return batch, memory


def fair_shares(flows: dict[int, tuple[str, str]], nic_mbit: float) -> dict[int, float]:
    """Max-min fair Mbit/s per flow; each flow crosses (src, "out") and (dst, "in")."""
    sides = {k: ((s, "out"), (d, "in")) for k, (s, d) in flows.items()}
    free = {side: nic_mbit for pair in sides.values() for side in pair}
    share: dict[int, float] = {}
    while len(share) < len(flows):
        users: dict[tuple[str, str], list[int]] = {}
        for k, pair in sides.items():
            if k not in share:
                for side in pair:
                    users.setdefault(side, []).append(k)
        tight = min(users, key=lambda side: free[side] / len(users[side]))
        level = free[tight] / len(users[tight])
        for k in users[tight]:
            share[k] = level
            for side in sides[k]:
                free[side] -= level
    return share


def simulate(
    batch: Sequence[Migration], can_start: StartRule, nic_mbit: int, dirty_mbit: int
) -> float:
    """Seconds until every migration of `batch` has ended (the rule says when one may start)."""
    return max(simulate_ends(batch, can_start, nic_mbit, dirty_mbit).values(), default=0.0)


def simulate_ends(
    batch: Sequence[Migration], can_start: StartRule, nic_mbit: int, dirty_mbit: int
) -> dict[int, float]:
    """Each migration's end time, in seconds from the start of the batch."""
    left = {m.key: m.memory_mib * 8 * 1.048576 for m in batch}  # Mbit to copy
    active: set[int] = set()
    done: set[int] = set()
    by_key = {m.key: m for m in batch}
    ends: dict[int, float] = {}
    now = 0.0
    while len(done) < len(batch):
        for m in batch:
            if m.key not in active and m.key not in done and can_start(m, active, done):
                active.add(m.key)
        if not active:
            raise RuntimeError("no migration can start: the schedule is stuck")
        shares = fair_shares({k: (by_key[k].src, by_key[k].dst) for k in active}, nic_mbit)
        rates = {k: max(r - dirty_mbit, r * CONVERGE_FLOOR) for k, r in shares.items()}
        step = min(left[k] / rates[k] for k in active)
        now += step
        for key in list(active):
            left[key] -= rates[key] * step
            if left[key] <= 1e-6:
                active.discard(key)
                done.add(key)
                ends[key] = now
    return ends


def _busy(batch: Sequence[Migration], active: set[int]) -> dict[str, int]:
    by_key = {m.key: m for m in batch}
    busy: dict[str, int] = {}
    for key in active:
        for node in (by_key[key].src, by_key[key].dst):
            busy[node] = busy.get(node, 0) + 1
    return busy


def capped_baseline(batch: Sequence[Migration], cap: int) -> StartRule:
    """At most `cap` migrations per node (as source or destination), in batch order."""

    def can_start(m: Migration, active: set[int], done: set[int]) -> bool:
        del done
        busy = _busy(batch, active)
        return busy.get(m.src, 0) < cap and busy.get(m.dst, 0) < cap

    return can_start


def batch_plan(
    batch: Sequence[Migration],
    nodes: int,
    nic_mbit: int,
    memory: dict[str, int] | None = None,
) -> tuple[Plan, PlannerOptions]:
    """The planner's plan for the batch, with the per-NIC-direction model, and its options
    (node memory: `memory`, else twice the batch's)."""
    names = [f"n{i}" for i in range(nodes)]
    total_mib = sum(m.memory_mib for m in batch)
    mem = memory or dict.fromkeys(names, 2 * total_mib)
    node_list = [Node(n, {CPU: 1_000_000, MEMORY: mem[n]}) for n in names]
    src = Model.of(
        node_list, [VM(m.vm, {CPU: 100, MEMORY: m.memory_mib}, host=m.src) for m in batch]
    )
    dst = src.with_vms([src.vms[m.vm].on(m.dst) for m in batch])
    options = PlannerOptions(nic_mbit=nic_mbit, bandwidth_mbit=nic_mbit)
    return build_plan(src, dst, options=options), options


def planned_order(
    batch: Sequence[Migration],
    nodes: int,
    nic_mbit: int,
    per_node: int = 2,
    plan: Plan | None = None,
) -> tuple[list[Migration], StartRule]:
    """The plan's migrations (one per hop: a pivoted VM has two, keyed by action id) in planned
    start order, and the executor's start rule over the plan (the planner's own for the batch
    unless `plan` is given)."""
    if plan is None:
        plan = batch_plan(batch, nodes, nic_mbit)[0]
    size = {m.vm: m.memory_mib for m in batch}
    hops = [a for a in plan.actions if a.kind is ActionKind.MIGRATE]
    moves = [Migration(a.id, a.subject, str(a.src), str(a.dst), size[a.subject]) for a in hops]
    migrating = {a.id for a in hops}
    after = {a.id: {d for d in a.depends_on if d in migrating} for a in hops}
    links = {m.key: (m.src, m.dst) for m in moves}
    moves_of = {m.key: m for m in moves}

    def can_start(m: Migration, active: set[int], done: set[int]) -> bool:
        busy = _busy(moves, active)
        room = busy.get(m.src, 0) < per_node and busy.get(m.dst, 0) < per_node
        link_free = all(links[k] != links[m.key] for k in active)
        return after[m.key] <= done and room and link_free

    start = {a.id: a.start_s for a in hops}
    return sorted(moves_of.values(), key=lambda m: (start[m.key], m.key)), can_start


def completions(moves: Sequence[Migration], ends: dict[int, float]) -> dict[str, float]:
    """VM -> the end of its last hop."""
    out: dict[str, float] = {}
    for m in moves:
        out[m.vm] = max(out.get(m.vm, 0.0), ends[m.key])
    return out


def lower_bound_s(batch: Sequence[Migration], nic_mbit: int, dirty_mbit: int) -> float:
    """No schedule beats the busiest NIC direction carrying its migrations one at a time."""
    load: dict[tuple[str, str], float] = {}
    for m in batch:
        for side in ((m.src, "out"), (m.dst, "in")):
            load[side] = load.get(side, 0.0) + m.memory_mib * 8 * 1.048576
    return max(load.values()) / (nic_mbit - dirty_mbit) if nic_mbit > dirty_mbit else 0.0


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    memory = None
    if args.cycles:
        batch, memory = make_cycle_batch(args.nodes, args.vms, seed)
    else:
        batch = make_batch(args.nodes, args.vms, seed)
    nic, dirty = args.nic_mbit, args.dirty_mbit
    base_ends = simulate_ends(batch, capped_baseline(batch, 2), nic, dirty)
    greedy, popts = batch_plan(batch, args.nodes, nic, memory)
    hops = planned_order(batch, args.nodes, nic, plan=greedy)
    planned_ends = completions(hops[0], simulate_ends(*hops, nic, dirty))
    sched = ScheduleOptions(
        args.schedule, time_limit_s=args.schedule_time_limit, pivots=args.pivots
    )
    timed = improve_schedule(greedy, (), popts, sched)
    hops = planned_order(batch, args.nodes, nic, plan=timed.plan)
    timed_ends = completions(hops[0], simulate_ends(*hops, nic, dirty))
    baseline, planned, cpsat = (max(e.values()) for e in (base_ends, planned_ends, timed_ends))
    bound = lower_bound_s(batch, nic, dirty)
    gain = 1 - planned / baseline
    print(
        f"seed {seed}: baseline {baseline:.1f} s, vmgrid {planned:.1f} s, "
        f"vmgrid+CP-SAT {cpsat:.1f} s ({timed.used}, {len(timed.rerouted)} re-routed), "
        f"gain {gain:.1%} (lower bound {bound:.1f} s)",
        file=sys.stderr,
    )

    def pivots(plan: Plan) -> int:
        return sum(1 for a in plan.actions if a.kind is ActionKind.MIGRATE) - len(batch)

    return {
        "seed": seed,
        "vms": len(batch),
        "baseline_makespan_s": round(baseline, 1),
        "vmgrid_makespan_s": round(planned, 1),
        "cpsat_makespan_s": round(cpsat, 1),
        "baseline_mttr_s": round(sum(base_ends.values()), 1),
        "vmgrid_mttr_s": round(sum(planned_ends.values()), 1),
        "cpsat_mttr_s": round(sum(timed_ends.values()), 1),
        "lower_bound_s": round(bound, 1),
        "gain": round(gain, 3),
        "plan": {
            "greedy_makespan_s": greedy.makespan_s,
            "greedy_mttr_s": greedy.mttr_s,
            "greedy_pivots": pivots(greedy),
            "cpsat_makespan_s": timed.plan.makespan_s,
            "cpsat_mttr_s": timed.plan.mttr_s,
            "cpsat_pivots": pivots(timed.plan),
            "rerouted": len(timed.rerouted),
            "refused": len(timed.violations),
            "cpsat_solve_s": round(timed.solve_s, 2),
            "cpsat_status": timed.status,
            "used": timed.used,
            "valid": validate_plan(timed.plan) == [],
        },
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise ValueError(
            f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 1,2,3"
        ) from None
    if not seeds or args.nodes < 2 or args.vms < 1 or args.nic_mbit <= 0 or args.dirty_mbit < 0:
        raise ValueError(
            f"--seeds {args.seeds!r} --nodes {args.nodes} --vms {args.vms} --nic-mbit "
            f"{args.nic_mbit} --dirty-mbit {args.dirty_mbit}: need a seed, >= 2 nodes, >= 1 VM, "
            "a positive NIC and a non-negative dirty rate"
        )
    if args.pivots < 0 or (args.cycles and args.nodes < 3):
        raise ValueError(
            f"--pivots {args.pivots} --nodes {args.nodes} --cycles {args.cycles}: give pivots "
            ">= 0, and >= 3 nodes for a ring with a spare node"
        )
    if not args.schedule_time_limit > 0:
        raise ValueError(
            f"--schedule-time-limit {args.schedule_time_limit}: give a positive number of seconds"
        )
    print(
        f"{args.vms} migrations over {args.nodes} nodes, NIC {args.nic_mbit} Mbit/s full duplex, "
        f"dirty rate {args.dirty_mbit} Mbit/s",
        file=sys.stderr,
    )
    results = [run_seed(args, seed) for seed in seeds]
    gains = [float(r["gain"]) for r in results]

    def mean(key: str) -> float:
        return round(statistics.fmean(float(r[key]) for r in results), 1)

    plans = [r["plan"] for r in results]
    return {
        "migrations": results[0]["vms"],
        "nodes": args.nodes,
        "nic_mbit": args.nic_mbit,
        "dirty_mbit": args.dirty_mbit,
        "seeds": results,
        "baseline_makespan_s": mean("baseline_makespan_s"),
        "vmgrid_makespan_s": mean("vmgrid_makespan_s"),
        "cpsat_makespan_s": mean("cpsat_makespan_s"),
        "baseline_mttr_s": mean("baseline_mttr_s"),
        "vmgrid_mttr_s": mean("vmgrid_mttr_s"),
        "cpsat_mttr_s": mean("cpsat_mttr_s"),
        "gain": round(statistics.fmean(gains), 3),
        "gain_min": round(min(gains), 3),
        "schedule": args.schedule,
        "schedule_time_limit_s": args.schedule_time_limit,
        "pivots": args.pivots,
        "cycles": bool(args.cycles),
        "baseline_ignores_capacity": bool(args.cycles),
        "greedy_pivots": sum(int(p["greedy_pivots"]) for p in plans),
        "cpsat_pivots": sum(int(p["cpsat_pivots"]) for p in plans),
        "rerouted": sum(int(p["rerouted"]) for p in plans),
        "cpsat_used": sum(1 for p in plans if p["used"] == "cpsat"),
        "cpsat_valid": all(p["valid"] for p in plans),
        "cpsat_solve_s_max": max(p["cpsat_solve_s"] for p in plans),
        "simulated": True,
    }
