"""Challenge instances for tests: a hand-made one with hand-computed costs, and a generator."""

from __future__ import annotations

import numpy as np
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model

# Two resources: r0 plain (load weight 10), r1 transient (load weight 1).
# Machines: m0 zone 0 loc 0 cap (10, 8) safety (8, 8); m1 zone 0 loc 1 cap (10, 10) safety
# (5, 10); m2 zone 1 loc 1 cap (6, 6) safety (6, 6). Service s0 spreadMin 2; s1 depends on s0.
# p0 s0 (4, 2) pmc 5; p1 s0 (3, 3) pmc 7; p2 s1 (2, 4) pmc 1; p3 s1 (5, 3) pmc 2.
# Balance: 2 * free(r0) <= free(r1), weight 3. Weights: process 1, service 10, machine 100.
TINY_MODEL = """
2
0 10
1 1
3
0 0 10 8 8 8 0 1 2
0 1 10 10 5 10 1 0 3
1 1 6 6 6 6 2 3 0
2
2 0
1 1 0
4
0 4 2 5
0 3 3 7
1 2 4 1
1 5 3 2
1
0 1 2 3
1 10 100
"""
TINY_INITIAL = "0 1 0 1"
# Initial: U(m0) = (6, 6), U(m1) = (8, 6), m2 empty.
# load = 10 * (8 - 5) on m1 = 30; balance = 3 * ((2*4 - 2) + 0 + (2*6 - 6)) = 36.
TINY_INITIAL_COST = 66


def tiny() -> tuple[RoadefInstance, np.ndarray]:
    instance = parse_model(TINY_MODEL)
    return instance, parse_assignment(TINY_INITIAL, instance)


def generated(
    seed: int, machines: int = 8, services: int = 12, resources: int = 3
) -> tuple[str, str]:
    """Model and assignment text of a random instance whose initial assignment is feasible.

    Capacities are the initial usage plus random room, safety capacities fall below usage on
    some machines (load cost to remove), spread minima and dependencies are drawn among those
    the initial assignment satisfies, and one resource is transient.
    """
    rng = np.random.default_rng(seed)
    locations = rng.integers(0, 3, machines)
    zones = rng.integers(0, 2, machines)
    procs: list[tuple[int, list[int], int]] = []
    placement: list[int] = []
    for s in range(services):
        size = int(rng.integers(1, min(4, machines) + 1))
        for m in rng.choice(machines, size, replace=False).tolist():
            req = rng.integers(1, 20, resources).tolist()
            procs.append((s, req, int(rng.integers(0, 10))))
            placement.append(int(m))
    used = np.zeros((machines, resources), dtype=np.int64)
    for (_s, req, _c), m in zip(procs, placement, strict=True):
        used[m] += req
    cap = used + rng.integers(5, 40, (machines, resources))
    cap[:, 0] += used.sum(axis=0)[0]  # transient resource r0 gets room for moves
    safety = np.minimum(cap, np.maximum(0, used + rng.integers(-25, 15, (machines, resources))))
    service_locs = [set() for _ in range(services)]
    service_zones = [set() for _ in range(services)]
    for (s, _r, _c), m in zip(procs, placement, strict=True):
        service_locs[s].add(int(locations[m]))
        service_zones[s].add(int(zones[m]))
    lines = [str(resources)]
    lines += [f"{1 if r == 0 else 0} {int(rng.integers(1, 20))}" for r in range(resources)]
    lines.append(str(machines))
    for m in range(machines):
        moves = [0 if k == m else int(rng.integers(1, 5)) for k in range(machines)]
        row = [int(zones[m]), int(locations[m]), *cap[m].tolist(), *safety[m].tolist(), *moves]
        lines.append(" ".join(map(str, row)))
    lines.append(str(services))
    for s in range(services):
        spread = int(rng.integers(1, len(service_locs[s]) + 1))
        deps = [
            s2
            for s2 in range(services)
            if s2 != s and service_zones[s] <= service_zones[s2] and rng.random() < 0.2
        ]
        lines.append(" ".join(map(str, [spread, len(deps), *deps])))
    lines.append(str(len(procs)))
    lines += [" ".join(map(str, [s, *req, c])) for s, req, c in procs]
    lines.append("1")
    lines.append(f"1 2 {int(rng.integers(1, 3))} {int(rng.integers(1, 10))}")
    lines.append(" ".join(str(int(rng.integers(0, 5))) for _ in range(3)))
    return "\n".join(lines) + "\n", " ".join(map(str, placement)) + "\n"


# One resource, three machines. Machine 0 has no headroom (safety 0), so process 0 (8 units)
# pays 8 there; machines 1 and 2 (capacity 10, safety 10) each hold a 5-unit process at home.
# Moving process 0 anywhere needs a resident to leave first, and every single shift costs a move.
CHAIN_MODEL = """
1  0 1
3  0 0 10 0 0 0 0  0 0 10 10 0 0 0  0 0 10 10 0 0 0
3  1 0  1 0  1 0
3  0 8 1  1 5 1  2 5 1
0
1 0 0
"""


def generated_instance(seed: int) -> tuple[RoadefInstance, np.ndarray]:
    """A `generated` instance of 10 machines, 16 services and 3 resources, parsed."""
    model, assignment = generated(seed, machines=10, services=16, resources=3)
    instance = parse_model(model)
    return instance, parse_assignment(assignment, instance)
