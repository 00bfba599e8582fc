"""The machine a benchmark ran on, measured in the same run, for every `vmgrid-bench` line.

A figure means little without the machine behind it: the same ingest run reads 0.5 core on one
machine and 0.95 on another. ``vmgrid-bench`` appends this context to every result line, so
lines from different machines (or from one machine under different load) can be compared:

* ``cores`` and ``cpu_model``: what the OS reports;
* ``calibration_s``: the best of a few timings of a fixed pure-Python loop, before the
  benchmark; ``calibration_after_s`` the same after it. Ratios of these between two machines
  scale the CPU-bound figures; a gap between before and after shows load that changed mid-run;
* ``load_1m_before`` / ``load_1m_after``: the 1-minute load average (other processes' share);
* ``command`` and ``at``: the exact command line and when it started (UTC).
"""

from __future__ import annotations

import os
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

CALIBRATION_ITERATIONS = 300_000
"""Iterations of the calibration loop; about 0.03 s on a 2020s x86 core."""

CALIBRATION_REPEATS = 5


def calibration_loop(iterations: int = CALIBRATION_ITERATIONS) -> int:
    """A fixed pure-Python workload: integer arithmetic, a dict and a list, as vmgrid's hot
    paths use them. Its result is returned so that nothing can be optimised away."""
    acc = 0
    seen: dict[int, int] = {}
    items: list[int] = []
    for i in range(iterations):
        acc = (acc * 31 + i) % 1_000_003
        seen[i & 1023] = acc
        if i & 63 == 0:
            items.append(acc)
    return acc + len(seen) + len(items)


def calibrate(
    repeats: int = CALIBRATION_REPEATS,
    loop: Callable[[], int] = calibration_loop,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds for one calibration loop: the best of ``repeats`` timings (the least disturbed)."""
    if repeats < 1:
        raise ValueError(f"calibration repeats {repeats} is not positive; expected e.g. 5")
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        loop()
        best = min(best, clock() - start)
    return round(best, 4)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _mem_total_mib(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class MachineContext:
    """Measures the machine around one benchmark run: ``start()`` before, ``finish()`` after."""

    def __init__(self, argv: Sequence[str], repeats: int = CALIBRATION_REPEATS) -> None:
        self.command = shlex.join(["vmgrid-bench", *argv])
        self.repeats = repeats
        self._before: dict[str, object] = {}

    def start(self) -> None:
        self._before = {
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_1m_before": _load_1m(),
            "calibration_s": calibrate(self.repeats),
        }

    def finish(self) -> dict[str, object]:
        """The ``machine`` object of the result line."""
        if not self._before:
            raise RuntimeError("MachineContext.finish() called before start()")
        return {
            "command": self.command,
            "at": self._before["at"],
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "mem_total_mib": _mem_total_mib(),
            "python": platform.python_version(),
            "calibration_s": self._before["calibration_s"],
            "calibration_after_s": calibrate(self.repeats),
            "load_1m_before": self._before["load_1m_before"],
            "load_1m_after": _load_1m(),
        }
