"""Large-neighbourhood search with CP-SAT over a complete, valid answer.

For instances too large for the full model (5,000 nodes and 30,000 VMs from scratch: ~400k
placement variables), the heuristic's answer is improved a neighbourhood at a time: a few nodes
and the VMs on them are freed (`vmgrid.solver.lns_hoods`: by node, by conflict, by rule), CP-SAT
re-places them under every rule that touches them and the problem's own objective, within a
per-step time limit (`vmgrid.solver.lns_model`), and the answer is kept only when the whole
destination is better by the objective's definition and the independent validator's rule checks
find nothing wrong on what changed (`vmgrid.solver.lns_eval`). So the search never returns
something worse or invalid than what it was given, whatever the deadline.

Kinds are drawn in turn at first, then by their recent gain per second with a uniform share;
each kind keeps its own size in nodes, grown when CP-SAT proves a neighbourhood optimal without
gain (it was too small to hold a better answer) and shrunk when a step ends without a solution.
The search stops at the deadline, at a proven lower bound of the objective's first level, or
after `patience` steps in a row without gain.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from vmgrid.solver.cpsat import CpsatOptions, free_vms
from vmgrid.solver.lns_eval import Judge
from vmgrid.solver.lns_hoods import Hoods
from vmgrid.solver.lns_model import RuleIndex, solve_hood
from vmgrid.solver.model import VMState
from vmgrid.solver.objectives import parse
from vmgrid.solver.problem import Prepared


@dataclass(frozen=True)
class LnsOptions:
    enabled: bool = True
    time_limit_s: float = 3.0
    """The search's budget when the solve has no `time_limit_s` (else what that leaves)."""
    step_s: float = 2.0
    """CP-SAT's limit per neighbourhood."""
    min_step_s: float = 0.3
    """No step starts with less than this left."""
    min_total_s: float = 1.5
    """The search does not start with less than this left (its set-up alone takes ~0.5 s at
    30,000 VMs)."""
    first_size: int = 8
    """Nodes per neighbourhood at first; each kind then adapts its own (3..`max_size`)."""
    max_size: int = 48
    max_free: int = 250
    """VMs freed per neighbourhood at most."""
    patience: int = 20
    """Steps in a row without gain after which the search stops."""
    seed: int = 0


@dataclass
class LnsResult:
    hosts: dict[str, str]
    before: tuple[int, ...]
    after: tuple[int, ...]
    steps: int = 0
    accepted: int = 0
    rejected: int = 0
    """Answers CP-SAT found better that the validator refused (a submodel bug; expected 0)."""
    violations_before: int = 0
    """The validator's messages on the answer it was given (0: valid; else a repair)."""
    violations_after: int = 0
    wall_s: float = 0.0
    kinds: dict[str, list[int]] = field(default_factory=dict)
    """kind -> [steps, accepted]."""
    stop: str = ""

    @property
    def improved(self) -> bool:
        if self.violations_before:
            return self.violations_after < self.violations_before
        return self.after < self.before

    @property
    def valid(self) -> bool:
        return self.violations_after == 0

    def summary(self) -> dict[str, object]:
        return {
            "objective_before": list(self.before),
            "objective_after": list(self.after),
            "steps": self.steps,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "violations_before": self.violations_before,
            "violations_after": self.violations_after,
            "wall_s": round(self.wall_s, 3),
            "kinds": {k: list(v) for k, v in self.kinds.items()},
            "stop": self.stop,
        }


class _Chooser:
    def __init__(self, kinds: list[str], first_size: int, max_size: int, rng: random.Random):
        self.kinds, self.rng, self.max_size = kinds, rng, max_size
        self.size = {k: first_size for k in kinds}
        self.rate = {k: 0.0 for k in kinds}
        self.turn = 0

    def pick(self) -> str:
        self.turn += 1
        if self.turn <= 2 * len(self.kinds) or self.rng.random() < 0.3:
            return self.kinds[self.turn % len(self.kinds)]
        total = sum(self.rate.values())
        if total <= 0:
            return self.rng.choice(self.kinds)
        x = self.rng.random() * total
        for k in self.kinds:
            x -= self.rate[k]
            if x <= 0:
                return k
        return self.kinds[-1]

    def update(self, kind: str, gain: float, seconds: float, status: str) -> None:
        self.rate[kind] = 0.8 * self.rate[kind] + gain / max(seconds, 0.05)
        if gain <= 0 and status == "optimal":
            self.size[kind] = min(self.max_size, self.size[kind] * 3 // 2 + 1)
        elif status not in ("optimal", "feasible"):
            self.size[kind] = max(3, self.size[kind] * 2 // 3)


def improve(
    prep: Prepared,
    hosts: Mapping[str, str | None],
    deadline: float,
    options: LnsOptions | None = None,
    workers: int = 2,
    floor: int | None = None,
) -> LnsResult:
    """Improve `hosts` (every VM that ends running -> its node, valid) until `deadline`
    (a `time.perf_counter()` value); `floor`: a proven lower bound of the first level, where
    the search stops when that level is the whole objective."""
    opts = options or LnsOptions()
    start = time.perf_counter()
    current = {v: n for v, n in hosts.items() if n is not None and v in prep.vm_state}
    current = {v: n for v, n in current.items() if prep.vm_state[v] is VMState.RUNNING}
    judge = Judge(prep)
    value = judge.value(current)
    bad = len(judge.violations(current))
    result = LnsResult(dict(current), value, value, violations_before=bad)
    hoods = Hoods(prep, current, opts.seed)
    if bad:
        hoods.broken = judge.conflicts(current)
    rng = random.Random(opts.seed)
    chooser = _Chooser(hoods.kinds(), opts.first_size, opts.max_size, rng)
    index = RuleIndex(prep)
    idle = 0
    while True:
        left = deadline - time.perf_counter()
        if floor is not None and not bad and len(value) == 2 and value[0] <= floor and not value[1]:
            result.stop = "at the lower bound"
            break
        if left < opts.min_step_s:
            result.stop = "deadline"
            break
        if idle >= opts.patience:
            result.stop = f"{idle} steps without gain"
            break
        kind = chooser.pick()
        hood = hoods.build(kind, chooser.size[kind], opts.max_free)
        stats = result.kinds.setdefault(kind, [0, 0])
        if hood is None or not hood.free:
            idle += 1
            stats[0] += 1
            continue
        t = time.perf_counter()
        status, answer = solve_hood(
            prep,
            current,
            set(hood.free),
            set(hood.nodes),
            opts.step_s,
            workers,
            rng.randrange(1 << 30),
            index,
            deadline - 0.05,
        )
        result.steps += 1
        stats[0] += 1
        gain = 0.0
        changed = {v: n for v, n in (answer or {}).items() if current[v] != n}
        if changed:
            candidate = {**current, **changed}
            new_value = judge.value(candidate)
            new_bad, refused = _judge(judge, current, candidate, changed, bad)
            if refused and new_value < value:
                result.rejected += 1
            elif not refused and (new_bad, new_value) < (bad, value):
                gain = _gain((bad, *value), (new_bad, *new_value))
                for v, n in changed.items():
                    hoods.move(v, n)
                current, value, bad = candidate, new_value, new_bad
                hoods.broken = judge.conflicts(current) if bad else ([], [])
                result.accepted += 1
                stats[1] += 1
        idle = 0 if gain > 0 else idle + 1
        chooser.update(kind, gain, time.perf_counter() - t, status)
    result.hosts, result.after = current, value
    if result.violations_before:  # the repair's outcome, from a check of the whole answer
        result.violations_after = len(judge.violations(current))
    result.wall_s = time.perf_counter() - start
    return result


def _judge(
    judge: Judge,
    current: dict[str, str],
    candidate: dict[str, str],
    changed: dict[str, str],
    bad: int,
) -> tuple[int, bool]:
    """(violations of `candidate`, refused). A valid answer's step is refused when the
    validator finds anything wrong on what it changed; an invalid answer's step counts the
    validator's messages on the same rules and nodes before and after."""
    touched = {current[v] for v in changed} | set(changed.values())
    if not bad:
        return 0, bool(judge.violations(candidate, changed, touched))
    near = set(changed) | {v for v, n in current.items() if n in touched}
    near |= {v for v, n in candidate.items() if n in touched}
    before = len(judge.violations(current, near, touched))
    after = len(judge.violations(candidate, near, touched))
    return bad - before + after, False


def too_large(prep: Prepared, options: CpsatOptions) -> bool:
    """Would the first repair model take more than half of `options.time_limit_s` to build
    (by `CpsatOptions.build_s_per_variable`)? Then a valid answer is better improved by LNS."""
    running = sum(1 for s in prep.vm_state.values() if s is VMState.RUNNING)
    nodes = len(prep.src.nodes)
    if running * nodes <= options.full_model_max_pairs:
        return False
    consolidating = any(n == "consolidation" for lv in parse(prep.problem.objective) for _, n in lv)
    per_vm = min(nodes, options.candidates_per_vm + 2)
    variables = len(free_vms(prep, consolidating)) * per_vm
    return variables * options.build_s_per_variable > options.time_limit_s / 2


def first_level_floor(objective: str, node_lb: int, mig_lb: int) -> int | None:
    """A proven lower bound of the objective's first level when it is one unit-weight term
    whose bound is known: nodes (consolidation) or VMs moved (migrations)."""
    level = parse(objective)[0]
    if len(level) != 1 or level[0][0] != 1:
        return None
    return {"consolidation": node_lb, "migrations": mig_lb}.get(level[0][1])


def _gain(before: tuple[int, ...], after: tuple[int, ...]) -> float:
    """A positive size of a lexicographic improvement: relative, first differing level weighs
    most (levels below it count as fractions)."""
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if b < a:
            return (a - b) / max(abs(a), 1) * 10.0 ** (-i)
    return 0.0
