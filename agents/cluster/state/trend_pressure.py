"""Pressure (PSI) in the hour of history: each resource's ``some`` avg10, per node and per VM.

A node's pressure travels in its HostUsage, so it is folded with the node's other series
(trend.py). A VM's pressure travels beside the VM rows (``NodeReport.vm_pressure``) and only
from agents that read VM cgroups, so it gets its own store and its own fold, touched only by
reports that carry some: a cluster whose agents report none (the libvirt test driver) pays
nothing per VM. Unavailable (no PSI file, a VM the agent does not read) is None, never 0:
a bucket mixing unavailable samples is unavailable (NaN in the sums).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from vmgrid.agents.psi import Pressure

PRESSURE_SERIES = (
    "pressure_cpu_some_avg10",
    "pressure_memory_some_avg10",
    "pressure_io_some_avg10",
)
"""Percent of the last 10 s some task stalled on each resource, in Pressure's field order."""

PressureValues = tuple[float | None, float | None, float | None]
UNAVAILABLE: PressureValues = (None, None, None)


def pressure_values(pressure: Pressure) -> PressureValues:
    """The PRESSURE_SERIES values of one reading (None where a resource is unavailable)."""
    cpu, memory, io = pressure.cpu, pressure.memory, pressure.io
    return (
        None if cpu is None else cpu.some_avg10,
        None if memory is None else memory.some_avg10,
        None if io is None else io.some_avg10,
    )


class VmPressureFold:
    """A node's VM pressure since its open bucket began (sums per uuid), and the reports of
    its recent window (sent_at, uuid -> pressure) for the last minute at full resolution.
    Created on a node's first report that carries VM pressure."""

    __slots__ = ("sums", "recent")

    def __init__(self, window: int) -> None:
        self.sums: dict[str, list[float]] = {}
        """uuid -> [samples, cpu sum, memory sum, io sum] of the open bucket."""
        self.recent: deque[tuple[int, Mapping[str, Pressure]]] = deque(maxlen=max(1, window))

    def add(self, sent_at_ns: int, pressures: Mapping[str, Pressure]) -> None:
        """One report's VM pressure (empty: none of its VMs had any)."""
        self.recent.append((sent_at_ns, pressures))
        sums, nan = self.sums, math.nan
        for uuid, pressure in pressures.items():  # per VM that reports: kept plain and inline
            row = sums.get(uuid)
            if row is None:
                row = sums[uuid] = [0.0, 0.0, 0.0, 0.0]
            cpu, memory, io = pressure.cpu, pressure.memory, pressure.io
            row[0] += 1
            row[1] = nan if cpu is None else row[1] + cpu.some_avg10
            row[2] = nan if memory is None else row[2] + memory.some_avg10
            row[3] = nan if io is None else row[3] + io.some_avg10

    def take(self) -> tuple[list[str], list[float], list[list[float]]]:
        """(uuids, counts, sums) of the open bucket, which starts again empty."""
        uuids = list(self.sums)
        counts = [row[0] for row in self.sums.values()]
        sums = [row[1:] for row in self.sums.values()]
        self.sums = {}
        return uuids, counts, sums

    def at(self, uuid: str) -> dict[int, PressureValues]:
        """sent_at -> the VM's values of each recent report that carried VM pressure."""
        out: dict[int, PressureValues] = {}
        for sent_at, pressures in self.recent:
            pressure = pressures.get(uuid)
            out[sent_at] = UNAVAILABLE if pressure is None else pressure_values(pressure)
        return out


def with_pressure(
    rows: Sequence[tuple[int, Sequence[float | None]]], at: Mapping[int, PressureValues]
) -> list[tuple[int, Sequence[float | None]]]:
    """`rows` (sent_at, values) with each one's pressure values appended (unavailable when no
    report at that time carried the VM's pressure)."""
    return [(t, (*values, *at.get(t, UNAVAILABLE))) for t, values in rows]
