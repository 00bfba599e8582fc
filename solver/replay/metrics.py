"""CloudSim's metrics (Helper.printResults), accumulated interval by interval."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ReplayResult:
    """What one replay measured. Units are in the names; fractions are in [0, 1]."""

    trace: str
    policy: str
    vms: int
    hosts: int
    energy_kwh: float
    slatah: float
    pdm: float
    migrations: int
    replay_s: float
    active_hosts: tuple[int, ...] = field(default=(), repr=False)
    """Hosts with CPU use > 0 after each step's decision (for plots)."""
    step_slatah: tuple[float, ...] = field(default=(), repr=False)
    """Share of active-host time at 100 % CPU within each step (for plots)."""

    @property
    def slav(self) -> float:
        return self.slatah * self.pdm

    @property
    def esv(self) -> float:
        return self.energy_kwh * self.slav

    def as_json(self) -> dict[str, object]:
        """The benchmark's result line, in the order issue #8 fixes."""
        return {
            "trace": self.trace,
            "policy": self.policy,
            "vms": self.vms,
            "hosts": self.hosts,
            "energy_kwh": round(self.energy_kwh, 4),
            "slatah": self.slatah,
            "pdm": self.pdm,
            "slav": self.slav,
            "esv": self.esv,
            "migrations": self.migrations,
            "replay_s": round(self.replay_s, 2),
        }


@dataclass
class Accounting:
    """Running sums: host energy, active and violating host time, VM requested and lost MIPS·s."""

    energy_j: float = 0.0
    active_s: float = 0.0
    violation_s: float = 0.0
    requested_mips_s: float = 0.0
    migration_loss_mips_s: float = 0.0
    migrations: int = 0

    def add_energy(self, joules: npt.NDArray[np.float64]) -> None:
        self.energy_j += float(joules.sum())
