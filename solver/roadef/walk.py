"""Compiled simulated annealing over shifts and swaps (`_walk.c`), driven from the search.

The Python local search evaluates a few thousand moves a second; the challenge's good entries
made millions, with a walk that also takes uphill moves so that early choices (which processes
left their homes, holding transient capacity there for good) can be undone. `_walk.c` is that
walk: a random process to a random machine, or a swap of two random processes, each checked
against every rule and scored by its exact cost change (load, balance, process, service and
machine move costs), accepted by the Metropolis rule at a temperature cooling geometrically over
the walk. It runs on copies of the state's arrays and returns the cheapest assignment it saw;
`run_walk` rebuilds an `AssignmentState` from it and hands it back only when it is cheaper and
passes `AssignmentState.feasible_everywhere`.

The C file is compiled on first use with the system C compiler (``cc -O2 -shared``) into a
per-user cache directory, keyed by the source's hash; without a compiler `available()` is False
and the search runs without the walk.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from vmgrid.solver.roadef.instance import IntArray, RoadefInstance
from vmgrid.solver.roadef.state import AssignmentState

T = TypeVar("T")

_SOURCE = Path(__file__).with_name("_walk.c")
_P = ctypes.POINTER(ctypes.c_int64)
_I = ctypes.c_int64


class _W(ctypes.Structure):
    _fields_ = [
        *((n, _I) for n in ("R", "M", "P", "S", "L", "N", "B")),
        *((n, _P) for n in ("req", "cap", "safety", "transient", "load_w", "bal")),
        *((n, _P) for n in ("pmc", "mmc", "service", "spread_min", "location", "zone", "initial")),
        *((n, _P) for n in ("dep_start", "dep", "rdep_start", "rdep")),
        *((n, _I) for n in ("w_pmc", "w_smc", "w_mmc")),
        *((n, _P) for n in ("x", "used", "held", "on_machine", "in_location", "in_zone")),
        *((n, _P) for n in ("spread", "moved", "hist")),
        *((n, _I) for n in ("hist_len", "top", "total")),
        ("lock", ctypes.POINTER(ctypes.c_double)),
    ]


_lib: ctypes.CDLL | None = None
_tried = False
_loading = threading.Lock()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmgrid"


def _load() -> ctypes.CDLL | None:
    """The compiled walk, building it on first use; None when it cannot be built. Walks side
    by side may ask at once: the first builds and loads it, the others wait for it."""
    global _lib, _tried
    with _loading:
        if _tried:
            return _lib
        _lib = _build()
        _tried = True
        return _lib


def _build() -> ctypes.CDLL | None:
    source = _SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = _cache_dir() / f"roadef_walk_{digest}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            subprocess.run(
                ["cc", "-O2", "-shared", "-fPIC", "-o", tmp, str(_SOURCE), "-lm"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            os.replace(tmp, target)
        except (OSError, subprocess.SubprocessError):
            return None
    lib = ctypes.CDLL(str(target))
    lib.walk.restype = _I
    lib.walk.argtypes = [
        ctypes.POINTER(_W),
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_uint64,
        _P,
        _P,
    ]
    return lib


def available() -> bool:
    return _load() is not None


@dataclass
class WalkResult:
    state: AssignmentState
    """The cheapest assignment the walk saw (the given state itself when it saw none cheaper)."""
    moves: int
    attempts: int
    last: IntArray
    """The assignment the walk ended on (it may be dearer than `state`)."""
    last_cost: int
    """The walk's own running total for `last`, kept move by move."""
    disagreed: bool = False
    """The walk's answer failed the state's own cost or feasibility check and was dropped (a
    bug in the walk; the state is left as it was)."""


def side_by_side(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Each call's result, in order; the calls run in threads of their own when there are
    several (`run_walk` spends its time in C without the interpreter lock, so walks run on
    as many cores), the first in the calling thread."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(len(calls) - 1, thread_name_prefix="roadef-walk") as pool:
        others = [pool.submit(call) for call in calls[1:]]
        first = calls[0]()
        return [first, *(f.result() for f in others)]


def _csr(lists: list[list[int]] | tuple[tuple[int, ...], ...]) -> tuple[IntArray, IntArray]:
    start = np.zeros(len(lists) + 1, dtype=np.int64)
    start[1:] = np.cumsum([len(d) for d in lists])
    flat = np.array([s for d in lists for s in d], dtype=np.int64)
    return start, flat if flat.size else np.zeros(1, dtype=np.int64)


class _Arrays:
    """int64 C-contiguous copies of the instance and of the state, kept alive for the call."""

    def __init__(self, inst: RoadefInstance, state: AssignmentState) -> None:
        def a(v: object) -> IntArray:
            # a copy, always: the walk writes into the state arrays it is given
            return np.array(v, dtype=np.int64, order="C", copy=True)

        bal = [(b.r1, b.r2, b.target, b.weight) for b in inst.balances] or [(0, 0, 0, 0)]
        dep_start, dep = _csr(inst.dependencies)
        rdep_start, rdep = _csr(state.dependents)
        self.consts = {
            "req": a(inst.requirement),
            "cap": a(inst.capacity),
            "safety": a(inst.safety),
            "transient": a(inst.transient),
            "load_w": a(inst.load_weight),
            "bal": a(bal),
            "pmc": a(inst.process_move_cost),
            "mmc": a(inst.machine_move_cost),
            "service": a(inst.service),
            "spread_min": a(inst.spread_min),
            "location": a(inst.location),
            "zone": a(inst.neighborhood),
            "initial": a(state.initial),
            "dep_start": dep_start,
            "dep": dep,
            "rdep_start": rdep_start,
            "rdep": rdep,
        }
        self.vars = {
            "x": a(state.x),
            "used": a(state.used),
            "held": a(state.held),
            "on_machine": a(state.on_machine),
            "in_location": a(state.in_location),
            "in_zone": a(state.in_zone),
            "spread": a(state.spread),
            "moved": a(state.moved_count),
            "hist": a(state.moved_histogram),
        }


def _ptr(array: IntArray) -> ctypes._Pointer[ctypes.c_int64]:
    return array.ctypes.data_as(_P)


def run_walk(
    state: AssignmentState,
    seconds: float,
    t_start: float,
    t_end: float,
    seed: int,
    swap_share: float = 0.3,
    lock: np.ndarray | None = None,
    chain_share: float = 0.0,
    keep_best: bool = True,
) -> WalkResult | None:
    """Anneal from `state` for `seconds` (wall); None when the walk is not available.

    `lock`, per process, steers the walk like `local.shift_pass`'s lock weight: a move away
    from home is judged as if it cost that much more (a move back home as that much less); the
    cheapest assignment is still judged by its exact cost. `chain_share` of the attempts are
    ejection chains (a process onto a machine that one of its processes leaves at once, see
    `_walk.c`), `swap_share` swaps, the rest shifts. With `keep_best` False only `last` is
    wanted (`descent.py` rebuilds and checks it itself): the cheapest assignment is neither
    rebuilt nor checked, and `state` is the one given."""
    lib = _load()
    if lib is None:
        return None
    inst = state.inst
    arrays = _Arrays(inst, state)
    w = _W(
        R=inst.resources,
        M=inst.machines,
        P=inst.processes,
        S=inst.services,
        L=int(state.in_location.shape[1]),
        N=int(state.in_zone.shape[1]),
        B=len(inst.balances),
        w_pmc=inst.weight_process_move,
        w_smc=inst.weight_service_move,
        w_mmc=inst.weight_machine_move,
        hist_len=int(state.moved_histogram.shape[0]),
        top=state.service_move,
        total=state.total,
    )
    for name, array in (arrays.consts | arrays.vars).items():
        setattr(w, name, _ptr(array))
    charges = None
    if lock is not None:
        charges = np.ascontiguousarray(lock, dtype=np.float64)
        w.lock = charges.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    best_x = np.empty(inst.processes, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    moves = lib.walk(
        ctypes.byref(w),
        seconds,
        max(t_start, 1e-9),
        max(t_end, 1e-9),
        swap_share,
        chain_share,
        seed & (2**64 - 1),
        _ptr(best_x),
        _ptr(stats),
    )
    made = (int(moves), int(stats[1]), arrays.vars["x"].copy(), int(w.total))
    if not keep_best or int(stats[0]) >= state.total:
        return WalkResult(state, *made)
    best = AssignmentState(inst, state.initial, best_x)
    if best.total != int(stats[0]) or not best.feasible_everywhere():
        return WalkResult(state, *made, disagreed=True)
    return WalkResult(best, *made)
