"""Pressure-stall information (PSI) in the domain model: what agents read from the kernel's
``/proc/pressure/*`` and each VM's cgroup, and report on the node link. None stands for
unavailable, which is not the same as no pressure. Re-exported by ``vmgrid.agents.model``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PressureStall:
    """One resource's pressure-stall figures (a PSI file's ``some`` and ``full`` lines).

    avg10 values are percentages of the last 10 s; totals are microseconds of stall.
    """

    some_avg10: float
    full_avg10: float = 0.0
    some_total_us: int = 0
    full_total_us: int = 0


@dataclass(frozen=True, slots=True)
class Pressure:
    """Pressure-stall information of a host or a VM's cgroup; None: not available (no PSI
    file to read, e.g. the libvirt test driver), which is not the same as no pressure."""

    cpu: PressureStall | None = None
    memory: PressureStall | None = None
    io: PressureStall | None = None

    @property
    def available(self) -> bool:
        return self.cpu is not None or self.memory is not None or self.io is not None


NO_PRESSURE = Pressure()
"""Nothing could be read."""


@dataclass(frozen=True, slots=True)
class VmPressure:
    """The pressure of one VM's cgroup."""

    uuid: str
    pressure: Pressure
