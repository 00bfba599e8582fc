"""The simulated data centre of the CloudSim PlanetLab experiment (Beloglazov & Buyya, CCPE 2012).

Host and VM types, the SPECpower tables and the migration-time rule are the published constants;
they are kept here, in one place, so that the simulator and every policy agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

STEP_S = 300.0
"""Scheduling interval and trace sampling period (seconds)."""

DAY_STEPS = 288
"""Samples per trace file: 24 h of 300 s intervals."""

HOST_BW_KBIT_S = 1_000_000
"""Host network bandwidth as CloudSim writes it (1 Gbit/s); half of it carries migrations."""

HOST_RAM_MB = 4096
VM_BW_KBIT_S = 100_000


@dataclass(frozen=True)
class HostType:
    """One server model: its PEs and its SPECpower curve (watts at 0 %, 10 %, ..., 100 %)."""

    name: str
    pes: int
    pe_mips: int
    power_w: tuple[float, ...]

    @property
    def total_mips(self) -> int:
        return self.pes * self.pe_mips


@dataclass(frozen=True)
class VmType:
    """One single-core VM type after an EC2 instance type."""

    name: str
    mips: int
    ram_mb: int


HP_ML110_G4 = HostType(
    "HP ProLiant ML110 G4", 2, 1860, (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117)
)
HP_ML110_G5 = HostType(
    "HP ProLiant ML110 G5", 2, 2660, (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135)
)
HOST_TYPES: tuple[HostType, ...] = (HP_ML110_G4, HP_ML110_G5)

VM_TYPES: tuple[VmType, ...] = (
    VmType("high-cpu-medium", 2500, 870),
    VmType("extra-large", 2000, 1740),
    VmType("small", 1000, 1740),
    VmType("micro", 500, 613),
)

POWER_TABLE = np.array([t.power_w for t in HOST_TYPES], dtype=np.float64)


def migration_time_s(ram_mb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """CloudSim's migration time: RAM over half the host bandwidth (62.5 MB/s)."""
    return np.asarray(ram_mb, dtype=np.float64) / (HOST_BW_KBIT_S / (2 * 8000))


def vm_type_indices(vm_count: int) -> npt.NDArray[np.int64]:
    """VM i (sorted file order) gets type floor(i / ceil(N/4)), as in the reference runs."""
    per_type = -(-vm_count // len(VM_TYPES))
    return np.arange(vm_count, dtype=np.int64) // max(per_type, 1)


def host_type_indices(host_count: int) -> npt.NDArray[np.int64]:
    """Host i gets type i mod 2: G4 and G5 alternate."""
    return np.arange(host_count, dtype=np.int64) % len(HOST_TYPES)


def power_w(
    utilisation: npt.NDArray[np.float64], host_type: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """SPECpower interpolation between the 10 % points (CloudSim PowerModelSpecPower)."""
    u = np.clip(utilisation, 0.0, 1.0)
    lo = np.floor(u * 10).astype(np.int64)
    hi = np.ceil(u * 10).astype(np.int64)
    p_lo = POWER_TABLE[host_type, lo]
    p_hi = POWER_TABLE[host_type, hi]
    return np.asarray(p_lo + (p_hi - p_lo) / 10 * (u - lo / 10) * 100, dtype=np.float64)
