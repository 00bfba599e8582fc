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
    sample_s: float = 0.0
    """Sampling period of the unmet-demand figures (seconds)."""
    demand_cpu_s: float = 0.0
    """CPU that VMs requested, in VM core-seconds, sampled every ``sample_s``."""
    unmet_cpu_s: float = 0.0
    """Requested but not allocated, in VM core-seconds (capacity shortfall + migration loss)."""
    unmet_migration_cpu_s: float = 0.0
    """The part of ``unmet_cpu_s`` that migrating VMs lose on their source (10 %)."""
    active_hosts: tuple[int, ...] = field(default=(), repr=False)
    """Hosts with CPU use > 0 after each step's decision (for plots)."""
    step_slatah: tuple[float, ...] = field(default=(), repr=False)
    """Share of active-host time at 100 % CPU within each step (for plots)."""
    step_unmet: tuple[float, ...] = field(default=(), repr=False)
    """Share of the CPU demand left unmet within each step (for plots)."""

    @property
    def slav(self) -> float:
        return self.slatah * self.pdm

    @property
    def esv(self) -> float:
        return self.energy_kwh * self.slav

    @property
    def unmet_share(self) -> float:
        """Unmet CPU demand as a share of the demand."""
        return self.unmet_cpu_s / self.demand_cpu_s if self.demand_cpu_s > 0 else 0.0

    def as_json(self) -> dict[str, object]:
        """The benchmark's result line: issue #8's fields in its order, then unmet demand."""
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
            "sample_s": self.sample_s,
            "demand_cpu_s": round(self.demand_cpu_s, 1),
            "unmet_cpu_s": round(self.unmet_cpu_s, 1),
            "unmet_share": self.unmet_share,
            "unmet_migration_cpu_s": round(self.unmet_migration_cpu_s, 1),
        }


@dataclass
class Accounting:
    """Running sums: host energy, active and violating host time, VM requested and lost MIPS·s,
    and the sampled demand and unmet demand in VM core-seconds."""

    energy_j: float = 0.0
    active_s: float = 0.0
    violation_s: float = 0.0
    requested_mips_s: float = 0.0
    migration_loss_mips_s: float = 0.0
    migrations: int = 0
    demand_cpu_s: float = 0.0
    unmet_cpu_s: float = 0.0
    unmet_migration_cpu_s: float = 0.0

    def add_energy(self, joules: npt.NDArray[np.float64]) -> None:
        self.energy_j += float(joules.sum())
