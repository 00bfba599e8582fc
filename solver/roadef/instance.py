"""The machine-reassignment problem of the ROADEF/EURO 2012 challenge, read from its text format.

A model file is a stream of non-negative integers (line breaks carry no meaning): resources,
machines (neighbourhood, location, capacities, safety capacities, move costs to every machine),
services (spread minimum, dependencies), processes (service, requirements, move cost), balance
objectives and three weights. An assignment file is one machine index per process.

In vmgrid's words a process is a VM, a machine a node, a service an anti-affinity group with a
minimum spread over locations (failure domains) and dependencies checked per neighbourhood
(network zone); a transient resource is held on both nodes while a VM moves; the safety
capacity is a soft headroom target with a load cost.

Parsing takes text, not paths (the solver does no I/O); every malformed value raises
`RoadefError` with one line naming the section, the element and the value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from vmgrid.v1.errors import VmgridError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class RoadefError(VmgridError, ValueError):
    """A model or assignment file that is malformed or inconsistent; the message names the value."""


@dataclass(frozen=True)
class Balance:
    """Keep `target * free(r1) <= free(r2)` on every machine, paying `weight` per unit short."""

    r1: int
    r2: int
    target: int
    weight: int


@dataclass(frozen=True)
class RoadefInstance:
    """One challenge instance; arrays are indexed by machine, process, service or resource."""

    transient: BoolArray  # [R] held on both machines while a process moves
    load_weight: IntArray  # [R] weight of the load cost
    neighborhood: IntArray  # [M]
    location: IntArray  # [M]
    capacity: IntArray  # [M, R]
    safety: IntArray  # [M, R] soft headroom target
    machine_move_cost: IntArray  # [M, M] from row machine to column machine
    spread_min: IntArray  # [S]
    dependencies: tuple[tuple[int, ...], ...]  # [S] services each service depends on
    service: IntArray  # [P]
    requirement: IntArray  # [P, R]
    process_move_cost: IntArray  # [P]
    balances: tuple[Balance, ...]
    weight_process_move: int
    weight_service_move: int
    weight_machine_move: int

    @property
    def resources(self) -> int:
        return int(self.transient.shape[0])

    @property
    def machines(self) -> int:
        return int(self.capacity.shape[0])

    @property
    def services(self) -> int:
        return int(self.spread_min.shape[0])

    @property
    def processes(self) -> int:
        return int(self.service.shape[0])

    @property
    def locations(self) -> int:
        return int(self.location.max()) + 1 if self.machines else 0

    @property
    def neighborhoods(self) -> int:
        return int(self.neighborhood.max()) + 1 if self.machines else 0


class _Tokens:
    """A cursor over the integers of a file that names what it expected when the data is bad."""

    def __init__(self, text: str, what: str) -> None:
        self._words = text.split()
        self._at = 0
        self._what = what

    def take(self, element: str, upper: int | None = None) -> int:
        if self._at >= len(self._words):
            raise RoadefError(
                f"{self._what}: file ended while reading {element} (after {self._at} values)"
            )
        word = self._words[self._at]
        self._at += 1
        try:
            value = int(word)
        except ValueError:
            raise RoadefError(
                f"{self._what}: {element} is {word!r}, expected a non-negative integer"
            ) from None
        if value < 0:
            raise RoadefError(f"{self._what}: {element} is {value}, expected >= 0")
        if upper is not None and value >= upper:
            raise RoadefError(f"{self._what}: {element} is {value}, expected 0..{upper - 1}")
        return value

    def take_many(self, count: int, element: str) -> list[int]:
        return [self.take(f"{element}[{i}]") for i in range(count)]

    def finish(self) -> None:
        if self._at != len(self._words):
            extra = len(self._words) - self._at
            raise RoadefError(
                f"{self._what}: {extra} unexpected values after the end, first "
                f"{self._words[self._at]!r}"
            )


def parse_model(text: str) -> RoadefInstance:
    """Read a model file's text; raise `RoadefError` naming the first bad value."""
    tok = _Tokens(text, "model")
    n_res = tok.take("resource count")
    transient, load_weight = [], []
    for r in range(n_res):
        flag = tok.take(f"resource {r} transient flag")
        if flag > 1:
            raise RoadefError(f"model: resource {r} transient flag is {flag}, expected 0 or 1")
        transient.append(bool(flag))
        load_weight.append(tok.take(f"resource {r} load-cost weight"))
    n_mach = tok.take("machine count")
    if n_mach == 0:
        raise RoadefError("model: machine count is 0, expected at least 1")
    nbh, loc = [], []
    cap = np.zeros((n_mach, n_res), dtype=np.int64)
    safe = np.zeros((n_mach, n_res), dtype=np.int64)
    mmc = np.zeros((n_mach, n_mach), dtype=np.int64)
    for m in range(n_mach):
        nbh.append(tok.take(f"machine {m} neighborhood"))
        loc.append(tok.take(f"machine {m} location"))
        cap[m] = tok.take_many(n_res, f"machine {m} capacity")
        safe[m] = tok.take_many(n_res, f"machine {m} safety capacity")
        for r in range(n_res):
            if safe[m, r] > cap[m, r]:
                raise RoadefError(
                    f"model: machine {m} safety capacity[{r}] is {safe[m, r]}, "
                    f"above its capacity {cap[m, r]}"
                )
        mmc[m] = tok.take_many(n_mach, f"machine {m} move cost")
        if mmc[m, m] != 0:
            raise RoadefError(f"model: machine {m} move cost to itself is {mmc[m, m]}, expected 0")
    n_serv = tok.take("service count")
    spread, deps = [], []
    for s in range(n_serv):
        spread.append(tok.take(f"service {s} spreadMin"))
        n_dep = tok.take(f"service {s} dependency count")
        deps.append(
            tuple(tok.take(f"service {s} dependency[{i}]", upper=n_serv) for i in range(n_dep))
        )
    n_proc = tok.take("process count")
    service = np.zeros(n_proc, dtype=np.int64)
    req = np.zeros((n_proc, n_res), dtype=np.int64)
    pmc = np.zeros(n_proc, dtype=np.int64)
    for p in range(n_proc):
        service[p] = tok.take(f"process {p} service", upper=n_serv)
        req[p] = tok.take_many(n_res, f"process {p} requirement")
        pmc[p] = tok.take(f"process {p} move cost")
    n_bal = tok.take("balance objective count")
    balances = []
    for b in range(n_bal):
        balances.append(
            Balance(
                r1=tok.take(f"balance {b} resource r1", upper=n_res),
                r2=tok.take(f"balance {b} resource r2", upper=n_res),
                target=tok.take(f"balance {b} target"),
                weight=tok.take(f"balance {b} weight"),
            )
        )
    weights = (
        tok.take("process move weight"),
        tok.take("service move weight"),
        tok.take("machine move weight"),
    )
    tok.finish()
    return RoadefInstance(
        transient=np.array(transient, dtype=np.bool_),
        load_weight=np.array(load_weight, dtype=np.int64),
        neighborhood=np.array(nbh, dtype=np.int64),
        location=np.array(loc, dtype=np.int64),
        capacity=cap,
        safety=safe,
        machine_move_cost=mmc,
        spread_min=np.array(spread, dtype=np.int64),
        dependencies=tuple(deps),
        service=service,
        requirement=req,
        process_move_cost=pmc,
        balances=tuple(balances),
        weight_process_move=weights[0],
        weight_service_move=weights[1],
        weight_machine_move=weights[2],
    )


def parse_assignment(text: str, instance: RoadefInstance, what: str = "assignment") -> IntArray:
    """Read one machine index per process; raise `RoadefError` naming the first bad one."""
    tok = _Tokens(text, what)
    values = [
        tok.take(f"machine of process {p}", upper=instance.machines)
        for p in range(instance.processes)
    ]
    tok.finish()
    return np.array(values, dtype=np.int64)


def format_assignment(assignment: IntArray) -> str:
    """The challenge's own solution format: machine indices separated by spaces."""
    return " ".join(str(int(m)) for m in assignment) + "\n"
