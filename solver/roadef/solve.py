"""Solve a challenge instance: local search, then CP-SAT large-neighbourhood search to the deadline.

Only feasible assignments are ever kept, and none dearer than the original, so whatever the
deadline the answer is valid. The first local search runs in parts, paying for the transient
capacity its moves lock at home (`local.shift_pass`) with a weight halved at each part, then
plainly; each part is a compiled zero-temperature walk (`descent.py`) where a C compiler is
found, Python's shifts and swaps otherwise (`local.py`). Then each step is a CP-SAT neighbourhood of one of the `KINDS`, a round of local search
or an annealing walk (`anneal.py`), drawn by recent gain per second (`KindChooser`); each kind's
size grows while CP-SAT proves its neighbourhoods optimal. One seed drives every random choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from vmgrid.solver.roadef.anneal import HeatChooser, anneal_step
from vmgrid.solver.roadef.descent import descend
from vmgrid.solver.roadef.hoods import pick_neighbourhood
from vmgrid.solver.roadef.instance import IntArray, RoadefInstance
from vmgrid.solver.roadef.lns import solve_neighbourhood
from vmgrid.solver.roadef.local import local_search, shift_pass
from vmgrid.solver.roadef.pace import Pace
from vmgrid.solver.roadef.state import AssignmentState
from vmgrid.solver.roadef.walk import available as walk_available

KINDS = ("cost", "conflict", "eject", "home", "random", "receive", "service", "zone")
STEPS = (*KINDS, "local", "walk")
"""What one step of the search may do: a CP-SAT neighbourhood of a kind, a round of local
search (shifts and swaps, cut at `RoadefOptions.local_step`), or a compiled annealing walk
(`walk.py`, `RoadefOptions.walk_step`), all drawn by their gain rate."""


@dataclass(frozen=True)
class RoadefOptions:
    """Search settings; the defaults suit the challenge's 300 s on two cores."""

    workers: int = 2
    """CP-SAT workers per neighbourhood."""
    seed: int = 0
    """Seed of every random choice."""
    step_seconds: float = 0.3
    """Time limit of one CP-SAT neighbourhood on a quiet machine (see `paced`)."""
    evacuate: bool = True
    """Where a transient resource holds capacity for good, start with one pass of shifts (at
    the first lock weight) over the processes whose leaving lowers their machine's load cost,
    largest relief first (`evacuation_order`); without one, nothing is held for good, so the
    order of the first moves matters less and random order did better (a2_1, b_02)."""
    step_processes: int = 50
    """Processes a neighbourhood of chosen processes frees per `step_seconds` of its limit."""
    max_free: int = 200
    """Most processes freed in one neighbourhood (sampled when its machines hold more); each
    kind lowers its own cap while its smallest neighbourhoods are still too large to solve."""
    local_share: float = 0.5
    """Share of the budget the first local search may use."""
    local_step: float = 2.0
    """Longest local-search step after the first local search (it competes with the
    neighbourhood kinds for time by its gain rate, so it keeps going while it pays more)."""
    paced: bool = True
    """Scale CP-SAT step limits by how much of a core the search gets (`pace.Pace`), so that a
    loaded machine's steps get about the CPU a quiet machine's do."""
    walk_step: float = 4.0
    """Length of one annealing walk (`walk.py`); 0 turns the walk off. Each walk starts at a
    heat `anneal.HeatChooser` draws (in units of a typical uphill shift) and cools it a
    hundredfold."""
    walk_tail: float = 0.15
    """Share of the budget, at its end, spent on walks only. Walks drawn among the other steps
    earlier (`walk_anytime`) left a2_2 where the neighbourhoods found nothing more (processes
    parked away from home); at the end nothing follows them, and they keep the best they saw."""
    walk_anytime: bool = False
    """Also draw walks among the other steps before the tail."""
    walk_lock: float = 0.0
    """Lock weight steering the walks (`anneal.anneal_step`); at 1 the walks on a2_2 gained
    nothing."""
    first_walk: bool = True
    """Run the first local search's parts as compiled zero-temperature walks (`descent.py`),
    closed by one round of the Python local search; False runs them in Python (as without a
    C compiler), which took the whole first half of the budget on set B's 5,000 processes."""
    walk_chains: float = 0.3
    """Share of a walk's attempts that are ejection chains (a process onto a machine that one
    of its processes leaves at once, `_walk.c`); 0 walks by shifts and swaps only."""
    walk_threads: int = 2
    """Annealing walks run side by side, each from the same state with its own seed and heat;
    the cheapest is kept. The walk tail uses one core otherwise, where CP-SAT's steps use
    `workers`."""
    descent_threads: int | None = None
    """Zero-temperature walks run side by side in each chunk of the first local search's
    plain part (lock weight 0; `descent.descend`), the one ending lowest kept; None: as
    `descents_for` says (2 on an instance with a transient resource, else 1). On b_02 (no
    transient resource: its only part is the plain one) 2 gave 0.99-1.08 % where 1 gives
    0.46-0.74 %; on b_01 (a transient resource) 2 in every part gave 0.13-1.34 % where 1 gives
    0.90-2.03 % (docs/solver.md, "Walks side by side" and "Descents by instance")."""
    locked_descent_threads: int | None = None
    """The same in each locked part (lock weight above 0, instances with a transient
    resource), the one ending lowest by steered cost kept; None: `TRANSIENT_DESCENTS`."""
    descent_chunk: float = 1.0
    """Seconds of one chunk of the first local search's walks; a part ends after the first
    chunk that gains less than `descent.descend`'s rate, so a part takes at least two."""
    first_share: float = 0.0
    """Share of the budget the first local searches (compiled) may take together: another
    starts from the original assignment while one more as long as the last fits in it, and
    the cheapest end is kept; 0 runs one. Measured at 0.25 on b_01, a1_4, a2_2, a1_2 and
    a1_3 (docs/solver.md, "First searches again"): no clear gain, so not the default."""
    locks: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35, 0.25, 0.12)
    """Weights of the transient capacity a move locks at home (see `local.shift_pass`), one
    part of the first local search each, before a plain part; empty turns them off. Six steps
    down to 0.12 ended the first search 22-58 M lower than (1.0, 0.5, 0.25) in seven runs of
    nine on b_01, a2_2 and a1_4, for 5-13 s more; whole runs of b_01 came within 1 % in five
    of six, a2_2's ended higher (docs/solver.md, "A finer lock schedule")."""


@dataclass
class RoadefResult:
    assignment: IntArray
    cost: int
    original_cost: int
    stats: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str], None]


TRANSIENT_DESCENTS = 2
"""Descents side by side in every part of the first local search on an instance with a
transient resource, unless the options name a number."""


def descents_for(instance: RoadefInstance, options: RoadefOptions, locked: bool) -> int:
    """Zero-temperature walks side by side in a part of the first local search (a locked part
    or the plain one): the options' number, or by default `TRANSIENT_DESCENTS` where the
    instance has a transient resource and 1 where it has none. A second descent in the plain
    part lowered where b_01's first search ends (3,382-3,403 M against 3,434-3,454 M), which
    its final cost follows, and cost b_02, which has no transient resource, about half a
    point (docs/solver.md)."""
    chosen = options.locked_descent_threads if locked else options.descent_threads
    if chosen is not None:
        return chosen
    return TRANSIENT_DESCENTS if locked or bool(instance.transient.any()) else 1


def solve_roadef(
    instance: RoadefInstance,
    initial: IntArray,
    timeout: float,
    options: RoadefOptions | None = None,
    progress: Progress | None = None,
) -> RoadefResult:
    """Return the best feasible assignment found within `timeout` seconds of wall time."""
    opts = options or RoadefOptions()
    start = time.monotonic()
    deadline = start + timeout
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(opts.seed)
    cap = start + opts.local_share * timeout  # no part of any first search ends later
    first = _first_search(instance, initial, opts, rng, start, timeout, cap, say)
    original = first.original
    searches, last_s = 1, first.seconds
    while first.compiled:
        now = time.monotonic()
        if now >= cap or now - start + last_s > opts.first_share * timeout:
            break
        again = _first_search(instance, initial, opts, rng, now, timeout, cap, say)
        searches, last_s = searches + 1, again.seconds
        say(f"first search {searches}: cost {again.state.total:,} (best {first.state.total:,})")
        first = again if again.state.total < first.state.total else first
    state, part_gain, part_s, compiled = first.state, first.gain, first.gain_s, first.compiled
    pace = first.pace
    how = "compiled walks" if compiled else "Python"
    say(
        f"local search done ({how}, {searches} search(es), cost {state.total:,}, "
        f"{time.monotonic() - start:.1f} s, {pace.share:.2f} of a core)"
    )
    stats = {f"lns_{k}": 0 for k in STEPS} | {f"gain_{k}": 0 for k in STEPS}
    stats["first_walk"] = int(compiled)
    stats["first_searches"] = searches
    chooser = KindChooser(instance.machines, rng, opts.max_free)
    # Local search starts from the gain rate of its last (plain) part: still high where that
    # part ran out of time, nothing where it stopped for want of an improving move (after the
    # compiled descent: the rate of its closing round).
    chooser.rate["local"] = part_gain / max(state.total, 1) / max(part_s, 1e-3)
    heats = HeatChooser(rng)
    walking = opts.walk_step > 0 and walk_available()
    if not (walking and opts.walk_anytime):
        chooser.banned.add("walk")
    tail = deadline - opts.walk_tail * timeout if walking else deadline
    last_say = time.monotonic()
    step = 0
    # How long a neighbourhood step has run past its CP-SAT limit (choosing the neighbourhood,
    # building the model, applying the answer): the largest seen so far, so that the last
    # steps end by the deadline on a loaded machine too.
    overrun = 0.1
    while True:
        now = time.monotonic()
        if now + 0.05 >= deadline:
            break
        kind = "walk" if now >= tail else chooser.pick()
        if kind not in ("local", "walk") and deadline - now < overrun + 0.1:
            kind = "local"
        step += 1
        before = state.total
        proven = capped = False
        if kind == "local":
            pace.begin()
            local_search(state, min(deadline, now + opts.local_step), rng, max_rounds=1)
            pace.end()
        elif kind == "walk":
            seconds = min(opts.walk_step, deadline - now - 0.05)
            state = anneal_step(
                state,
                seconds,
                heats,
                rng,
                stats,
                opts.walk_lock,
                opts.walk_chains,
                opts.walk_threads,
            )
        else:
            hood = pick_neighbourhood(state, kind, chooser.size[kind], chooser.free[kind], rng)
            # A neighbourhood of chosen processes (not whole machines) may be large; it gets
            # time in proportion to the processes it frees beyond a machine-sized one.
            scale = max(1.0, len(hood.processes) / opts.step_processes) if hood.domains else 1.0
            scale *= pace.slowdown if opts.paced else 1.0
            limit = max(0.01, min(opts.step_seconds * scale, deadline - now - overrun))
            gain, proven = solve_neighbourhood(state, hood, limit, opts.workers, opts.seed + step)
            overrun = max(overrun, time.monotonic() - now - limit)
            capped = hood.capped
            if gain and len(hood.processes) > 0:
                moved = (
                    np.array(hood.processes)
                    if hood.domains
                    else np.flatnonzero(np.isin(state.x, hood.machines))
                )
                shift_pass(state, rng.permutation(moved), deadline)
        chooser.record(kind, before - state.total, before, proven, time.monotonic() - now, capped)
        stats[f"lns_{kind}"] += 1
        stats[f"gain_{kind}"] += before - state.total
        if time.monotonic() - last_say > 10.0:
            last_say = time.monotonic()
            sizes = ", ".join(f"{k} {chooser.size[k]}/{chooser.free[k]}" for k in KINDS)
            say(
                f"step {step}: cost {state.total:,}, machines/processes per kind: {sizes}, "
                f"local steps {stats['lns_local']}, walks {stats['lns_walk']} "
                f"(gain {stats['gain_walk']:,}) ({last_say - start:.0f} s)"
            )
    stats["lns_steps"] = step
    return RoadefResult(state.x.copy(), state.total, original, stats)


@dataclass
class _FirstSearch:
    original: int
    """The original assignment's cost."""
    state: AssignmentState
    gain: int
    """What the plain part's last round gained, and in how long (seeds the local step's rate)."""
    gain_s: float
    compiled: bool
    seconds: float
    pace: Pace


def _first_search(
    instance: RoadefInstance,
    initial: IntArray,
    opts: RoadefOptions,
    rng: np.random.Generator,
    start: float,
    timeout: float,
    cap: float,
    say: Progress,
) -> _FirstSearch:
    """One first local search from the original assignment, begun at `start`, none of its
    parts ending after `cap`: evacuation, the locked parts, the plain part; the cheapest state
    of its parts."""
    state = AssignmentState(instance, initial, initial)
    original = state.total
    locks = opts.locks if instance.transient.any() else ()
    parts = len(locks) + 1
    part_gain, part_s = 0, 0.0
    pace = Pace()
    if opts.evacuate and locks:
        end = min(cap, start + opts.local_share * timeout / parts)
        shift_pass(state, evacuation_order(state), end, locks[0])
        say(f"evacuation: cost {state.total:,}")
    compiled = opts.first_walk and walk_available()
    cheapest = state
    for k, lock in enumerate((*locks, 0.0)):
        before, began = state.total, time.monotonic()
        part_end = min(cap, start + opts.local_share * timeout * (k + 1) / parts)
        if compiled:
            threads = descents_for(instance, opts, locked=lock > 0)
            state = descend(
                state, lock, part_end, rng, opts.walk_chains, opts.descent_chunk, threads=threads
            )
            if k == parts - 1:  # one round of best-improvement moves the random walk missed
                before, began = state.total, time.monotonic()
                local_search(state, part_end, rng, max_rounds=1)
                part_gain, part_s = before - state.total, time.monotonic() - began
        else:
            local_search(state, part_end, rng, lock=lock)
            ran_out = time.monotonic() >= part_end
            part_gain, part_s = (before - state.total) * ran_out, time.monotonic() - began
        cheapest = state if state.total < cheapest.total else cheapest
        say(f"local search, lock weight {lock}: cost {state.total:,}")
    pace.end()
    seconds = time.monotonic() - start
    return _FirstSearch(original, cheapest, part_gain, part_s, compiled, seconds, pace)


def evacuation_order(state: AssignmentState) -> IntArray:
    """Processes whose leaving would lower the load cost of their machine, the largest relief
    first: the big processes of the costliest machines claim the few machines that can take
    them before smaller moves fill those."""
    inst = state.inst
    over = np.maximum(0, state.used - inst.safety)
    relief = np.minimum(inst.requirement, over[state.x]) @ inst.load_weight
    order = np.argsort(-relief, kind="stable")
    result: IntArray = order[relief[order] > 0]
    return result


class KindChooser:
    """Adaptive choice of the step (a neighbourhood kind or local search, `STEPS`) and, per
    kind, of its size in machines.

    Each neighbourhood kind is first tried a few times in turn (local search comes with the
    rate of the first local search's last part). Each kind keeps an average of its relative
    gain per second that decays with the time its steps take; a kind is then drawn with
    probability proportional to that average, mixed with a uniform share so that every kind
    keeps being tried (what pays changes as the search goes). Each kind has its own size: it
    grows while CP-SAT proves that kind's neighbourhoods optimal and shrinks when it neither
    proves nor gains, so one slow kind no longer shrinks the neighbourhoods of the others.
    Where the machines hold more processes than the kind's cap on freed processes (tens of
    processes per machine), that cap shrinks instead of the size, and grows back with proofs.
    """

    EXPLORE = 0.3
    DECAY = 0.9
    WARMUP = 5
    """Picks of each kind, in turn, before gains decide: a kind drawn by its gain has to have
    been tried, or the first kind to gain would crowd out one that gains more later."""
    MIN_FREE = 10
    STEP_S = 0.3
    """Length of a typical step: a step this long or shorter weighs `1 - DECAY` in the average."""

    def __init__(self, machines: int, rng: np.random.Generator, max_free: int = 200) -> None:
        self.machines = machines
        self.max_size = min(machines, 40)
        self.max_free = max_free
        start = 4 if machines > 4 else machines
        self.size = dict.fromkeys(STEPS, start)
        self.free = dict.fromkeys(STEPS, max_free)
        self.rate = dict.fromkeys(STEPS, 0.0)
        self.picks = 0
        self.rng = rng
        self.banned: set[str] = set()
        """Steps that cannot run here (the walk without a C compiler)."""

    def pick(self) -> str:
        self.picks += 1
        warmup = [k for k in ("walk", *KINDS) if k not in self.banned]
        if self.picks <= self.WARMUP * len(warmup):
            return warmup[(self.picks - 1) % len(warmup)]
        steps = [k for k in STEPS if k not in self.banned]
        total = sum(self.rate[k] for k in steps)
        if total <= 0 or self.rng.random() < self.EXPLORE:
            return steps[int(self.rng.integers(len(steps)))]
        weights = np.array([self.rate[k] for k in steps]) / total
        return steps[int(self.rng.choice(len(steps), p=weights))]

    def record(
        self, kind: str, gain: int, cost: int, proven: bool, seconds: float, capped: bool = False
    ) -> None:
        """Account a step; `capped`: the kind's machines held more processes than it freed."""
        relative = gain / max(cost, 1) / max(seconds, 1e-3)
        # The average decays with time, not with picks: a 2 s local step that gains nothing
        # counts like the several CP-SAT steps that could have run instead.
        keep = self.DECAY ** max(1.0, seconds / self.STEP_S)
        self.rate[kind] = keep * self.rate[kind] + (1 - keep) * relative
        size, free = self.size[kind], self.free[kind]
        if proven:
            if capped:
                self.free[kind] = min(self.max_free, free + max(1, free // 8))
            else:
                self.size[kind] = min(self.max_size, size + 1)
        elif not gain:
            if capped:
                self.free[kind] = max(self.MIN_FREE, free * 2 // 3)
            elif size > 2:
                self.size[kind] = size - 1
