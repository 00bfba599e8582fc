"""An independent checker of a challenge solution, written from the challenge's definition.

It shares nothing with the solver's incremental state: it recomputes every usage, count and cost
from the two assignments, so a solver bug cannot grade itself. Violations are values naming the
rule, the machine or service and the amounts; the cost is split into its terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from vmgrid.solver.roadef.instance import IntArray, RoadefInstance


@dataclass(frozen=True)
class CostBreakdown:
    """The objective's terms; `total` is what the challenge ranks (weights applied)."""

    load: int
    balance: int
    process_move: int
    service_move: int
    machine_move: int
    total: int


@dataclass(frozen=True)
class CheckReport:
    valid: bool
    cost: CostBreakdown
    violations: list[str] = field(default_factory=list)


def usage(instance: RoadefInstance, assignment: IntArray) -> IntArray:
    """U(m, r): the requirements of the processes assigned to each machine."""
    used = np.zeros((instance.machines, instance.resources), dtype=np.int64)
    np.add.at(used, assignment, instance.requirement)
    return used


def cost_of(instance: RoadefInstance, initial: IntArray, assignment: IntArray) -> CostBreakdown:
    """The challenge's objective of `assignment`, moves counted from `initial`."""
    used = usage(instance, assignment)
    over = np.maximum(0, used - instance.safety)
    load = int((over.sum(axis=0) * instance.load_weight).sum())
    free = instance.capacity - used
    balance = 0
    for b in instance.balances:
        short = np.maximum(0, b.target * free[:, b.r1] - free[:, b.r2])
        balance += b.weight * int(short.sum())
    moved = assignment != initial
    process_move = int(instance.process_move_cost[moved].sum())
    per_service = np.bincount(instance.service[moved], minlength=instance.services)
    service_move = int(per_service.max()) if per_service.size else 0
    machine_move = int(instance.machine_move_cost[initial, assignment].sum())
    total = (
        load
        + balance
        + instance.weight_process_move * process_move
        + instance.weight_service_move * service_move
        + instance.weight_machine_move * machine_move
    )
    return CostBreakdown(load, balance, process_move, service_move, machine_move, total)


def violations_of(instance: RoadefInstance, initial: IntArray, assignment: IntArray) -> list[str]:
    """Every broken hard rule, one line each (capacity, conflict, spread, dependency, transient)."""
    found: list[str] = []
    if assignment.shape != (instance.processes,):
        return [f"assignment has {assignment.shape[0]} entries, expected {instance.processes}"]
    bad = np.flatnonzero((assignment < 0) | (assignment >= instance.machines))
    if bad.size:
        p = int(bad[0])
        return [f"process {p} is on machine {int(assignment[p])}, which does not exist"]
    used = usage(instance, assignment)
    for m, r in zip(*np.nonzero(used > instance.capacity), strict=True):
        found.append(
            f"capacity: machine {m} resource {r} uses {used[m, r]} > {instance.capacity[m, r]}"
        )
    moved = assignment != initial
    held = used.copy()
    np.add.at(held, initial[moved], instance.requirement[moved])
    for m, r in zip(*np.nonzero(held > instance.capacity), strict=True):
        if instance.transient[r]:
            found.append(
                f"transient: machine {m} resource {r} holds {held[m, r]} > "
                f"{instance.capacity[m, r]} counting processes moving away"
            )
    pairs = instance.service * instance.machines + assignment
    uniq, counts = np.unique(pairs, return_counts=True)
    for pair, count in zip(uniq[counts > 1], counts[counts > 1], strict=True):
        s, m = divmod(int(pair), instance.machines)
        found.append(f"conflict: service {s} has {count} processes on machine {m}")
    locations = _present(instance.service, instance.location[assignment], instance.services)
    for s in range(instance.services):
        spread = len(locations[s])
        if spread < instance.spread_min[s]:
            found.append(
                f"spread: service {s} spans {spread} locations < spreadMin {instance.spread_min[s]}"
            )
    zones = _present(instance.service, instance.neighborhood[assignment], instance.services)
    for s, deps in enumerate(instance.dependencies):
        for s2 in deps:
            for n in sorted(zones[s] - zones[s2]):
                found.append(
                    f"dependency: service {s} runs in neighborhood {n} without service {s2}"
                )
    return found


def check(instance: RoadefInstance, initial: IntArray, assignment: IntArray) -> CheckReport:
    """Validity and cost of `assignment` as the challenge's own checker would report them."""
    found = violations_of(instance, initial, assignment)
    if found and found[0].startswith(("assignment has", "process ")):
        return CheckReport(False, CostBreakdown(0, 0, 0, 0, 0, 0), found)
    return CheckReport(not found, cost_of(instance, initial, assignment), found)


def _present(owner: IntArray, place: IntArray, owners: int) -> list[set[int]]:
    """For each owner (service), the set of places (locations, zones) holding one of its items."""
    sets: list[set[int]] = [set() for _ in range(owners)]
    for o, pl in zip(owner.tolist(), place.tolist(), strict=True):
        sets[o].add(pl)
    return sets
